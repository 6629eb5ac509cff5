"""Explore: the catalogue on a 2-D UMAP map with the query and its results labelled; click a point to see and
hear it beside the map, select several to list or like."""

from __future__ import annotations

import streamlit as st

from recsys.errors import InputError
from recsys.maps import FUSED, METRICS, ProjectionParams, query_vector
from recsys.ui import explore, explore_panel, resources, state
from recsys.ui.page import start_page
from recsys.ui.palette import category_palette
from recsys.ui.thumbs import thumbnail

engine, controls = start_page("Explore the embedding space", ":material/scatter_plot:", tab_title="Explore")
last = state.get_last_search(st.session_state)

left, right = st.columns([1, 2])
source = left.selectbox(
    "Map of",
    [FUSED, *engine.item_modalities],
    key="map-source",
    help="fused: the items' weighted modalities together (as early fusion sees them)",
)
with right.expander("UMAP parameters", expanded=False):
    n_neighbors = st.slider("n_neighbors", 2, 100, 15, key="umap-neighbors", help="larger = more global structure")
    min_dist = st.slider("min_dist", 0.0, 1.0, 0.1, 0.05, key="umap-min-dist", help="smaller = tighter clusters")
    metric = st.selectbox("metric", METRICS, key="umap-metric")

try:
    indices, groups, projection, sample = resources.get_map(
        engine, source, controls.weights, ProjectionParams(n_neighbors, min_dist, metric)
    )
except InputError as exc:
    st.error(str(exc))
    st.stop()

query_xy = None
if last is not None:
    qv = query_vector(engine, last.query, source, controls.weights)
    if qv is not None:
        query_xy = projection.transform(qv[None, :])[0]
coords = resources.map_coords(engine, source, controls.weights, projection)
frame = explore.map_frame(engine.catalogue, indices, coords, last.result_ids if last else (), groups, sample=sample)
palette = category_palette(list(frame["group"]))
st.caption(
    f"{len(indices):,} items on the {source} map · "
    + (
        f"UMAP fitted on {len(projection.fitted):,} of them (by category), the rest placed by their neighbours · "
        if len(projection.fitted) < len(indices)
        else ""
    )
    + (
        f"{len(frame):,} of them drawn (a fixed sample of each category, every result among them) · "
        if len(frame) < len(indices)
        else ""
    )
    + (
        "the star is your last query, ringed and labelled its results"
        if last
        else "run a query on the Recommend page to see it and its results here"
    )
    + f" · click a point to {explore.what_a_click_shows(engine.catalogue)}; to select several, pick the lasso"
    " or box tool above the map and draw around them"
)
map_col, side = st.columns([3, 1])
with map_col:
    event = st.plotly_chart(
        explore.map_figure(frame, query_xy, palette=palette, click_hint=explore.click_hint(engine.catalogue)),
        key="map",
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )
ids = [i for i in explore.selected_ids(event) if i in set(frame["id"])]  # a stale selection may hold other ids

with side:
    explore_panel.render_focus(engine.catalogue, ids, frame)
    explore_panel.render_result_list(last, frame, palette)

if len(ids) < 2:
    if not ids:
        st.info(
            "Click a point to see it beside the map; pick the lasso or box tool above the map to select"
            " several and like them."
        )
    st.stop()
st.subheader(f"{len(ids)} selected")
chosen = (
    frame.set_index("id").loc[ids, ["title", "category", "rank"]].reset_index().rename(columns={"rank": "result #"})
)
st.dataframe(chosen, hide_index=True, width="stretch")
previews = [engine.catalogue.item(i) for i in ids if engine.catalogue.item(i).image is not None][:8]
if previews:
    for col, item in zip(st.columns(8), previews, strict=False):
        col.image(thumbnail(item.image), caption=item.title, width="stretch")


def _like_all(item_ids: list[str]) -> None:
    profile = state.get_profile(st.session_state)
    for item_id in item_ids:
        profile.like(item_id)


st.button(
    f"Like these {len(ids)} items",
    icon=":material/thumb_up:",
    key="like-selected",
    on_click=_like_all,
    args=(ids,),
)
