"""The row table a store rebuilds when it opens (``RowTable.bulk``)."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import recsys.store.rows as rows_module
from recsys.store.rows import RowTable


def reference(ids: list[str], retired: set[int]) -> tuple[list[bool], dict[str, int]]:
    """Row by row, as a store's writes made them: a retired row is dead, and a later live row of
    an id kills the earlier one."""
    alive = [r not in retired for r in range(len(ids))]
    row_of: dict[str, int] = {}
    for r, item in enumerate(ids):
        if alive[r]:
            if item in row_of:
                alive[row_of[item]] = False
            row_of[item] = r
    return alive, row_of


@given(
    rows=st.lists(st.tuples(st.sampled_from("abcdefg"), st.sampled_from(["", "x", "x/y", "z"])), max_size=40),
    retired=st.sets(st.integers(0, 39)),
    as_array=st.booleans(),
)
def test_bulk_keeps_the_last_live_row_of_each_id_and_every_rows_category(rows, retired, as_array):
    ids = [item for item, _ in rows]
    categories = [category for _, category in rows]
    retired = {r for r in retired if r < len(rows)}
    has = {"v": np.ones(len(rows), dtype=bool)}
    given_categories = np.asarray(categories, dtype=str) if as_array else categories
    dead = np.array(sorted(retired), dtype=np.int64)
    table = RowTable.bulk(["v"], ids, given_categories, ["1"] * len(rows), has, dead)
    alive, row_of = reference(ids, retired)
    assert table.alive.tolist() == alive
    assert table.row_of == row_of
    assert table.n_dead == len(rows) - len(row_of) and len(table) == len(row_of)
    assert [table.category_of(r) for r in range(len(rows))] == categories
    assert all(type(name) is str for name in table.cat_names)
    assert table.live_with("v") == len(row_of)
    more = table.append(["new"], ["x"], ["1"], {"v": np.ones(1, dtype=bool)})  # codes stay consistent
    assert table.category_of(int(more[0])) == "x"


@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "a/b", "a/c", "d", "d/e"]), st.booleans(), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    dead=st.sets(st.integers(0, 59)),
    category=st.sampled_from(["a", "a/b", "d", "d/e", "a/c"]),
    exclude=st.sets(st.integers(0, 59), max_size=4),
    small_share=st.sampled_from([0.0, 1 / 8, 1.0]),
)
def test_a_selections_counts_and_rows_are_the_masks_whatever_its_size(rows, dead, category, exclude, small_share):
    """A small selection keeps its rows (and the rows of each field among them), a large one reads
    the mask each time: both, and a selection less a few excluded ids, give the brute-force rows."""
    n = len(rows)
    ids = [f"i{r}" for r in range(n)]
    cats = [c for c, _, _ in rows]
    has = {"u": np.array([u for _, u, _ in rows], bool), "v": np.array([v for _, _, v in rows], bool)}
    table = RowTable.bulk(["u", "v"], ids, cats, ["1"] * n, has, np.array(sorted(r for r in dead if r < n), np.int64))
    excluded = [ids[r] for r in exclude if r < n]
    with mock.patch.object(rows_module, "SMALL_SELECTION_SHARE", small_share):
        check_selection(table, table.selection(category, excluded), category, excluded, cats, has)


def check_selection(table, selection, category, excluded, cats, has) -> None:
    n = len(cats)
    ids = table.ids
    for field in ("u", "v"):
        expected = [
            r
            for r in range(n)
            if table.alive[r] and has[field][r] and (cats[r] == category or cats[r].startswith(category + "/"))
            and ids[r] not in excluded
        ]
        assert table.candidates(field, selection).tolist() == expected
        assert table.count(field, selection) == len(expected)
    assert selection.size == int(np.count_nonzero(selection.mask))


def test_a_table_keeps_its_most_recently_used_selections_within_its_budget(monkeypatch):
    n, categories = 4_000, [f"c{i}" for i in range(40)]
    has = {"v": np.ones(n, bool)}
    cats = [categories[r % 40] for r in range(n)]
    table = RowTable.bulk(["v"], [f"i{r}" for r in range(n)], cats, ["1"] * n, has, np.zeros(0, np.int64))
    monkeypatch.setattr(rows_module, "MIN_SELECTIONS_KEPT", 4)
    monkeypatch.setattr(rows_module, "SELECTIONS_KEPT_BYTES", 10 * n)  # about ten masks of the table
    first = table.selection("c0", ())
    for category in categories[1:30]:
        table.selection(category, ())
        assert table.selection("c0", ()) is first  # used again: kept, while others come and go
    kept = table._category_masks
    assert 4 <= len(kept) <= 11 and sum(s.nbytes for s in kept.values()) <= 10 * n + first.nbytes
    assert list(kept)[-1] == "c0" and "c1" not in kept and "c29" in kept
    table.append(["new"], ["c0"], ["1"], {"v": np.ones(1, bool)})
    assert not table._category_masks  # a write changes every selection's rows
    assert table.count("v", table.selection("c0", ())) == 101


def test_rows_in_new_categories_join_the_selections_of_their_parents():
    """The sorted names a selection bisects are made again once rows bring new categories."""
    cats = ["a/b", "a-x", "d", "a"]
    has = {"u": np.ones(4, bool), "v": np.array([1, 0, 1, 1], bool)}
    table = RowTable.bulk(["u", "v"], ["i0", "i1", "i2", "i3"], cats, ["1"] * 4, has, np.zeros(0, np.int64))
    assert table.selection("a", ()).size == 2
    new = {"a/c": "i4", "a.c": "i5", "a": "i6", "d/a": "i7"}
    table.append(list(new.values()), list(new), ["1"] * 4, {"u": np.ones(4, bool), "v": np.ones(4, bool)})
    cats += list(new)
    has = {f: np.concatenate([has[f], np.ones(4, bool)]) for f in has}
    for category in ("a", "a/c", "d", "a.c"):
        check_selection(table, table.selection(category, ()), category, [], cats, has)
    assert table.selection("a", ()).size == 4
