"""Early and late fusion of the per-modality content kNN models, weights tuned on validation.

Early fusion concatenates the per-modality unit vectors (each scaled by sqrt(weight), so the
concatenation is a unit vector) and runs content kNN on that; late fusion ranks by a weighted
sum of per-modality user-item scores. Both choose their modality weights on the validation
matrix unless given fixed ones.
"""

from __future__ import annotations

import itertools
from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.lab.base import Recommender, TrainData
from recsys.lab.metrics import unit_rows
from recsys.lab.models.content import require_modalities, user_profiles
from recsys.lab.training import block_rows
from recsys.ranking import top_k


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


class _TunedFusion(Recommender):
    """Shared machinery: per-modality user-item score stacks fused with simplex weights.

    Weights are fixed when given, else chosen by a grid on the weight simplex (``step``) that
    maximises Recall@``tune_k`` on the validation matrix (training items excluded); ties keep
    the most uniform weights. Without validation interactions the weights stay uniform.
    """

    def __init__(
        self,
        modalities: list[str] | None = None,
        weights: dict[str, float] | None = None,
        step: float = 0.1,
        tune_k: int = 20,
        max_tune_users: int = 3000,
    ) -> None:
        self.modalities = modalities
        self.fixed = weights
        self.step = step
        self.tune_k = tune_k
        self.max_tune_users = max_tune_users

    def _prepare(self, data: TrainData) -> None:
        """Precompute whatever :meth:`_stack` needs."""
        raise NotImplementedError

    def _fixed_weights(self) -> dict[str, float] | None:
        return self.fixed

    def _stack(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-modality scores (M, users, items) and a per-modality per-user side array (M, users)."""
        raise NotImplementedError

    def _fuse(self, w: np.ndarray, stack: np.ndarray, side: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, data: TrainData) -> Self:
        self.mods = require_modalities(data, self.modalities)
        self.items = {m: unit_rows(data.item_features[m]) for m in self.mods}
        self._prepare(data)
        self.valid_recall: float | None = None
        self.grid_size = 0
        fixed = self._fixed_weights()
        self.tuned = fixed is None
        if fixed is not None:
            w = np.array([fixed.get(m, 0.0) for m in self.mods], dtype=np.float64)
            if w.sum() <= 0:
                raise ValueError(f"{self.name}: weights must have a positive sum, got {fixed}.")
            self.weights = w / w.sum()
            return self
        self.weights = np.full(len(self.mods), 1.0 / len(self.mods))
        val_users = np.flatnonzero(np.diff(data.valid.indptr) > 0)
        if len(val_users) and len(self.mods) > 1:
            if len(val_users) > self.max_tune_users:
                rng = np.random.default_rng(data.seed)
                val_users = np.sort(rng.choice(val_users, self.max_tune_users, replace=False))
            self._tune(data, val_users)
        return self

    def _tune(self, data: TrainData, users: np.ndarray) -> None:
        """Each grid weight's Recall@``tune_k`` over ``users``, summed over blocks of them sized so
        that their per-modality score stacks stay within :data:`~recsys.lab.training.SCORE_BLOCK_BYTES`
        per modality (3,000 users' stacks at 1M items and two modalities held 24 GB); lfm2k's users
        make one block."""
        grid = simplex_grid(len(self.mods), self.step if len(self.mods) <= 4 else max(self.step, 0.25))
        self.grid_size = len(grid)
        found = np.zeros(len(grid))
        step = block_rows(data.n_items, len(users))
        for start in range(0, len(users), step):
            block = users[start : start + step]
            stack, side = self._stack(block)
            seen = data.train[block].toarray() > 0
            relevant = data.valid[block].toarray() > 0
            n_rel = relevant.sum(axis=1)
            for i, w in enumerate(grid):
                fused = self._fuse(w, stack, side)
                fused[seen] = -np.inf
                top = top_k(fused, self.tune_k)
                found[i] += float((np.take_along_axis(relevant, top, axis=1).sum(axis=1) / n_rel).sum())
        uniform = np.full(len(self.mods), 1.0 / len(self.mods))
        best = (-1.0, np.inf)
        for w, total in zip(grid, found, strict=True):
            recall = total / len(users)
            spread = float(np.abs(w - uniform).sum())
            if recall > best[0] + 1e-12 or (abs(recall - best[0]) <= 1e-12 and spread < best[1]):
                best = (recall, spread)
                self.weights = w
                self.valid_recall = recall

    def score(self, users: np.ndarray) -> np.ndarray:
        stack, side = self._stack(np.asarray(users))
        return self._fuse(self.weights, stack, side).astype(np.float32)

    def refit_overrides(self) -> dict[str, object]:
        """The weights chosen on validation, fixed."""
        return {"weights": dict(zip(self.mods, self.weights.tolist(), strict=True))} if self.tuned else {}

    def extra_info(self) -> dict[str, object]:
        return {
            "modality_weights": dict(zip(self.mods, self.weights.round(4).tolist(), strict=True)),
            "tuned": self.tuned,
            f"valid_recall@{self.tune_k}": self.valid_recall,
            "grid_size": self.grid_size,
        }


class EarlyFusion(_TunedFusion):
    """Content kNN on the concatenation of per-modality normalised features, sqrt(weight)-scaled.

    With item part ``sqrt(w_m) f_m`` and user part the mean of those over the user's items, the
    cosine is ``sum_m w_m a_m.f_m / sqrt(sum_m w_m |a_m|^2)`` (``a_m``: the user's mean unit
    vector in modality m), so every weight on the grid is scored from per-modality products
    computed once. ``tune=False`` keeps uniform weights: plain concatenation.
    """

    name = "early-fusion"

    def __init__(
        self,
        modalities: list[str] | None = None,
        weights: dict[str, float] | None = None,
        tune: bool = True,
        **kwargs: float,
    ) -> None:
        super().__init__(modalities, weights, **kwargs)
        self.tune = tune

    def _fixed_weights(self) -> dict[str, float] | None:
        if self.fixed is None and not self.tune:
            return dict.fromkeys(self.mods, 1.0)
        return self.fixed

    def _prepare(self, data: TrainData) -> None:
        counts = np.diff(data.train.indptr).astype(np.float32)
        mean_op = sp.diags(1.0 / np.maximum(counts, 1.0)) @ data.train.astype(np.float32)
        self.means = {m: np.asarray(mean_op @ self.items[m], dtype=np.float32) for m in self.mods}

    def _stack(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dots = np.stack([self.means[m][users] @ self.items[m].T for m in self.mods])
        norms2 = np.stack([(self.means[m][users] ** 2).sum(axis=1) for m in self.mods])
        return dots, norms2

    def _fuse(self, w: np.ndarray, stack: np.ndarray, side: np.ndarray) -> np.ndarray:
        norm = np.sqrt(np.tensordot(w, side, axes=1))
        return np.tensordot(w, stack, axes=1) / np.where(norm > 0, norm, 1.0)[:, None]


class LateFusion(_TunedFusion):
    """Weighted sum of per-user standardised per-modality content kNN scores."""

    name = "late-fusion"

    def _prepare(self, data: TrainData) -> None:
        self.profiles = {m: user_profiles(data.train, self.items[m]) for m in self.mods}

    def _stack(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        stack = np.stack([standardise(self.profiles[m][users] @ self.items[m].T) for m in self.mods])
        return stack, np.empty((len(self.mods), len(users)))

    def _fuse(self, w: np.ndarray, stack: np.ndarray, side: np.ndarray) -> np.ndarray:
        return np.tensordot(w, stack, axes=1)
