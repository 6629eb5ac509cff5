"""Map colours: tellable apart for any number of categories, and never the query star's gold."""

from __future__ import annotations

import itertools

import pytest

from recsys.ui.palette import BASE, RESERVED, category_palette, colour_distance, distinct_colours


@pytest.mark.parametrize("n", [1, 5, 10, 16, 26, 40])
def test_colours_stay_apart_from_each_other_and_from_the_marks(n):
    colours = distinct_colours(n)
    assert len(colours) == n == len(set(colours))
    if n > 1:
        assert min(colour_distance(a, b) for a, b in itertools.combinations(colours, 2)) > 25
    assert min(colour_distance(c, mark) for c in colours for mark in RESERVED) > 20


def test_many_categories_still_get_a_colour_each():
    colours = distinct_colours(300)  # the fallback keeps growing, however many there are
    assert len(set(colours)) == 300
    assert all(len(c) == 7 and c.startswith("#") for c in colours)


def test_largest_groups_get_the_first_colours_and_the_choice_is_stable():
    groups = ["b"] * 3 + ["a"] * 5 + ["c"] * 3
    palette = category_palette(groups)
    assert palette == {"a": BASE[0], "b": BASE[1], "c": BASE[2]}
    assert category_palette(list(reversed(groups))) == palette


def test_colour_distance_is_perceptual():
    assert colour_distance("#ffffff", "#000000") == pytest.approx(100, abs=0.5)
    assert colour_distance("#1f77b4", "#1f77b5") < 1
