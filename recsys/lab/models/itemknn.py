"""ItemKNN: collaborative item-item cosine similarity on the training matrix."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recsys.lab.base import Recommender, TrainData
from recsys.lab.training import block_rows


def prune_top_k(sim: sp.csr_matrix, k: int, block: int = 1024) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries (the item's neighbours), densifying up to ``block`` rows
    at a time, fewer over many items (:func:`~recsys.lab.training.block_rows`: 1,024 rows of 1M
    items held 4 GB)."""
    n = sim.shape[0]
    if k >= n:
        return sim.tocsr()
    block = block_rows(n, block)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        dense = sim[start : start + block].toarray()
        idx = np.argpartition(-dense, k - 1, axis=1)[:, :k]
        v = np.take_along_axis(dense, idx, axis=1)
        r = np.repeat(np.arange(start, start + dense.shape[0]), k)
        keep = v.ravel() > 0
        rows.append(r[keep])
        cols.append(idx.ravel()[keep])
        vals.append(v.ravel()[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape)


class ItemKNN(Recommender):
    """Score(u, i) = sum over the user's training items j of cos(i, j), over each item's ``k`` neighbours."""

    name = "itemknn"

    def __init__(self, k: int = 100) -> None:
        self.k = k

    def fit(self, data: TrainData) -> Self:
        cols = normalize(data.train.tocsc().astype(np.float32), norm="l2", axis=0)
        sim = (cols.T @ cols).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        # Row i of the pruned matrix holds item i's neighbours j: score(u, i) = sum_j x_uj sim(i, j).
        self.neighbours_t = prune_top_k(sim, self.k).T.tocsr()
        self.train = data.train.tocsr()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.train[np.asarray(users)] @ self.neighbours_t).todense(), dtype=np.float32)
