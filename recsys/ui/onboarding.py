"""The first things on the Recommend page: what the catalogue is, and queries to try with one click.

The choices come from :mod:`recsys.ui.examples` (the loaded catalogue itself); this module draws
the buttons and turns a chosen sample item into query media.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys.ui import resources
from recsys.ui.examples import MEDIA_WORDS, intro
from recsys.ui.state import SAMPLE_KEYS, SAVED_PREFIX, TEXT_KEY

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalogue import Item
    from recsys.recommend.engine import RecommendationEngine


def _use_example(text: str) -> None:
    st.session_state[TEXT_KEY] = text
    st.session_state[SAVED_PREFIX + TEXT_KEY] = text


def _use_sample(modality: str, item_id: str) -> None:
    st.session_state[SAMPLE_KEYS[modality]] = item_id


def clear_sample(modality: str) -> None:
    st.session_state.pop(SAMPLE_KEYS[modality], None)


def queryable_media(engine: RecommendationEngine) -> list[str]:
    """The media a query may carry: those the engine has a query encoder for."""
    return [m for m in MEDIA_WORDS if m in engine.query_encoders]


def render_intro(engine: RecommendationEngine) -> None:
    """One line about the catalogue, then example queries, a sample picture and a sample sound."""
    chosen = intro(engine.catalogue)
    st.markdown(html.escape(chosen.summary))
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    row.markdown("**Try:**", width="content")
    for i, text in enumerate(chosen.examples):
        row.button(text, key=f"example-{i}", icon=":material/search:", on_click=_use_example, args=(text,))
    for modality in queryable_media(engine):
        item = chosen.samples.get(modality)
        if item is not None:
            row.button(
                f"{MEDIA_WORDS[modality]}: {item.title}",
                key=f"sample-{modality}",
                icon=":material/image:" if modality == "image" else ":material/music_note:",
                help=f"query with this catalogue item's {'picture' if modality == 'image' else 'sound'}",
                on_click=_use_sample,
                args=(modality, item.id),
            )


def sample_media(engine: RecommendationEngine, modality: str) -> tuple[Any, Item | None]:
    """The decoded picture / sound of the sample item chosen for ``modality`` (None, None if none)."""
    item_id = st.session_state.get(SAMPLE_KEYS[modality])
    if not item_id or item_id not in engine.catalogue:
        clear_sample(modality)
        return None, None
    item = engine.catalogue.item(item_id)
    path = getattr(item, modality)
    if path is None:
        clear_sample(modality)
        return None, None
    decode = resources.decode_image if modality == "image" else resources.decode_audio
    return decode(path.name, path.read_bytes()), item
