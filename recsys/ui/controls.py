"""The recommendation controls shared by the pages (weights, strategy, similarity, threshold, K, category)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys.ui import picker
from recsys.ui.state import (
    ALL_CATEGORIES,
    CATEGORY_FIND_KEY,
    CATEGORY_KEY,
    DEFAULT_K,
    DEFAULT_WEIGHT,
    K_KEY,
    MAX_K,
    SAVED_PREFIX,
    SIMILARITY_KEY,
    STRATEGY_KEY,
    threshold_key,
    weight_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import RecommendationEngine


@dataclass(frozen=True)
class Controls:
    weights: dict[str, float]
    strategy: str
    k: int
    category: str | None
    similarity: str = "cosine"
    threshold: float = 0.0


def _remember(key: str, value: Any) -> Any:
    """Keep a widget's value outside the widget: Streamlit drops widget state when the page changes."""
    st.session_state[SAVED_PREFIX + key] = value
    return value


def _saved(key: str, default: Any) -> Any:
    return st.session_state.get(SAVED_PREFIX + key, default)


def _choice(options: tuple[str, ...] | list[str], key: str, default: str) -> int:
    saved = _saved(key, default)
    return options.index(saved) if saved in options else options.index(default)


def _select(label: str, options: tuple[str, ...], key: str, help_text: str) -> str:
    """A remembered sidebar choice among ``options`` (the first is the default)."""
    index = _choice(options, key, options[0])
    return _remember(key, st.sidebar.selectbox(label, options, index=index, key=key, help=help_text))


def sidebar_controls(engine: RecommendationEngine) -> Controls:
    """One weight slider per modality (0 disables it), strategy, similarity, weak-match threshold,
    K and a category filter. Every page draws the same controls; their values follow the user."""
    from recsys.fusion import SIMILARITIES, SIMILARITY_MEANING, STRATEGIES, STRATEGY_MEANING
    from recsys.recommend.relevance import threshold_scale

    st.sidebar.subheader("Fusion")
    weights = {}
    for m in engine.item_modalities:
        key = weight_key(m)
        value = st.sidebar.slider(
            f"{m} weight",
            0.0,
            1.0,
            float(_saved(key, DEFAULT_WEIGHT)),
            0.05,
            key=key,
            help="how much the items' " + m + " counts; 0 disables it",
        )
        weights[m] = _remember(key, value)
    strategy = _select(
        "Strategy",
        STRATEGIES,
        STRATEGY_KEY,
        "\n\n".join(STRATEGY_MEANING[s].format(similarity="cosine") for s in STRATEGIES),
    )
    similarity = _select("Similarity", SIMILARITIES, SIMILARITY_KEY, "\n\n".join(SIMILARITY_MEANING.values()))
    scale = threshold_scale(strategy, similarity)
    t_key = threshold_key(strategy, similarity)
    threshold = _remember(
        t_key,
        st.sidebar.slider(
            "Weak-match threshold",
            scale.low,
            scale.high,
            scale.clamp(_saved(t_key, scale.default)),
            scale.step,
            key=t_key,
            format=f"%.{scale.decimals}f",
            help=f"results scoring below it are flagged as weak (default {scale.format(scale.default)} "
            f"for {strategy} / {similarity})",
        ),
    )
    k = _remember(K_KEY, st.sidebar.slider("Results (K)", 1, MAX_K, int(_saved(K_KEY, DEFAULT_K)), key=K_KEY))
    paths, typed = engine.catalogue.category_paths, ""
    if len(paths) > picker.LIST_ALL_MAX:  # a long tree is searched, as a long catalogue's items are
        typed = st.sidebar.text_input(
            f"Find a category among {len(paths):,}", key=CATEGORY_FIND_KEY, placeholder="e.g. birds"
        )
    offered = picker.category_choices(paths, typed, _saved(CATEGORY_KEY, None))
    category = _select("Category", (ALL_CATEGORIES, *offered), CATEGORY_KEY, "only items in this category or below it")
    return Controls(
        weights,
        strategy,
        int(k),
        None if category == ALL_CATEGORIES else category,
        similarity,
        float(threshold),
    )
