"""Rendering of result cards and of the session profile."""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys.recommend.explain import Part, confidence_notes, format_part, plain_pair_name, score_parts
from recsys.ui.state import get_profile
from recsys.ui.thumbs import thumbnail

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalogue import Catalogue
    from recsys.recommend.engine import Recommendation

WHY_PAGE = "pages/2_Why_this_item.py"
WHY_ITEM_KEY = "why_item"
GRID_KEY = "results-grid"
CARD_KEY_PREFIX = "rec-card-"
WEAK_NOTE = "weak match"

# Phones: two compact cards per row instead of one card per screen (Streamlit stacks columns
# below 640 px); the picture shrinks, the per-pair lines hide (the bar and the legend remain).
GRID_CSS = f"""
<style>
@media (max-width: 640px) {{
  .st-key-{GRID_KEY} [data-testid="stHorizontalBlock"] {{
    flex-direction: row !important; flex-wrap: wrap !important; gap: 0.5rem !important;
  }}
  .st-key-{GRID_KEY} [data-testid="stColumn"] {{
    flex: 1 1 calc(50% - 0.5rem) !important; width: calc(50% - 0.5rem) !important;
    min-width: calc(50% - 0.5rem) !important; max-width: 50% !important;
  }}
  .st-key-{GRID_KEY} [class*="st-key-{CARD_KEY_PREFIX}"] {{ padding: 0.4rem !important; gap: 0.3rem !important; }}
  .st-key-{GRID_KEY} .rec-parts, .st-key-{GRID_KEY} [data-testid="stAudio"] {{ display: none !important; }}
  .st-key-{GRID_KEY} [data-testid="stImage"] img {{ max-height: 96px; object-fit: contain; }}
  .st-key-{GRID_KEY} button p {{ font-size: 0.8rem; }}
}}
.rec-part {{ white-space: nowrap; display: inline-block; margin-right: 0.6em; }}
.rec-line {{ margin-bottom: 0.15em; }}
.rec-dot {{ display: inline-block; width: 0.7em; height: 0.7em; border-radius: 2px; margin-right: 0.3em; }}
</style>
"""

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
        title = html.escape(f"{plain_pair_name(pair)}: {width:.0f}%")
        segments.append(f"<div title='{title}' style='{style}'></div>")
    return (
        "<div style='display:flex;width:100%;border-radius:4px;overflow:hidden;background:#eee'>"
        + "".join(segments)
        + "</div>"
    )


def _dot(pair: str) -> str:
    return f"<span class='rec-dot' style='background:{pair_colour(pair)}'></span>"


def parts_html(parts: Sequence[Part], shown: int = 3) -> str:
    """The bar's largest parts in words, a line each (colour, plain pair name, share, rank), the
    rest summed up in one line. Names break only at their own spaces, never at the arrow."""
    lines = [f"<div class='rec-line'>{_dot(p.pair)}{html.escape(format_part(p))}</div>" for p in parts[:shown]]
    rest = parts[shown:]
    if rest:
        share = 100 * sum(p.share for p in rest)
        lines.append(f"<div class='rec-line'>+ {len(rest)} smaller part{'s' * (len(rest) > 1)} {share:.0f}%</div>")
    return "<div class='rec-parts' style='font-size:0.8em;opacity:0.85;line-height:1.3'>" + "".join(lines) + "</div>"


def confidence_html(confidence: Mapping[str, float], given: Collection[str] | None = None) -> str:
    """The cross-modal pairs' calibrated confidence, a line each (empty when there is none)."""
    if not confidence:
        return ""
    lines = "".join(f"<div class='rec-line'>{html.escape(note)}</div>" for note in confidence_notes(confidence, given))
    return f"<div class='rec-parts' style='font-size:0.75em;opacity:0.75;line-height:1.3'>{lines}</div>"


def legend_html(pairs: Sequence[str], given: Collection[str] | None = None) -> str:
    """What the colours of the contribution bars mean (the pairs present in the results)."""
    chunks = "".join(
        f"<span class='rec-part'>{_dot(pair)}{html.escape(plain_pair_name(pair, given))}</span>" for pair in pairs
    )
    return f"<div style='font-size:0.9em'><b>Bar colours</b> (your input&nbsp;→&nbsp;what it matched): {chunks}</div>"


