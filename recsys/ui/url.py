"""The page state in the address bar: read once when a session starts, written back on every run.

Parsing and validation live in :mod:`recsys.ui.state` (plain functions, tested without Streamlit);
this module only moves values between ``st.query_params`` and the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys.ui.state import SAMPLE_PARAMS, UrlContext, apply_url_state, current_url_state, parse_url, to_params

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import RecommendationEngine

APPLIED_KEY = "url-applied"
KNOWN = ("q", "strategy", "sim", "k", "category", "thr", "like", "dislike", *SAMPLE_PARAMS.values())


def _context(engine: RecommendationEngine) -> UrlContext:
    return UrlContext(
        modalities=tuple(engine.item_modalities),
        categories=frozenset(engine.catalogue.category_paths),
        item_ids=frozenset(engine.catalogue.ids),
        media=tuple(
            (m, frozenset(it.id for it in engine.catalogue.items if getattr(it, m) is not None)) for m in SAMPLE_PARAMS
        ),
    )


def restore(engine: RecommendationEngine) -> None:
    """On a session's first run, take the state from the URL; say what could not be used."""
    if st.session_state.get(APPLIED_KEY):
        return
    st.session_state[APPLIED_KEY] = True
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    if not any(key in KNOWN or key.startswith("w_") for key in params):
        return
    url, problems = parse_url(params, _context(engine))
    apply_url_state(st.session_state, url)
    if problems:
        st.warning("Some settings in this link could not be used:\n\n" + "\n".join(f"- {p}" for p in problems))


def sync(engine: RecommendationEngine) -> None:
    """Write the current state to the URL (only when it changed), so a reload or a shared link keeps it."""
    wanted = to_params(current_url_state(st.session_state, engine.item_modalities))
    have = {key: st.query_params.get_all(key) for key in st.query_params}
    as_lists = {key: value if isinstance(value, list) else [value] for key, value in wanted.items()}
    if have != as_lists:
        st.query_params.from_dict(wanted)
