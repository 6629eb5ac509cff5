"""The Explore figure: WebGL traces, a light per-point payload on large maps, readable results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.ui.explore import DETAIL_LIMIT, QUERY_ID, item_groups, map_figure, map_frame


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
    assert names == ["a", "b", "results", "your query"]  # results and query drawn over the items
    a = fig.data[0]
    assert [list(row) for row in a.customdata[:2]] == [["i0", "a/leaf"], ["i2", "a/leaf"]]
    assert "customdata[1]" in a.hovertemplate
    assert fig.data[3].customdata[0][0] == QUERY_ID


def test_large_maps_send_only_ids_and_hover_title_plus_category():
    fig = map_figure(frame(DETAIL_LIMIT + 2))
    items = [t for t in fig.data if t.name in ("a", "b")]
    assert sum(len(t.x) for t in items) == DETAIL_LIMIT + 2
    for t in items:
        assert t.customdata.shape[1] == 1  # the id, which selection reads back; nothing else per point
        assert "%{hovertext}" in t.hovertemplate and "%{fullData.name}" in t.hovertemplate
        assert t.marker.size < 8


def test_result_labels_sit_beside_their_rings():
    fig = map_figure(frame(10, ranked=3))
    results = next(t for t in fig.data if t.name == "results")
    assert list(results.text) == ["1", "2", "3"]
    assert results.textposition != "middle center"
    assert [row[0] for row in results.customdata] == ["i0", "i1", "i2"]


def test_map_frame_and_groups(fake_engine):
    cat = fake_engine.catalogue
    indices = np.array([0, 2, 4])
    coords = np.array([[0, 1], [2, 3], [4, 5]], dtype=np.float32)
    f = map_frame(cat, indices, coords, [cat.items[2].id])
    assert list(f["id"]) == [cat.items[i].id for i in indices]
    assert list(f["group"]) == item_groups(cat, indices)
    assert f["rank"].tolist()[1] == 1 and f["rank"].isna().sum() == 2
    assert f[["x", "y"]].to_numpy().tolist() == coords.tolist()
