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
