"""The one ranking rule: best first, ties to the lower position, for one list or each row."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys.ranking import top_k

# few distinct values, so that ties come up often; -inf stands for an excluded item
values = st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 1.0])
shapes = st.tuples(st.integers(1, 4), st.integers(0, 12))


@given(scores=arrays(np.float32, shapes, elements=values), k=st.integers(0, 14))
def test_each_row_and_each_list_is_ranked_best_first_ties_to_the_lower_position(scores, k):
    expected = [sorted(range(len(row)), key=lambda i, row=row: (-row[i], i))[:k] for row in scores.tolist()]
    np.testing.assert_array_equal(top_k(scores, k), np.array(expected, dtype=np.int64).reshape(len(scores), -1))
    assert top_k(scores, k).dtype == np.int64
    for row, want in zip(scores, expected, strict=True):
        assert top_k(row, k).tolist() == want
    partial = top_k(scores, k, cut_by_position=False)  # the lab's: any of the items tied at the cut
    best = top_k(scores, k)
    np.testing.assert_array_equal(np.take_along_axis(scores, partial, axis=1), np.take_along_axis(scores, best, axis=1))
