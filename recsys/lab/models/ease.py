"""EASE (Steck, WWW'19): a closed-form item-item linear model, a strong small-data baseline.

Ridge regression of every item's column on all the others with a zero-diagonal constraint
(so an item cannot predict itself) has the exact solution ``B = I - P / diag(P)`` with
``P = (X^T X + lambda I)^-1``; scores are ``X_u B``. No sampling, no epochs: the only knob is
``lambda``, chosen on validation Recall@20 from a log-spaced grid.

Items without a training interaction have an empty Gram row and column, so their column of
``B`` is zero: EASE cannot rank cold items (they all score 0). The solve runs on the warm
items only, which gives the same ``B`` and saves memory.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.errors import DatasetError, RecsysError
from recsys.lab.base import Recommender, TrainData
from recsys.lab.training import check_train_data, score_in_batches, validation_recall

#: Regularisation values tried on validation (log-spaced: the right value scales with the counts).
LAMBDA_GRID: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
#: float64 n x n matrices alive at once during a solve (Gram, its inverse, B, a temporary).
DENSE_COPIES = 4


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """``B = I - P / diag(P)`` with ``P = (G + lam I)^-1``: zero diagonal, column j divided by P_jj."""
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def max_items(memory_bytes: int) -> int:
    """The largest warm catalogue whose dense solve fits ``memory_bytes`` (``DENSE_COPIES`` float64 n x n)."""
    return int(math.isqrt(memory_bytes // (8 * DENSE_COPIES)))


class EASE(Recommender):
    """Closed-form item-item model; ``lam`` fixed, or chosen from ``grid`` on validation Recall@``k``.

    ``memory_gb`` bounds the dense solve: past ``max_items(memory_gb)`` warm items (16,384 at the
    default 8 GiB) ``fit`` refuses with a clear error rather than exhausting memory.
    """

    name = "ease"

    def __init__(
        self, lam: float | None = None, grid: tuple[float, ...] = LAMBDA_GRID, k: int = 20, memory_gb: float = 8.0
    ) -> None:
        if lam is not None and lam <= 0:
            raise RecsysError(f"EASE: lambda must be positive, got {lam}.")
        if lam is None and (not grid or min(grid) <= 0):
            raise RecsysError(f"EASE: the lambda grid must hold positive values, got {grid}.")
        self.lam = lam
        self.grid = tuple(grid)
        self.k = k
        self.memory_gb = memory_gb
        self.chosen: float | None = None
        self.valid_recalls: dict[float, float] = {}
        self._b: np.ndarray | None = None

    def fit(self, data: TrainData) -> Self:
        check_train_data(data.train, self.name)
        self.n_items = data.n_items
        self.warm = np.flatnonzero(data.warm_items)
        limit = max_items(int(self.memory_gb * 2**30))
        if self.warm.size > limit:
            raise DatasetError(
                f"EASE solves a dense {self.warm.size:,} x {self.warm.size:,} system (about "
                f"{DENSE_COPIES * 8 * self.warm.size**2 / 2**30:.1f} GiB); the limit is {limit:,} warm items "
                f"({self.memory_gb:g} GiB). Raise memory_gb or use itemknn / bpr for this catalogue."
            )
        x = data.train.tocsr()[:, self.warm].astype(np.float64)
        x.data[:] = 1.0
        gram = (x.T @ x).toarray()
        self._x = x.astype(np.float32).tocsr()
        self.valid_recalls = {}
        if self.lam is not None or data.valid.nnz == 0:
            self.chosen = self.lam if self.lam is not None else self.grid[len(self.grid) // 2]
            self._b = ease_weights(gram, self.chosen).astype(np.float32)
            return self
        best, kept = -1.0, None
        for lam in self.grid:
            self._b = ease_weights(gram, lam).astype(np.float32)
            recall = validation_recall(self._score_batch, data.train, data.valid, self.k)
            self.valid_recalls[lam] = recall
            if recall > best:
                best, self.chosen, kept = recall, lam, self._b
        self._b = kept
        return self

    def _score_batch(self, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), self.n_items), dtype=np.float32)
        rows: sp.csr_matrix = self._x[np.asarray(users)]
        out[:, self.warm] = rows @ self._b
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._b is None:
            raise RuntimeError("EASE.score called before fit().")
        return score_in_batches(self._score_batch, users, self.n_items)

    def refit_overrides(self) -> dict[str, object]:
        """The lambda chosen on validation, fixed."""
        return {"lam": self.chosen} if self.lam is None and self.valid_recalls else {}

    def extra_info(self) -> dict[str, object]:
        return {
            "lambda": self.chosen,
            "tuned": bool(self.valid_recalls),
            f"valid_recall@{self.k}": {str(k): round(v, 4) for k, v in self.valid_recalls.items()},
            "warm_items": int(self.warm.size) if self._b is not None else None,
        }
