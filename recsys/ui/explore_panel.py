"""The Explore page's side panel: the clicked item (picture, sound, links) and the list of the query's results.

Plotly's hover box cannot show pictures or play sounds, so a click on the map (a one-point
selection, sent back by ``st.plotly_chart(on_select="rerun")``) brings the item here instead;
its sound starts on the click that chose it, not again on later reruns.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import streamlit as st

from recsys.ui import cards, explore
from recsys.ui.state import LastSearch, get_profile
from recsys.ui.thumbs import thumbnail

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from recsys.catalogue import Catalogue

FOCUS_KEY = "map-focus"
LAST_FOCUS_KEY = "map-focus-played"
RESULTS_KEY = "map-results"


def _like(item_id: str) -> None:
    get_profile(st.session_state).like(item_id)


def _why(item_id: str) -> None:
    st.session_state[cards.WHY_ITEM_KEY] = item_id


def render_focus(catalogue: Catalogue, ids: Sequence[str], frame: pd.DataFrame) -> str | None:
    """Show the clicked item (or one of several selected); return its id, None when nothing is selected."""
    with st.container(key=FOCUS_KEY, border=True):
        if not ids:
            st.caption(f"Click a point on the map to {explore.what_a_click_shows(catalogue)} here.")
            st.session_state.pop(LAST_FOCUS_KEY, None)
            return None
        item_id = ids[0]
        if len(ids) > 1:
            item_id = st.selectbox(
                f"{len(ids)} selected: show",
                list(ids),
                key="map-focus-select",
                format_func=lambda i: catalogue.item(i).title,
            )
        item = catalogue.item(item_id)
        fresh = st.session_state.get(LAST_FOCUS_KEY) != item_id
        st.session_state[LAST_FOCUS_KEY] = item_id
        st.image(thumbnail(item.image), width="stretch")
        rank = frame.loc[frame["id"] == item_id, "rank"]
        where = f" · result #{int(rank.iloc[0])}" if len(rank) and rank.notna().iloc[0] else ""
        st.markdown(f"**{html.escape(item.title)}**")
        st.caption(f"{item.category or 'uncategorised'}{where}")
        if item.description and item.description.strip() != item.title.strip():
            st.caption(item.description)
        if item.audio is not None:
            st.audio(str(item.audio), autoplay=fresh)  # plays on the click that chose it
        else:
            st.caption("No sound for this item.")
        row = st.container(horizontal=True, gap="small")
        row.button("Like", key="map-focus-like", icon=":material/thumb_up:", on_click=_like, args=(item_id,))
        if row.button("Why?", key="map-focus-why", icon=":material/help:", on_click=_why, args=(item_id,)):
            st.switch_page(cards.WHY_PAGE)
    return item_id


def result_lines(last: LastSearch | None, results: pd.DataFrame, palette: Mapping[str, str]) -> list[str]:
    """HTML lines of the side list: the query, then each ringed result with its category colour."""
    if last is None:
        return []
    query = last.query
    what = [f"“{html.escape(query.text.strip())}”"] if query.text and query.text.strip() else []
    what += ["a picture"] * (query.image is not None) + ["a sound"] * (query.audio is not None)
    what += [f"{len(query.likes)} liked"] * bool(query.likes)
    lines = [f"<div><span style='color:#b8860b'>★</span> <b>your query</b>: {', '.join(what) or 'your profile'}</div>"]
    for row in results.itertuples():
        dot = palette.get(row.group, "#7f7f7f")
        lines.append(
            f"<div title='{html.escape(row.category)}'><b>{row.rank}</b> "
            f"<span style='display:inline-block;width:0.7em;height:0.7em;border-radius:50%;background:{dot}'></span> "
            f"{html.escape(row.title)}</div>"
        )
    return lines


def render_result_list(last: LastSearch | None, frame: pd.DataFrame, palette: Mapping[str, str]) -> None:
    """The query and its results as a list beside the map: readable wherever the marks crowd."""
    from recsys.ui.explore import result_list

    lines = result_lines(last, result_list(frame), palette)
    if lines:
        with st.container(key=RESULTS_KEY):
            st.markdown("**On the map**")
            st.markdown(
                "<div style='font-size:0.85em;line-height:1.5'>" + "".join(lines) + "</div>", unsafe_allow_html=True
            )
