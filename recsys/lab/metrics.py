"""Top-K ranking metrics over a full ranking, vectorised with numpy.

Conventions (the ones MMRec and RecBole use): for a user with test set T and top-K list L,
``recall = |L ∩ T| / |T|``, ``precision = |L ∩ T| / K``,
``ndcg = DCG / IDCG`` with gain 1/log2(rank + 1) and IDCG over min(|T|, K) hits,
``map`` = average precision at K normalised by min(|T|, K), ``mrr`` = 1 / rank of the first hit in
L (0 without one), ``hit`` = 1 when L holds any test item. Users are averaged with equal weight.
Catalogue coverage is the share of candidate items that appear in at least one user's top-K;
intra-list diversity is 1 - the mean pairwise cosine of a list's items' content vectors (centred
features, so cosines can be negative and diversity can slightly exceed 1; computed over complete
lists only).
Excluded items (training items, non-candidates) carry a score of ``-inf`` and never count as hits.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.ranking import top_k as ranked_top
from recsys.vectors import unit_vectors

RANKING_METRICS = ("recall", "ndcg", "precision", "map", "mrr", "hit")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first (ties: lower index first); of the
    items tied at the cut, those the partial sort chose: :func:`~recsys.lab.evaluate.score_split`
    visits items in a seeded random order, so that is a random choice, as the shipped lfm2k figures
    made it (:func:`recsys.ranking.top_k`)."""
    return ranked_top(scores, k, cut_by_position=False)


def hits_matrix(top: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """Boolean (users, K): whether the item at each rank is in the user's test set."""
    return np.take_along_axis(test.toarray() > 0, top, axis=1)


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user recall/ndcg/precision/map/mrr/hit at ``k`` from a hits matrix of at least ``k`` columns."""
    h = hits[:, :k].astype(np.float64)
    n_rel = n_relevant.astype(np.float64)
    n_hits = h.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = h @ discounts[: h.shape[1]]
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(int) - 1]
    prec_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    any_hit = n_hits > 0
    first = np.argmax(h > 0, axis=1)  # rank - 1 of the first hit (0 when there is none; masked below)
    return {
        "recall": n_hits / n_rel,
        "ndcg": dcg / ideal,
        "precision": n_hits / k,
        "map": (prec_at * h).sum(axis=1) / np.minimum(n_rel, k),
        "mrr": np.where(any_hit, 1.0 / (first + 1), 0.0),
        "hit": any_hit.astype(np.float64),
    }


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Centre columns and L2-normalise rows (cosine on centred features; zero rows stay zero)."""
    f = features.astype(np.float32) - features.mean(axis=0, dtype=np.float64).astype(np.float32)
    return unit_vectors(f, in_place=True)


def intra_list_diversity(top: np.ndarray, unit_features: np.ndarray) -> np.ndarray:
    """Per-user 1 - mean pairwise cosine of the listed items (rows of ``unit_features`` are unit or 0).

    Uses sum_{i != j} f_i.f_j = |sum f|^2 - sum |f|^2, so no K x K matrix is built.
    """
    k = top.shape[1]
    if k < 2:
        return np.zeros(top.shape[0])
    f = unit_features[top]  # (users, k, d)
    total = f.sum(axis=1)
    pair_sum = (total * total).sum(axis=1) - (f * f).sum(axis=(1, 2))
    return 1.0 - pair_sum / (k * (k - 1))


class MetricAccumulator:
    """Collects per-user metrics over user batches, then averages; also tracks coverage."""

    def __init__(self, ks: tuple[int, ...], n_candidates: int, unit_features: np.ndarray | None = None) -> None:
        self.ks = tuple(sorted(ks))
        self.n_candidates = n_candidates
        self.unit_features = unit_features
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.users = 0
        self.recommended = {k: set() for k in self.ks}
        # Per-user values (user id, then one array per "metric@k"), for paired tests between models.
        self.user_ids: list[np.ndarray] = []
        self.user_values: dict[str, list[np.ndarray]] = {}

    def add(self, scores: np.ndarray, test: sp.csr_matrix, user_ids: np.ndarray | None = None) -> None:
        """``scores``: (users, items) with excluded items at -inf; ``test``: matching CSR rows;
        ``user_ids``: the rows' user ids, to keep per-user values (:meth:`per_user`)."""
        n_rel = np.diff(test.indptr)
        keep = n_rel > 0
        if not keep.any():
            return
        if not keep.all():  # a copy of the block's scores: only when some user has nothing to find
            scores, test, n_rel = scores[keep], test[keep], n_rel[keep]
        if user_ids is not None:
            self.user_ids.append(np.asarray(user_ids)[keep])
        top = top_k(scores, max(self.ks))
        valid = np.isfinite(np.take_along_axis(scores, top, axis=1))
        hits = hits_matrix(top, test) & valid
        self.users += int(keep.sum())
        for k in self.ks:
            for name, values in ranking_metrics(hits, n_rel, k).items():
                self._add(f"{name}@{k}", values)
                if user_ids is not None:
                    self.user_values.setdefault(f"{name}@{k}", []).append(values)
            shown = top[:, :k][valid[:, :k]]
            self.recommended[k].update(np.unique(shown).tolist())
            full = valid[:, :k].all(axis=1)  # diversity of complete lists only
            if self.unit_features is not None and full.any():
                self._add(f"diversity@{k}", intra_list_diversity(top[full, :k], self.unit_features))

    def _add(self, key: str, values: np.ndarray) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())
        self.counts[key] = self.counts.get(key, 0) + int(values.shape[0])

    def per_user(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(user ids, {"metric@k": value per user}) over the batches added with ``user_ids``."""
        ids = np.concatenate(self.user_ids) if self.user_ids else np.zeros(0, dtype=np.int64)
        return ids, {key: np.concatenate(parts) for key, parts in self.user_values.items()}

    def result(self) -> dict[str, float]:
        out = {key: value / self.counts[key] for key, value in self.sums.items()}
        for k in self.ks:
            out[f"coverage@{k}"] = len(self.recommended[k]) / max(1, self.n_candidates)
        out["users"] = float(self.users)
        return out
