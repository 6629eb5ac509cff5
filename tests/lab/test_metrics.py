"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.lab.metrics import MetricAccumulator, intra_list_diversity, ranking_metrics, top_k

SCORES = np.array([[0.9, 0.1, 0.8, 0.3, 0.7, 0.2]])  # ranking: 0, 2, 4, 3, 5, 1
TEST = sp.csr_matrix(np.array([[0, 1, 1, 1, 0, 0]], dtype=np.float32))  # relevant: 1, 2, 3


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    np.testing.assert_array_equal(top_k(SCORES, 4), [[0, 2, 4, 3]])
    np.testing.assert_array_equal(top_k(np.array([[1.0, 2.0, 2.0, 0.0]]), 2), [[1, 2]])
    assert top_k(SCORES, 99).shape == (1, 6)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # hits at ranks 2 -> recall 1/3, precision 1/3, dcg 1/log2(3), idcg 1 + 1/log2(3) + 1/2, AP (1/2)/3
        (
            3,
            {
                "recall": 1 / 3,
                "precision": 1 / 3,
                "ndcg": (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5),
                "map": 0.5 / 3,
            },
        ),
        # hits at ranks 2 and 4 -> recall 2/3, precision 2/5, AP (1/2 + 2/4)/3
        (
            5,
            {
                "recall": 2 / 3,
                "precision": 2 / 5,
                "ndcg": (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5),
                "map": 1 / 3,
            },
        ),
    ],
)
def test_ranking_metrics_by_hand(k, expected):
    top = top_k(SCORES, k)
    hits = np.take_along_axis(TEST.toarray() > 0, top, axis=1)
    got = ranking_metrics(hits, np.array([3]), k)
    for name, value in expected.items():
        assert got[name][0] == pytest.approx(value), name


def test_ndcg_ideal_uses_min_of_relevant_and_k():
    # one relevant item ranked first: every metric but precision is perfect
    got = ranking_metrics(np.array([[True, False, False]]), np.array([1]), 3)
    assert got["ndcg"][0] == pytest.approx(1.0)
    assert got["map"][0] == pytest.approx(1.0)
    assert got["recall"][0] == pytest.approx(1.0)
    assert got["precision"][0] == pytest.approx(1 / 3)


def test_intra_list_diversity_by_hand():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairwise cosines (0,1)=0, (0,2)=1, (1,2)=0 -> mean 1/3 -> diversity 2/3
    assert intra_list_diversity(np.array([[0, 1, 2]]), feats)[0] == pytest.approx(2 / 3)
    assert intra_list_diversity(np.array([[0, 2]]), feats)[0] == pytest.approx(0.0)


def test_accumulator_averages_users_excludes_minus_inf_and_counts_coverage():
    scores = np.vstack([SCORES, [[-np.inf, 0.5, 0.4, -np.inf, -np.inf, -np.inf]], [[0.0] * 6]])
    test = sp.csr_matrix(np.array([[0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32))
    feats = np.eye(6)
    acc = MetricAccumulator((3,), n_candidates=6, unit_features=feats)
    acc.add(scores[:2], test[:2])
    acc.add(scores[2:], test[2:])  # user without test items is not counted
    out = acc.result()
    assert out["users"] == 2
    assert out["recall@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert out["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert out["ndcg@3"] == pytest.approx(((1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5) + 1) / 2)
    # the second user's list holds only 2 finite items: coverage counts {0, 2, 4} and {1, 2}
    assert out["coverage@3"] == pytest.approx(4 / 6)
    # diversity over complete lists only (the first user); orthogonal items -> 1
    assert out["diversity@3"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("k", "mrr", "hit"),
    [
        (1, 0.0, 0.0),  # top-1 is item 0, not relevant
        (2, 1 / 2, 1.0),  # first hit (item 2) at rank 2
        (5, 1 / 2, 1.0),  # later hits (item 3 at rank 4) do not change the reciprocal rank
    ],
)
def test_mrr_and_hit_by_hand(k, mrr, hit):
    top = top_k(SCORES, k)
    hits = np.take_along_axis(TEST.toarray() > 0, top, axis=1)
    got = ranking_metrics(hits, np.array([3]), k)
    assert got["mrr"][0] == pytest.approx(mrr)
    assert got["hit"][0] == pytest.approx(hit)


def test_accumulator_averages_mrr_and_hit_over_users():
    # user 0: first hit at rank 2 (1/2); user 1: item 1 ranked first among the finite scores (1/1);
    # user 2: its only test item (5) is ranked last, outside the top 3 (0)
    scores = np.vstack([SCORES, [[-np.inf, 0.5, 0.4, -np.inf, -np.inf, -np.inf]], SCORES])
    test = sp.csr_matrix(np.array([[0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]], dtype=np.float32))
    acc = MetricAccumulator((3,), n_candidates=6)
    acc.add(scores, test)
    out = acc.result()
    assert out["mrr@3"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert out["hit@3"] == pytest.approx(2 / 3)
