"""The row table a store rebuilds when it opens (``RowTable.bulk``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

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
