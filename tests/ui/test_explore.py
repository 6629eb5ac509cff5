"""The Explore figure: WebGL traces, a light per-point payload on large maps, readable results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from recsys.catalogue import Catalogue, Item
from recsys.ui.explore import (
    CLICK_HINT,
    DETAIL_LIMIT,
    GROUP_FLOOR,
    LABELLED_RESULTS,
    MAP_HEIGHT,
    MAP_WIDTH_GUESS,
    QUERY_ID,
    drawn_rows,
    item_groups,
    map_figure,
    map_frame,
    result_list,
)
from recsys.ui.map_labels import Canvas, _overlap, boxes


def frame(n: int, ranked: int = 3) -> pd.DataFrame:
    rank = np.full(n, np.nan)
    rank[:ranked] = np.arange(1, ranked + 1)
    return pd.DataFrame(
        {
            "x": np.arange(n, dtype=np.float32),
            "y": np.zeros(n, dtype=np.float32),
            "id": [f"i{k}" for k in range(n)],
            "title": [f"Item {k}" for k in range(n)],
            "category": [f"{'ab'[k % 2]}/leaf" for k in range(n)],
            "group": ["ab"[k % 2] for k in range(n)],
            "rank": rank,
        }
    )


def test_every_trace_is_webgl_and_small_maps_hover_the_full_category():
    fig = map_figure(frame(10), query_xy=np.array([0.5, 0.5]))
    assert {t.type for t in fig.data} == {"scattergl"}
    names = [t.name for t in fig.data]
    # the query and then the results drawn over the items: a click next to the star selects the result
    assert names == ["a", "b", "your query", "results"]
    a = fig.data[0]
    rows = [list(row) for row in a.customdata[:2]]
    assert rows == [["i0", "a/leaf", "<br>result #1"], ["i2", "a/leaf", "<br>result #3"]]
    assert "customdata[1]" in a.hovertemplate and CLICK_HINT in a.hovertemplate
    assert fig.data[2].customdata[0][0] == QUERY_ID


def test_large_maps_send_only_ids_and_hover_title_plus_category():
    fig = map_figure(frame(DETAIL_LIMIT + 2))
    items = [t for t in fig.data if t.name in ("a", "b")]
    assert sum(len(t.x) for t in items) == DETAIL_LIMIT + 2
    for t in items:
        assert t.customdata.shape[1] == 1  # the id, which selection reads back; nothing else per point
        assert "%{hovertext}" in t.hovertemplate and "%{fullData.name}" in t.hovertemplate
        assert t.marker.size < 8


def test_query_and_results_are_labelled_beside_their_marks_without_overlap():
    f = frame(40, ranked=12)
    f[["x", "y"]] = f[["x", "y"]].astype(np.float64)
    f.loc[:11, ["x", "y"]] = np.random.default_rng(1).normal(0.0, 0.2, (12, 2))  # results crowd the query
    fig = map_figure(f, query_xy=np.array([0.0, 0.0]))
    results = next(t for t in fig.data if t.name == "results")
    assert [row[0] for row in results.customdata] == [f"i{k}" for k in range(12)]
    notes = fig.layout.annotations
    assert [n.text for n in notes[:3]] == ["★ your query", "1 Item 0", "2 Item 1"]
    assert all(n.showarrow and (n.ax, n.ay) != (0, 0) for n in notes)  # offset, an arrow back to the mark
    canvas = Canvas.around(np.concatenate([f[["x", "y"]].to_numpy(), [[0.0, 0.0]]]), MAP_WIDTH_GUESS, MAP_HEIGHT - 50)
    points = np.array([[n.x, n.y] for n in notes])
    placed = boxes(points, [n.text for n in notes], np.array([[n.ax, n.ay] for n in notes]), canvas)
    assert all(_overlap(a, b) == 0 for i, a in enumerate(placed) for b in placed[i + 1 :])


def test_labels_stop_at_the_labelled_limit_and_the_side_list_has_every_result():
    f = frame(60, ranked=LABELLED_RESULTS + 5)
    fig = map_figure(f)
    assert len(fig.layout.annotations) == LABELLED_RESULTS
    listed = result_list(f)
    assert listed["rank"].tolist() == list(range(1, LABELLED_RESULTS + 6))
    assert listed["id"].tolist()[:2] == ["i0", "i1"]


def test_groups_get_distinct_palette_colours():
    f = frame(30)
    f["group"] = [f"g{k % 15}" for k in range(30)]
    fig = map_figure(f)
    colours = [t.marker.color for t in fig.data if t.name.startswith("g")]
    assert len(colours) == 15 and len(set(colours)) == 15


def test_map_frame_and_groups(fake_engine):
    cat = fake_engine.catalogue
    indices = np.array([0, 2, 4])
    coords = np.array([[0, 1], [2, 3], [4, 5]], dtype=np.float32)
    f = map_frame(cat, indices, coords, [cat.items[2].id])
    assert list(f["id"]) == [cat.items[i].id for i in indices]
    assert list(f["group"]) == item_groups(cat, indices)
    assert f["rank"].tolist()[1] == 1 and f["rank"].isna().sum() == 2
    assert f[["x", "y"]].to_numpy().tolist() == coords.tolist()


def test_the_click_hint_names_only_the_media_the_catalogue_has():
    from recsys.catalogue import Catalogue, Item
    from recsys.ui.explore import what_a_click_shows

    def catalogue(image, audio):
        return Catalogue(Path("/x"), [Item("a", "A", "", "", image, audio)], [])

    assert what_a_click_shows(catalogue(Path("/x/a.png"), Path("/x/a.ogg"))) == "see its picture and hear its sound"
    assert what_a_click_shows(catalogue(Path("/x/a.png"), None)) == "see its picture"
    assert what_a_click_shows(catalogue(None, Path("/x/a.ogg"))) == "hear its sound"
    assert what_a_click_shows(catalogue(None, None)) == "see it"
    from recsys.ui.explore import click_hint

    assert click_hint(catalogue(Path("/x/a.png"), Path("/x/a.ogg"))) == CLICK_HINT
    assert click_hint(catalogue(Path("/x/a.png"), None)) == "click: see its picture"
    fig = map_figure(frame(10), click_hint="click: see its picture")
    assert "click: see its picture" in fig.data[0].hovertemplate


def _big_catalogue(sizes: dict[str, int]) -> Catalogue:
    items = [
        Item(f"{group}-{k}", f"{group} {k}", "", f"{group}/leaf", None, None)
        for group, n in sizes.items()
        for k in range(n)
    ]
    return Catalogue(Path("/x"), items, [])


def test_a_large_map_draws_a_fixed_sample_of_every_category_with_every_result():
    cat = _big_catalogue({"big": 6000, "mid": 1500, "tiny": 7})
    indices = np.arange(len(cat))[::-1]  # mapped in another order than the catalogue's
    coords = np.stack([indices, indices * 2], axis=1).astype(np.float32)
    results = ["big-5999", "tiny-3", "mid-0", "not-in-this-catalogue"]
    f = map_frame(cat, indices, coords, results, limit=1000)
    again = map_frame(cat, indices, coords, results, limit=1000)
    assert f["id"].tolist() == again["id"].tolist()  # the same points on every rerun
    assert 1000 <= len(f) <= 1000 + 3 * GROUP_FLOOR
    counts = f["group"].value_counts()
    assert counts["tiny"] == 7 and counts["mid"] >= GROUP_FLOOR and counts["big"] >= 1000 * 6000 // 7507
    assert set(results[:3]) <= set(f["id"]) and f["rank"].notna().sum() == 3
    # each drawn point keeps its own coordinates and the map's order
    rows = [cat.index_of(i) for i in f["id"]]
    assert f["x"].tolist() == [float(r) for r in rows] and f["y"].tolist() == [2.0 * r for r in rows]
    assert rows == sorted(rows, reverse=True)
    assert len(map_frame(cat, indices, coords, results, limit=len(cat))) == len(cat)  # under the limit: all


def test_a_large_map_asks_for_the_coordinates_of_its_drawn_points_only():
    cat = _big_catalogue({"big": 6000, "tiny": 7})
    indices = np.arange(len(cat))
    coords = np.stack([indices, -indices], axis=1).astype(np.float32)
    asked = []

    def coords_at(rows: np.ndarray) -> np.ndarray:
        asked.append(rows.copy())
        return coords[rows]

    results = ["big-5999", "tiny-1"]
    frame = map_frame(cat, indices, coords_at, results, limit=1000)
    assert len(asked) == 1 and len(asked[0]) == len(frame) < len(cat)
    pd.testing.assert_frame_equal(frame, map_frame(cat, indices, coords, results, limit=1000))


@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    limit=st.integers(1, 500),
    keep=st.lists(st.integers(0, 2399), max_size=10),
)
def test_drawn_rows_keep_the_results_and_each_groups_floor(sizes, limit, keep):
    groups = [f"g{g}" for g, n in enumerate(sizes) for _ in range(n)]
    indices = np.arange(len(groups)) * 2  # catalogue rows of the mapped points
    rows = drawn_rows(groups, np.asarray(keep), indices, limit)
    assert np.all(np.diff(rows) > 0) and (len(rows) == 0 or 0 <= rows[0] <= rows[-1] < len(groups))
    assert set(np.flatnonzero(np.isin(indices, keep))) <= set(rows.tolist())
    drawn = [groups[r] for r in rows]
    for g, n in enumerate(sizes):
        assert drawn.count(f"g{g}") >= min(n, GROUP_FLOOR)
    assert len(rows) >= min(len(groups), limit) - len(sizes)  # each group's share, rounded down
    assert np.array_equal(rows, drawn_rows(groups, np.asarray(keep), indices, limit))


def test_a_kept_fixed_sample_draws_the_same_frame_as_one_worked_out_again():
    from recsys.ui.explore import fixed_sample

    cat = _big_catalogue({"big": 3000, "small": 40})
    indices = np.arange(len(cat))
    coords = np.zeros((len(cat), 2), dtype=np.float32)
    groups = item_groups(cat, indices)
    results = ["small-3", "big-2999"]
    kept = fixed_sample(groups, 500)
    again = map_frame(cat, indices, coords, results, groups, limit=500)
    pd.testing.assert_frame_equal(map_frame(cat, indices, coords, results, groups, limit=500, sample=kept), again)
    assert {"small-3", "big-2999"} <= set(again["id"])
