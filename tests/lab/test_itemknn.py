"""ItemKNN's neighbour pruning, whatever the block of rows it densifies at a time."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.lab import training
from recsys.lab.models.itemknn import prune_top_k


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 30), k=st.integers(1, 8), seed=st.integers(0, 2**16), rows_a_block=st.integers(1, 7))
def test_each_row_keeps_its_k_largest_entries_in_blocks_of_any_size(n, k, seed, rows_a_block):
    """Over many items a block holds fewer rows (at 1M items 33 rather than 1,024); the neighbours
    kept are each row's k largest positive entries all the same (distinct values, so no ties)."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n, n)) < 0.5, rng.permutation(n * n).reshape(n, n) + 1.0, 0.0).astype(np.float32)
    sim = sp.csr_matrix(dense)
    whole = prune_top_k(sim, k).toarray()
    old = training.SCORE_BLOCK_BYTES
    try:
        training.SCORE_BLOCK_BYTES = rows_a_block * 4 * n
        blocks = prune_top_k(sim, k).toarray()
    finally:
        training.SCORE_BLOCK_BYTES = old
    np.testing.assert_array_equal(blocks, whole)
    for row, kept in zip(dense, whole, strict=True):
        expected = np.zeros_like(row)
        if k < n:
            top = np.argsort(-row)[:k]
            expected[top] = row[top]
        else:
            expected = row
        np.testing.assert_array_equal(kept, expected)
