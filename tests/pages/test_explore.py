"""The Explore page under AppTest: the map, the query marker, parameters, selection -> table -> like."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from recsys.ui.explore import QUERY_ID, selected_ids


def figure(at) -> dict:
    """The displayed figure as plain lists (plotly 6 ships arrays base64-encoded in the spec)."""
    charts = at.get("plotly_chart")
    assert charts, "no plotly chart on the page"
    spec = json.loads(charts[0].proto.spec)
    return {
        "data": [{"name": t.get("name"), "x": _array(t["x"]), "customdata": t.get("customdata")} for t in spec["data"]]
    }


def _array(value) -> list:
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def test_map_shows_every_item_coloured_by_category(fake_app):
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    assert not at.exception
    spec = figure(at)
    names = {t["name"] for t in spec["data"]}
    assert {"food", "vehicles", "animals", "symbols"} <= names
    assert sum(len(t["x"]) for t in spec["data"]) == 6
    assert any("run a query" in c.value for c in at.caption)


def explore_after_search(fake_app, text: str):
    """The Explore page after ``text`` ran on the Recommend page."""
    at = fake_app().run()
    at.text_input(key="query-text").set_value(text).run()
    explore = fake_app("pages/1_Explore.py")
    explore.session_state["last_search"] = at.session_state["last_search"]
    explore.run(timeout=180)
    assert not explore.exception
    return explore


def test_a_map_past_the_drawing_limit_draws_a_sample_of_each_category_and_says_so(fake_app, monkeypatch):
    from recsys.ui import explore

    monkeypatch.setattr(explore, "MAX_DRAWN", 2)  # 6 items: each category keeps its floor of 1 point
    monkeypatch.setattr(explore, "GROUP_FLOOR", 1)
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    assert not at.exception
    traces = figure(at)["data"]
    assert sorted(t["name"] for t in traces) == ["animals", "food", "symbols", "vehicles"]
    assert [len(t["x"]) for t in traces] == [1, 1, 1, 1]
    assert any("6 items on the fused map" in c.value and "4 of them drawn" in c.value for c in at.caption)


def test_a_result_outside_the_drawn_sample_is_placed_where_a_whole_map_places_it(fake_app, monkeypatch):
    """A large map places only the points it draws; a result outside them is placed when drawn."""
    import streamlit as st

    from recsys import maps
    from recsys.ui import explore

    monkeypatch.setattr(maps, "stratified_sample", lambda n, size, groups, seed: np.arange(n - 4, n))  # 4 fitted
    monkeypatch.setattr(explore, "MAX_DRAWN", 2)
    monkeypatch.setattr(explore, "GROUP_FLOOR", 1)
    placed = []
    place_items = maps.Projection.place_items
    monkeypatch.setattr(
        maps.Projection, "place_items", lambda self, rows, of: placed.append(len(rows)) or place_items(self, rows, of)
    )
    lazily = explore_after_search(fake_app, "a red apple")
    result = next(t for t in figure(lazily)["data"] if t["name"] == "results")
    assert result["customdata"][0] == ["apple"] and np.isfinite(result["x"][0])
    # car, taxi, frog and note fitted; of the others lime is drawn (placed with the map), apple is
    # not (placed once it was drawn as a result)
    assert placed == [1, 1]

    st.cache_resource.clear()
    monkeypatch.setattr(explore, "MAX_DRAWN", 50_000)  # drawn whole: every item placed up front
    whole = explore_after_search(fake_app, "a red apple")
    again = next(t for t in figure(whole)["data"] if t["name"] == "results")
    assert again["customdata"][0] == ["apple"] and again["x"][0] == pytest.approx(result["x"][0], abs=1e-5)


def test_query_marker_and_results_after_a_search(fake_app):
    explore = explore_after_search(fake_app, "a red apple")
    traces = {t["name"]: t for t in figure(explore)["data"]}
    assert "your query" in traces and traces["your query"]["customdata"] == [[QUERY_ID]]
    assert traces["results"]["customdata"][0] == ["apple"]


def test_changing_umap_parameters_redraws(fake_app):
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    before = figure(at)["data"][0]["x"]
    at.slider(key="umap-min-dist").set_value(0.9).run(timeout=180)
    at.selectbox(key="map-source").set_value("text").run(timeout=180)
    assert not at.exception
    assert figure(at)["data"][0]["x"] != before


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, []),
        ({"selection": {"points": []}}, []),
        (
            {
                "selection": {
                    "points": [
                        {"customdata": ["car"]},
                        {"customdata": ["taxi"]},
                        {"customdata": ["car"]},
                        {"customdata": [QUERY_ID]},
                    ]
                }
            },
            ["car", "taxi"],
        ),
        ({"selection": {"points": [{"customdata": "frog"}]}}, ["frog"]),
    ],
)
def test_selected_ids_reads_plotly_events(event, expected):
    assert selected_ids(event) == expected


def test_box_selection_lists_items_and_likes_them(fake_app, monkeypatch):
    """AppTest cannot drag a lasso: the chart returns the selection a browser would send."""
    import streamlit as st

    original = st.plotly_chart
    event = {"selection": {"points": [{"customdata": ["car"]}, {"customdata": ["taxi"]}], "box": [], "lasso": []}}

    def plotly_chart(fig, *args, **kwargs):
        original(fig, *args, **kwargs)
        return event

    monkeypatch.setattr(st, "plotly_chart", plotly_chart)
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    assert not at.exception
    assert "2 selected" in [s.value for s in at.subheader]
    table = at.dataframe[0].value
    assert list(table["title"]) == ["Car", "Taxi"]
    at.button(key="like-selected").click().run(timeout=180)
    assert at.session_state["profile"].likes == ["car", "taxi"]
    assert any("Liked" in m.value and "Car" in m.value and "Taxi" in m.value for m in at.sidebar.markdown)


def click(monkeypatch, item_id: str) -> None:
    """Make the chart return what a browser sends when one point is clicked."""
    import streamlit as st

    original = st.plotly_chart
    event = {"selection": {"points": [{"customdata": [item_id, "x"]}], "box": [], "lasso": []}}

    def plotly_chart(fig, *args, **kwargs):
        original(fig, *args, **kwargs)
        return event

    monkeypatch.setattr(st, "plotly_chart", plotly_chart)


def test_clicking_a_point_shows_its_picture_and_plays_its_sound_once(fake_app, monkeypatch):
    click(monkeypatch, "lime")
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    assert not at.exception
    assert "**Lime**" in [m.value for m in at.markdown]
    assert any(c.value.startswith("food/fruit") for c in at.caption)
    players = at.get("audio")
    assert len(players) == 1 and players[0].proto.autoplay  # the click that chose it plays it
    at.run(timeout=180)  # any later rerun (a slider, a like) must not play it again
    assert not at.get("audio")[0].proto.autoplay
    at.button(key="map-focus-like").click().run(timeout=180)
    assert at.session_state["profile"].likes == ["lime"]
    assert not any("selected" in s.value for s in at.subheader)  # one point: no "selected" table, the panel is enough


def test_nothing_selected_says_how_to_see_and_hear_items(fake_app):
    at = fake_app("pages/1_Explore.py").run(timeout=180)
    assert any("Click a point" in c.value for c in at.caption)
    assert any("Click a point" in i.value for i in at.info)


def test_results_are_labelled_on_the_map_and_listed_beside_it(fake_app):
    explore = explore_after_search(fake_app, "a red apple")
    spec = json.loads(explore.get("plotly_chart")[0].proto.spec)
    notes = [a["text"] for a in spec["layout"]["annotations"]]
    assert notes[0] == "★ your query" and notes[1] == "1 Apple"
    assert all((a["ax"], a["ay"]) != (0, 0) for a in spec["layout"]["annotations"])
    listed = next(m.value for m in explore.markdown if "your query" in m.value)
    assert "“a red apple”" in listed and "<b>1</b>" in listed and "Apple" in listed
    colours = {t["name"]: t["marker"]["color"] for t in spec["data"] if t["name"] not in ("results", "your query")}
    assert len(set(colours.values())) == len(colours)


def test_a_second_open_reads_the_map_from_disk(fake_app, monkeypatch):
    """A new process (its memory caches empty) draws the map from the cached coordinates: no UMAP."""
    import streamlit as st

    from recsys import maps as projection

    first = fake_app("pages/1_Explore.py").run(timeout=180)
    st.cache_resource.clear()

    def no_fit(*args, **kwargs):
        raise AssertionError("the map was fitted again")

    monkeypatch.setattr(projection, "_fit_umap", no_fit)
    again = fake_app("pages/1_Explore.py").run(timeout=180)
    assert not again.exception
    assert figure(again)["data"][0]["x"] == figure(first)["data"][0]["x"]
