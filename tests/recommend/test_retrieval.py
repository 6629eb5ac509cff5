"""Candidate retrieval's pieces on their own; the engine's tests drive them end to end."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.recommend.retrieval import union


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sets(st.integers(0, 40), max_size=12), max_size=5))
def test_the_union_of_candidate_lists_says_which_list_holds_each_row(parts):
    """The candidates' union and each search's membership in it, as a membership test per search gives."""
    arrays = [np.array(sorted(p, reverse=True), dtype=np.int64) for p in parts]
    rows, members = union(arrays)
    expected = np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)
    np.testing.assert_array_equal(rows, expected)
    assert len(members) == len(arrays)
    for part, mask in zip(arrays, members, strict=True):
        np.testing.assert_array_equal(mask, np.isin(rows, part))
