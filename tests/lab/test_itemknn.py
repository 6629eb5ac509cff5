"""ItemKNN's neighbour pruning against a dense ranking, ties included, in blocks of any size."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from recsys.lab.models import itemknn
from recsys.lab.models.itemknn import prune_top_k


def dense_top_k(dense: np.ndarray, k: int) -> np.ndarray:
    """Each row's k largest positive entries by a stable sort: ties go to the lower column."""
    out = np.zeros_like(dense)
    for r, row in enumerate(dense):
        top = np.argsort(-row, kind="stable")[:k]
        top = top[row[top] > 0]
        out[r, top] = row[top]
    return out


@given(
    n=st.integers(0, 25),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    levels=st.integers(1, 6),
    block=st.integers(1, 40),
    positive_only=st.booleans(),
)
def test_each_row_keeps_its_k_largest_positive_entries(n, k, seed, levels, block, positive_only):
    """Ties to the lower column; few distinct values (ties everywhere), negatives and explicit zeros
    stored; any block of entries."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-1, levels, (n, n)).astype(np.float32)
    stored = rng.random((n, n)) < 0.6
    rows, cols = np.nonzero(stored)
    sim = sp.csr_matrix((values[rows, cols], (rows, cols)), shape=(n, n))
    dense = np.where(stored, values, 0.0).astype(np.float32)
    if positive_only:  # ItemKNN's own similarities: canonical and positive, pruned without a copy
        sim.data[sim.data <= 0] = 0.5
        dense = sim.toarray()
    before = sim.copy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(itemknn, "PRUNE_BLOCK_NNZ", block)
        kept = prune_top_k(sim, k)
    np.testing.assert_array_equal(kept.toarray(), dense_top_k(dense, k))
    assert (sim != before).nnz == 0  # the input is left as it was
    assert kept.dtype == sim.dtype and kept.shape == sim.shape


def test_a_row_longer_than_the_block_is_ranked_alone(monkeypatch):
    monkeypatch.setattr(itemknn, "PRUNE_BLOCK_NNZ", 2)
    sim = sp.csr_matrix(np.array([[0, 3, 1, 2], [1, 0, 0, 0], [0, 0, 0, 0], [2, 2, 2, 0]], dtype=np.float32))
    expected = [[0, 3, 0, 2], [1, 0, 0, 0], [0, 0, 0, 0], [2, 2, 0, 0]]
    np.testing.assert_array_equal(prune_top_k(sim, 2).toarray(), expected)
