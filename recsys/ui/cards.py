"""Rendering of result cards and of the session profile."""

from __future__ import annotations

import html
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys.ui.state import get_profile
from recsys.ui.thumbs import thumbnail

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalogue import Catalogue
    from recsys.recommend import Recommendation

WHY_PAGE = "pages/2_Why_this_item.py"
WHY_ITEM_KEY = "why_item"

# one colour per query->item pair, stable across cards
PAIR_COLOURS = {
    "text": "#4C78A8",
    "image": "#F58518",
    "audio": "#54A24B",
    "text->image": "#B279A2",
    "text->audio": "#72B7B2",
    "image->text": "#E45756",
    "image->audio": "#EECA3B",
    "audio->text": "#9D755D",
    "audio->image": "#FF9DA6",
}


def pair_colour(pair: str) -> str:
    return PAIR_COLOURS.get(pair, "#BAB0AC")


def contribution_bar_html(contributions: Mapping[str, float]) -> str:
    """A thin stacked bar: each pair's width is its share of the total |contribution|."""
    total = sum(abs(v) for v in contributions.values())
    if total <= 0:
        return "<div style='height:8px;background:#eee;border-radius:4px'></div>"
    segments = []
    for pair, value in contributions.items():
        width = 100.0 * abs(value) / total
        if width < 0.5:
            continue
        style = f"width:{width:.1f}%;background:{pair_colour(pair)};height:8px"
        if value < 0:
            style += ";opacity:0.35"
        title = html.escape(f"{pair}: {value:+.3f}")
        segments.append(f"<div title='{title}' style='{style}'></div>")
    return (
        "<div style='display:flex;width:100%;border-radius:4px;overflow:hidden;background:#eee'>"
        + "".join(segments)
        + "</div>"
    )


def contribution_caption(contributions: Mapping[str, float]) -> str:
    """'text 0.41 · image 0.12': the same numbers as the bar, readable."""
    parts = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))
    return " · ".join(f"{pair} {value:+.2f}" for pair, value in parts)


def _like(state: MutableMapping[str, Any], item_id: str) -> None:
    get_profile(state).like(item_id)


def _dislike(state: MutableMapping[str, Any], item_id: str) -> None:
    get_profile(state).dislike(item_id)


def render_card(rec: Recommendation, key_prefix: str = "card") -> None:
    """Thumbnail, title, category, sound, fused score, contribution bar, like/dislike buttons."""
    item = rec.item
    with st.container(border=True):
        if item.image is not None:
            st.image(thumbnail(item.image), width="stretch")
        st.markdown(f"**{rec.rank}. {html.escape(item.title)}**")
        st.caption(item.category or "uncategorised")
        if item.audio is not None:
            st.audio(str(item.audio))
        st.markdown(f"score **{rec.score:.3f}**")
        st.markdown(contribution_bar_html(rec.contributions), unsafe_allow_html=True)
        st.caption(contribution_caption(rec.contributions))
        like, dislike = st.columns(2, gap="small")
        like.button(
            "Like",
            icon=":material/thumb_up:",
            key=f"{key_prefix}-like-{item.id}",
            help="Like: more like this",
            on_click=_like,
            args=(st.session_state, item.id),
            width="stretch",
        )
        dislike.button(
            "Dislike",
            icon=":material/thumb_down:",
            key=f"{key_prefix}-dislike-{item.id}",
            help="Dislike: less like this",
            on_click=_dislike,
            args=(st.session_state, item.id),
            width="stretch",
        )
        if st.button(
            "Why this item?",
            icon=":material/help:",
            key=f"{key_prefix}-why-{item.id}",
            type="tertiary",
            width="stretch",
        ):
            st.session_state[WHY_ITEM_KEY] = item.id
            st.switch_page(WHY_PAGE)


def render_grid(recs: Sequence[Recommendation], columns: int = 4, key_prefix: str = "card") -> None:
    for start in range(0, len(recs), columns):
        cols = st.columns(columns)
        for col, rec in zip(cols, recs[start : start + columns], strict=False):
            with col:
                render_card(rec, key_prefix)


def _clear(state: MutableMapping[str, Any]) -> None:
    get_profile(state).clear()


def render_profile(catalogue: Catalogue) -> None:
    """The session profile (likes / dislikes) with a button that clears it; lives in the sidebar."""
    profile = get_profile(st.session_state)
    profile.prune(set(catalogue.ids))
    st.subheader("Your profile")
    if profile.is_empty():
        st.caption("Like or dislike results to refine the next query.")
        return
    for label, ids in (("Liked", profile.likes), ("Disliked", profile.dislikes)):
        if ids:
            st.markdown(f"**{label}**: " + ", ".join(html.escape(catalogue.item(i).title) for i in ids))
    st.button("Clear profile", key="clear-profile", on_click=_clear, args=(st.session_state,))
