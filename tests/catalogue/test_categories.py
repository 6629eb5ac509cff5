"""Category filters: the vectorised forms (``SortedNames``, ``CategoryCodes``) agree with the rule itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.catalogue.categories import (
    CategoryCodes,
    SortedNames,
    category_prefixes,
    in_category,
    normalize_category,
)
from recsys.errors import InputError

# few letters, so that prefixes ("a" of "ab"), shared parents and sub-categories come up often; "-" and "."
# sort between "a" and "a/..." and "0" just after "/", where a filter's categories stop being one sorted run
parts = st.text(alphabet="a-.0", min_size=1, max_size=2)
paths = st.lists(parts, min_size=1, max_size=3).map("/".join)
categories = st.lists(st.one_of(st.just(""), paths), max_size=40)


@settings(max_examples=300, deadline=None)
@given(cats=categories, path=paths, at_most=st.integers(0, 45))
def test_codes_answer_a_filter_as_in_category_does(cats, path, at_most):
    codes = CategoryCodes(cats)
    expected = np.array([in_category(c, path) for c in cats], dtype=bool)
    np.testing.assert_array_equal(SortedNames(cats).named(path), expected)
    members = np.flatnonzero(expected)
    rows = codes.rows(path, at_most)
    if len(members) > at_most:
        assert rows is None
    else:
        np.testing.assert_array_equal(rows, members)
    if not len(members):
        with pytest.raises(InputError, match="no item in category"):
            codes.mask(path)
        return
    np.testing.assert_array_equal(codes.mask(f"/{path}/"), expected)  # outer slashes name the same path
    some = np.arange(len(cats))[::2]
    np.testing.assert_array_equal(codes.mask(path, some), expected[some])


def test_a_filter_may_name_every_category_and_its_ancestors():
    codes = CategoryCodes(["food/fruit/apples", "food/bread", "", "tools"])
    for path in ("food", "food/fruit", "/food/fruit/apples/", "food/bread", "tools"):
        codes.check(path)
    assert category_prefixes("food/fruit") == ["food", "food/fruit"]
    for path in ("foo", "food/fruit/apple", "fruit", "tool", "/"):  # a prefix of a name is not a parent category
        with pytest.raises(InputError, match=f"no item in category '{path}'"):
            codes.check(path)
    assert SortedNames([]).named("food").shape == (0,)


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ("", "empty category filter"),
        ("a//b", "empty part"),
        ("a/" * 40, "too long"),
        (3, "must be strings"),
        ("a\0", "contains a NUL character"),
    ],
)
def test_malformed_category_paths_are_refused(category, message):
    with pytest.raises(InputError, match=message):
        normalize_category(category)
