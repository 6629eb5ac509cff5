"""The recommendation controls shared by the pages (weights, strategy, K, category), in the sidebar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend import RecommendationEngine

ALL_CATEGORIES = "All categories"


@dataclass(frozen=True)
class Controls:
    weights: dict[str, float]
    strategy: str
    k: int
    category: str | None


def category_options(categories: list[str]) -> list[str]:
    """Every category path and each of its prefixes (``animals`` and ``animals/birds``), sorted."""
    out = set()
    for cat in categories:
        parts = [p for p in str(cat).split("/") if p]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(out)


SAVED_PREFIX = "saved-"


def _remember(key: str, value: Any) -> Any:
    """Keep a widget's value outside the widget: Streamlit drops widget state when the page changes."""
    st.session_state[SAVED_PREFIX + key] = value
    return value


def _saved(key: str, default: Any) -> Any:
    return st.session_state.get(SAVED_PREFIX + key, default)


def sidebar_controls(engine: RecommendationEngine) -> Controls:
    """One weight slider per modality (0 disables it), the fusion strategy, K and a category filter.

    Every page draws the same controls; their values follow the user from page to page.
    """
    from recsys.fusion import STRATEGIES

    st.sidebar.subheader("Fusion")
    weights = {}
    for m in engine.item_modalities:
        key = f"weight-{m}"
        value = st.sidebar.slider(
            f"{m} weight", 0.0, 1.0, float(_saved(key, 1.0)), 0.05, key=key, help="0 disables this modality"
        )
        weights[m] = _remember(key, value)
    strategy = _remember(
        "strategy",
        st.sidebar.selectbox(
            "Strategy",
            STRATEGIES,
            index=STRATEGIES.index(_saved("strategy", STRATEGIES[0])),
            key="strategy",
            help="early: one cosine in the fused space; late: weighted sum of "
            "per-pair cosines; rrf: reciprocal rank fusion",
        ),
    )
    k = _remember("k", st.sidebar.slider("Results (K)", 1, 40, int(_saved("k", 12)), key="k"))
    options = [ALL_CATEGORIES, *category_options(engine.catalogue.categories)]
    saved_category = _saved("category", ALL_CATEGORIES)
    category = _remember(
        "category",
        st.sidebar.selectbox(
            "Category",
            options,
            index=options.index(saved_category) if saved_category in options else 0,
            key="category",
        ),
    )
    return Controls(weights, strategy, int(k), None if category == ALL_CATEGORIES else category)
