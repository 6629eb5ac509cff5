"""The chunked top-k label metrics agree with the dense reference, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.alignment.metrics import label_topk_metrics, retrieval_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_topk_matches_dense_retrieval_metrics(seed):
    rng = np.random.default_rng(seed)
    n_q, n, d = 9, 40, 5
    queries = rng.normal(size=(n_q, d)).astype(np.float32)
    gallery = rng.normal(size=(n, d)).astype(np.float32)
    gallery[10:14] = gallery[3]  # identical items: ties at and around the cut-off
    labels = rng.integers(-1, n_q - 1, size=n)  # the last query has no relevant item
    dense = retrieval_metrics(queries @ gallery.T, np.arange(n_q)[:, None] == labels[None, :])
    for chunk in (2, 512):
        fast = label_topk_metrics(queries, gallery, labels, chunk=chunk)
        for key in ("recall@1", "recall@10", "precision@1", "precision@10", "recall@10_chance", "precision@10_chance"):
            assert fast[key] == pytest.approx(dense[key]), key
        assert fast["queries"] == dense["queries"] and fast["gallery"] == n


def test_label_topk_perfect_and_small_gallery():
    gallery = np.eye(4, dtype=np.float32)
    m = label_topk_metrics(gallery, gallery, np.arange(4), ks=(1, 10))
    assert m["recall@1"] == 1.0 and m["recall@10"] == 1.0 and m["precision@10"] == pytest.approx(0.1)
    assert m["recall@1_chance"] == pytest.approx(0.25)