def legend_pairs(recs: Sequence[Recommendation]) -> list[str]:
    """Pairs with a non-zero contribution in any result, in the order of the colour table."""
    used = {pair for r in recs for pair, value in r.contributions.items() if value != 0}
    return [p for p in PAIR_COLOURS if p in used] + sorted(used - set(PAIR_COLOURS))


def _like(state: MutableMapping[str, Any], item_id: str) -> None:
    get_profile(state).like(item_id)


def _dislike(state: MutableMapping[str, Any], item_id: str) -> None:
    get_profile(state).dislike(item_id)


def render_card(
    rec: Recommendation,
    key_prefix: str = "card",
    threshold: float | None = None,
    given: Collection[str] | None = None,
    decimals: int = 3,
) -> None:
    """Thumbnail, title, category, sound, fused score (flagged when below ``threshold``), the
    contribution bar with its parts in words, like / dislike / why buttons."""
    item = rec.item
    weak = threshold is not None and rec.score < threshold
    with st.container(border=True, key=f"{CARD_KEY_PREFIX}{key_prefix}-{rec.rank}"):
        if item.image is not None:
            st.image(thumbnail(item.image), width="stretch")
        st.markdown(f"**{rec.rank}. {html.escape(item.title)}**")
        st.caption(item.category or "uncategorised")
        if item.audio is not None:
            st.audio(str(item.audio))
        st.markdown(f"score **{rec.score:.{decimals}f}**" + (f" · :orange[{WEAK_NOTE}]" if weak else ""))
        st.markdown(contribution_bar_html(rec.contributions), unsafe_allow_html=True)
        st.markdown(parts_html(score_parts(rec.contributions, rec.ranks, given)), unsafe_allow_html=True)
        if rec.confidence:
            st.markdown(confidence_html(rec.confidence, given), unsafe_allow_html=True)
        # a wrapping row: each button keeps its whole label ("Dislike", not "Disl...")
        row = st.container(horizontal=True, gap="small")
        row.button(
            "Like",
            key=f"{key_prefix}-like-{item.id}",
            help="Like: more like this",
            on_click=_like,
            args=(st.session_state, item.id),
            width="content",
        )
        row.button(
            "Dislike",
            key=f"{key_prefix}-dislike-{item.id}",
            help="Dislike: less like this",
            on_click=_dislike,
            args=(st.session_state, item.id),
            width="content",
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


def render_grid(
    recs: Sequence[Recommendation],
    columns: int = 4,
    key_prefix: str = "card",
    threshold: float | None = None,
    given: Collection[str] | None = None,
    decimals: int = 3,
) -> None:
    """Cards ``columns`` per row on a desktop, two compact ones per row on a phone, after a colour legend."""
    st.html(GRID_CSS)
    st.markdown(legend_html(legend_pairs(recs), given), unsafe_allow_html=True)
    with st.container(key=GRID_KEY):
        for start in range(0, len(recs), columns):
            cols = st.columns(columns)
            for col, rec in zip(cols, recs[start : start + columns], strict=False):
                with col:
                    render_card(rec, key_prefix, threshold, given, decimals)


def _clear(state: MutableMapping[str, Any]) -> None:
    get_profile(state).clear()


def render_profile(catalogue: Catalogue) -> None:
    """The session profile (likes / dislikes) with a button that clears it; lives in the sidebar."""
    profile = get_profile(st.session_state)
    profile.prune(catalogue)  # a lookup per liked id, not a set of every id on each rerun
    st.subheader("Your profile")
    if profile.is_empty():
        st.caption("Like or dislike results to refine the next query.")
        return
    for label, ids in (("Liked", profile.likes), ("Disliked", profile.dislikes)):
        if ids:
            st.markdown(f"**{label}**: " + ", ".join(html.escape(catalogue.item(i).title) for i in ids))
    st.button("Clear profile", key="clear-profile", on_click=_clear, args=(st.session_state,))
