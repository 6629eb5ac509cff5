"""Early and late fusion of the per-modality content kNN models.

Early fusion concatenates the per-modality unit vectors (each scaled by sqrt(weight), so the
concatenation is a unit vector and cosine on it is the weighted mean of per-modality cosines
between items); late fusion ranks by a weighted sum of per-modality user-item scores, with the
weights chosen on the validation matrix.
"""

from __future__ import annotations

import itertools
from typing import Self

import numpy as np

from recsys.lab.base import Recommender, TrainData
from recsys.lab.metrics import top_k, unit_rows
from recsys.lab.models.content import require_modalities, user_profiles


def simplex_grid(n: int, step: float) -> np.ndarray:
    """All weight vectors of ``n`` non-negative multiples of ``step`` summing to 1."""
    parts = round(1 / step)
    combos = [c for c in itertools.product(range(parts + 1), repeat=n) if sum(c) == parts]
    return np.asarray(combos, dtype=np.float64) / parts


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-user z-scores: puts modalities whose cosines live on different scales on one scale."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return ((scores - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


class EarlyFusion(Recommender):
    """Content kNN on the concatenation of the per-modality normalised features."""

    name = "early-fusion"

    def __init__(self, modalities: list[str] | None = None, weights: dict[str, float] | None = None) -> None:
        self.modalities = modalities
        self.weights = weights

    def fit(self, data: TrainData) -> Self:
        mods = require_modalities(data, self.modalities)
        w = np.array([(self.weights or {}).get(m, 1.0) for m in mods], dtype=np.float64)
        w = w / w.sum()
        self.items = np.hstack(
            [unit_rows(data.item_features[m]) * np.sqrt(wm) for m, wm in zip(mods, w, strict=False)]
        )
        self.profiles = user_profiles(data.train, self.items)
        self.used = dict(zip(mods, w.tolist(), strict=False))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[np.asarray(users)] @ self.items.T).astype(np.float32)

    def extra_info(self) -> dict[str, object]:
        return {"modality_weights": self.used}


class LateFusion(Recommender):
    """Weighted sum of per-user standardised per-modality content scores; weights tuned on validation.

    The search is a grid on the weight simplex (``step``), maximising Recall@``tune_k`` on the
    validation matrix with training items excluded; ties keep the most uniform weights.
    Without validation interactions the weights stay uniform.
    """

    name = "late-fusion"

    def __init__(
        self,
        modalities: list[str] | None = None,
        step: float = 0.1,
        tune_k: int = 20,
        max_tune_users: int = 3000,
    ) -> None:
        self.modalities = modalities
        self.step = step
        self.tune_k = tune_k
        self.max_tune_users = max_tune_users

    def fit(self, data: TrainData) -> Self:
        self.mods = require_modalities(data, self.modalities)
        self.items = {m: unit_rows(data.item_features[m]) for m in self.mods}
        self.profiles = {m: user_profiles(data.train, self.items[m]) for m in self.mods}
        self.weights = np.full(len(self.mods), 1.0 / len(self.mods))
        self.search: list[dict[str, object]] = []
        self.valid_recall = None
        val_users = np.flatnonzero(np.diff(data.valid.indptr) > 0)
        if len(val_users) and len(self.mods) > 1:
            if len(val_users) > self.max_tune_users:
                rng = np.random.default_rng(data.seed)
                val_users = np.sort(rng.choice(val_users, self.max_tune_users, replace=False))
            self._tune(data, val_users)
        return self

    def _per_modality(self, users: np.ndarray) -> np.ndarray:
        return np.stack([standardise(self.profiles[m][users] @ self.items[m].T) for m in self.mods])

    def _tune(self, data: TrainData, users: np.ndarray) -> None:
        per_mod = self._per_modality(users)
        seen = data.train[users].toarray() > 0
        relevant = data.valid[users].toarray() > 0
        n_rel = relevant.sum(axis=1)
        step = self.step if len(self.mods) <= 4 else max(self.step, 0.25)
        grid = simplex_grid(len(self.mods), step)
        uniform = np.full(len(self.mods), 1.0 / len(self.mods))
        best = (-1.0, np.inf)
        for w in grid:
            fused = np.tensordot(w, per_mod, axes=1)
            fused[seen] = -np.inf
            top = top_k(fused, self.tune_k)
            recall = float((np.take_along_axis(relevant, top, axis=1).sum(axis=1) / n_rel).mean())
            self.search.append(
                {"weights": dict(zip(self.mods, w.round(4).tolist(), strict=False)), "recall": recall}
            )
            spread = float(np.abs(w - uniform).sum())
            if recall > best[0] + 1e-12 or (abs(recall - best[0]) <= 1e-12 and spread < best[1]):
                best = (recall, spread)
                self.weights = w
                self.valid_recall = recall

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tensordot(self.weights, self._per_modality(np.asarray(users)), axes=1).astype(np.float32)

    def extra_info(self) -> dict[str, object]:
        return {
            "modality_weights": dict(zip(self.mods, self.weights.round(4).tolist(), strict=False)),
            f"valid_recall@{self.tune_k}": self.valid_recall,
            "grid_size": len(self.search),
        }
