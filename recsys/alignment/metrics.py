"""Retrieval metrics for the alignment benchmark, each with its exact random-chance value.

Relevance is a boolean (queries x gallery) matrix. ``recall@k`` is the share of a query's
relevant items in its top k, divided by ``min(k, n_relevant)`` so a perfect ranking scores 1
even when several items share one description (then ``recall@1`` is a hit rate).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def _ranks_of_relevant(scores: np.ndarray, relevant: np.ndarray) -> list[np.ndarray]:
    """1-based ranks of each query's relevant items (ties broken by gallery index, stable)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(len(scores), 0), axis=1)
    return [ranks[i][relevant[i]] for i in range(len(scores))]


def _chance_first_hit_rr(n: int, r: int) -> float:
    """E[1 / rank of the first relevant item] when r of n items are relevant and the order is random."""
    j = np.arange(1, n - r + 2)
    # P(first = j) = C(n - j, r - 1) / C(n, r)
    log_p = (
        gammaln(n - j + 1)
        - gammaln(r)
        - gammaln(n - j - r + 2)
        - (gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1))
    )
    return float(np.sum(np.exp(log_p) / j))


def retrieval_metrics(scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Mean recall@k, MRR and precision@k over queries with at least one relevant item, with chance."""
    relevant = np.asarray(relevant, dtype=bool)
    keep = relevant.any(axis=1)
    scores, relevant = np.asarray(scores)[keep], relevant[keep]
    n = scores.shape[1]
    ranks = _ranks_of_relevant(scores, relevant)
    n_rel = relevant.sum(axis=1)
    out: dict[str, float] = {"queries": len(ranks), "gallery": int(n)}
    for k in ks:
        hits = np.array([(r <= k).sum() for r in ranks], dtype=np.float64)
        out[f"recall@{k}"] = float(np.mean(hits / np.minimum(k, n_rel)))
        out[f"recall@{k}_chance"] = float(np.mean(k * n_rel / n / np.minimum(k, n_rel)))
        out[f"precision@{k}"] = float(np.mean(hits / k))
        out[f"precision@{k}_chance"] = float(np.mean(n_rel / n))
    out["mrr"] = float(np.mean([1.0 / r.min() for r in ranks]))
    out["mrr_chance"] = float(np.mean([_chance_first_hit_rr(n, int(r)) for r in n_rel]))
    return out


def label_topk_metrics(
    queries: np.ndarray, gallery: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 10), chunk: int = 512
) -> dict[str, float]:
    """:func:`retrieval_metrics`' recall@k and precision@k (with chance) when each gallery item is
    relevant to exactly one query: item j to query ``labels[j]`` (-1: to none).

    The top k of each query are found by threshold (the k-th largest score; items tied with it
    are taken lowest gallery index first, the order retrieval_metrics ranks by), a chunk of
    queries at a time, so large galleries need neither a full argsort nor a dense relevance
    matrix. Queries with no relevant item are left out.
    """
    queries = np.asarray(queries, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(gallery)
    n_rel_all = np.bincount(labels[labels >= 0], minlength=len(queries))
    keep = np.flatnonzero(n_rel_all > 0)
    hits = {k: np.zeros(len(keep)) for k in ks}
    for start in range(0, len(keep), chunk):
        q = keep[start : start + chunk]
        scores = queries[q] @ gallery.T
        relevant = labels[None, :] == q[:, None]
        for k in ks:
            hits[k][start : start + len(q)] = (_top_k_mask(scores, k) & relevant).sum(axis=1)
    n_rel = n_rel_all[keep].astype(np.float64)
    out: dict[str, float] = {"queries": len(keep), "gallery": int(n)}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean(hits[k] / np.minimum(k, n_rel)))
        out[f"recall@{k}_chance"] = float(np.mean(k * n_rel / n / np.minimum(k, n_rel)))
        out[f"precision@{k}"] = float(np.mean(hits[k] / k))
        out[f"precision@{k}_chance"] = float(np.mean(n_rel / n))
    return out


def _top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of each row's k best items, ties at the cut-off going to the lowest indices."""
    n = scores.shape[1]
    if k >= n:
        return np.ones_like(scores, dtype=bool)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=1) <= room))
