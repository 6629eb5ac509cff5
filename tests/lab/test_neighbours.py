"""Each item's nearest items: the exact search against a brute-force ranking (duplicates and ties
included), the IVF search's recall and determinism, and rows whose probed lists hold too few items."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recsys.lab import neighbours
from recsys.lab.neighbours import nearest_items
from recsys.ranking import top_k
from recsys.vectors import unit_vectors


def brute_force(x: np.ndarray, k: int) -> np.ndarray:
    """Every row's k best rows by the same per-pair score, ties to the lower row."""
    scores = np.einsum("nd,md->nm", x, x)
    return top_k(scores, k)


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(2, n // 50), dim))
    return unit_vectors(centres[rng.integers(0, len(centres), n)] + 0.4 * rng.standard_normal((n, dim)))


@settings(deadline=None)
@given(
    distinct=hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.integers(-3, 3)),
    picks=st.lists(st.integers(0, 5), min_size=1, max_size=24),
    k=st.integers(1, 12),
)
def test_exact_neighbours_rank_as_brute_force_with_ties_to_the_lower_row(distinct, picks, k):
    # rows drawn from a few distinct vectors: duplicates, and ties at the k-th place, on most draws
    x = unit_vectors(distinct[[p % len(distinct) for p in picks]])
    expected = brute_force(x, k)
    got = nearest_items(x, k, exact=True)
    assert got.shape == expected.shape == (len(x), min(k, len(x)))
    scores = np.einsum("nd,md->nm", x, x)
    # always the k best scores, best first
    np.testing.assert_array_equal(np.take_along_axis(scores, got, 1), np.take_along_axis(scores, expected, 1))
    # and the lower rows of a tie wherever the items scoring at least the k-th best fit among the candidates
    kth = np.take_along_axis(scores, expected[:, -1:], 1)
    fits = (scores >= kth).sum(axis=1) <= k + neighbours.TIE_MARGIN
    np.testing.assert_array_equal(got[fits], expected[fits])


def test_duplicate_items_give_the_lower_row_whatever_the_search_met_first():
    x = unit_vectors(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, 1.0], [0.6, 0.8]]))
    # row 0's two best: itself, then rows 2 and 4 (equal): the lower, 2
    assert nearest_items(x, 2, exact=True)[0].tolist() == [0, 2]
    assert nearest_items(x, 2, exact=False)[0].tolist() == [0, 2]
    # a row's duplicate with a lower number ranks before the row itself
    assert nearest_items(x, 2, exact=True)[3].tolist() == [1, 3]


def test_the_ivf_search_finds_nearly_all_exact_neighbours_and_is_deterministic():
    x = clustered(3000, 16, seed=3)
    exact = nearest_items(x, 10, exact=True)
    approx = nearest_items(x, 10, exact=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert recall >= 0.95
    np.testing.assert_array_equal(nearest_items(x, 10, exact=False), approx)


def test_rows_whose_probed_lists_hold_too_few_items_are_searched_exactly(monkeypatch):
    rng = np.random.default_rng(0)
    # a cluster of 3 items far from one of 60: with one list probed, its rows see 3 candidates, not 5
    small = np.array([[10.0, 0.0, 0.0]]) + 0.01 * rng.standard_normal((3, 3))
    large = np.array([[0.0, 10.0, 0.0]]) + 0.01 * rng.standard_normal((60, 3))
    x = unit_vectors(np.concatenate([small, large]))
    monkeypatch.setattr(neighbours, "NPROBE", 1)
    got = nearest_items(x, 5, exact=False)
    assert (got >= 0).all()
    np.testing.assert_array_equal(got[:3], brute_force(x, 5)[:3])


def test_the_default_search_is_exact_up_to_the_threshold(monkeypatch):
    x = clustered(400, 8, seed=1)
    calls = []
    real = neighbours._index
    monkeypatch.setattr(neighbours, "_index", lambda rows, exact: calls.append(exact) or real(rows, exact))
    monkeypatch.setattr(neighbours, "EXACT_UP_TO", 400)
    nearest_items(x, 3)
    monkeypatch.setattr(neighbours, "EXACT_UP_TO", 399)
    nearest_items(x, 3)
    assert calls == [True, False]


@pytest.mark.parametrize("exact", [True, False])
def test_small_blocks_give_the_same_neighbours(monkeypatch, exact):
    x = clustered(500, 8, seed=2)
    whole = nearest_items(x, 4, exact=exact)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 1)  # one row a block
    np.testing.assert_array_equal(nearest_items(x, 4, exact=exact), whole)


def test_k_past_the_item_count_gives_every_item():
    x = clustered(5, 3, seed=0)
    assert sorted(nearest_items(x, 50)[0].tolist()) == list(range(5))
    assert nearest_items(x, 0).shape == (5, 0)


def test_the_ivf_search_reports_its_rows_and_logs_them_by_default(monkeypatch, caplog):
    x = clustered(500, 8, seed=4)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 4 * 18 * 8 * 100)  # 100 rows a block
    heard = []
    nearest_items(x, 10, exact=False, progress=lambda stage, done, total: heard.append((done, total)))
    assert heard == [(0, 500), (100, 500), (200, 500), (300, 500), (400, 500), (500, 500)]
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        nearest_items(x, 10, exact=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("nearest items (IVF search of 500 items): 0/500 items")
    assert lines[-1].startswith("nearest items (IVF search of 500 items): 500/500 items (100%)")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        nearest_items(x, 10)  # exact, a few milliseconds: nothing to report
    assert not caplog.records
