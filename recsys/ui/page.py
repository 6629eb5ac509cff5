"""The frame every demo page shares: page config and title, the engine, the sidebar controls and profile,
and the state in the URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys.ui import cards, resources, url
from recsys.ui.controls import Controls, sidebar_controls

if TYPE_CHECKING:
    from recsys.recommend.engine import RecommendationEngine


def start_page(title: str, icon: str, tab_title: str | None = None) -> tuple[RecommendationEngine, Controls]:
    """Draw the common frame and return the (cached) engine and the current control values."""
    st.set_page_config(page_title=f"{tab_title or title} · multimodal recsys", page_icon=icon, layout="wide")
    st.title(f"{icon} {title}")
    engine = resources.get_engine()
    url.restore(engine)  # a reload or a shared link: before the widgets take their values
    controls = sidebar_controls(engine)
    with st.sidebar:
        cards.render_profile(engine.catalogue)
    url.sync(engine)
    return engine, controls
