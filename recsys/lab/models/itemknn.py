"""ItemKNN: collaborative item-item cosine similarity on the training matrix."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recsys.lab.base import Recommender, TrainData

#: Entries of the similarity matrix ranked at a time: the sort's keys and order stay ~0.3 GB.
PRUNE_BLOCK_NNZ = 1 << 23


def prune_top_k(sim: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest positive entries (the item's neighbours), ties to the lower column.

    Only the stored entries are ranked: one sort a block of rows at a time. Densifying each row, as
    before, ranked every item for every item: ``n^2`` work (``benchmarks/lab_scale.py --itemknn``:
    at 200k items 178 s, against 7 s)."""
    sim = sp.csr_matrix(sim, dtype=np.float32)  # not copied when it is one already (ItemKNN's is)
    if not (sim.has_canonical_format and (sim.data > 0).all()):
        sim = sim.copy()
        sim.data[~(sim.data > 0)] = 0.0  # only positive similarities make neighbours
        sim.eliminate_zeros()
        sim.sum_duplicates()  # each row's columns in order, so a stable sort puts the lower column first
    starts = sim.indptr
    rows, entries = [], []
    row = 0
    while row < sim.shape[0]:
        end = max(row + 1, int(np.searchsorted(starts, starts[row] + PRUNE_BLOCK_NNZ, side="right")) - 1)
        lo, hi = starts[row], starts[end]
        local = np.repeat(np.arange(end - row), np.diff(starts[row : end + 1]))
        # One integer key, the row then the value from the largest (a positive float's bits order as
        # its values do): a sort by three keys (row, value, column) was slower.
        falling = np.uint64(0xFFFFFFFF) - sim.data[lo:hi].view(np.uint32).astype(np.uint64)
        order = np.argsort((local.astype(np.uint64) << np.uint64(32)) | falling, kind="stable")
        rank = np.arange(order.size) - (starts[row + local[order]] - lo)
        chosen = order[rank < k]
        rows.append(row + local[chosen])
        entries.append(lo + chosen)
        row = end
    chosen = np.concatenate(entries) if entries else np.zeros(0, dtype=np.int64)
    counts = np.bincount(np.concatenate(rows), minlength=sim.shape[0]) if rows else np.zeros(sim.shape[0], int)
    indptr = np.concatenate(([0], np.cumsum(counts)))  # rows were kept in order: the entries are CSR already
    out = sp.csr_matrix((sim.data[chosen], sim.indices[chosen], indptr), shape=sim.shape)
    out.sort_indices()
    return out


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
