"""The recommendation controls shared by the pages (weights, strategy, K, category), in the sidebar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def sidebar_controls(engine: RecommendationEngine) -> Controls:
    """One weight slider per modality (0 disables it), the fusion strategy, K and a category filter.

    Widget keys are fixed so every page sees (and changes) the same values.
    """
    from recsys.fusion import STRATEGIES

    st.sidebar.subheader("Fusion")
    weights = {
        m: st.sidebar.slider(
            f"{m} weight", 0.0, 1.0, 1.0, 0.05, key=f"weight-{m}", help="0 disables this modality"
        )
        for m in engine.item_modalities
    }
    strategy = st.sidebar.selectbox(
        "Strategy",
        STRATEGIES,
        key="strategy",
        help="early: one cosine in the fused space; late: weighted sum of "
        "per-pair cosines; rrf: reciprocal rank fusion",
    )
    k = st.sidebar.slider("Results (K)", 1, 40, 12, key="k")
    options = [ALL_CATEGORIES, *category_options(engine.catalogue.categories)]
    category = st.sidebar.selectbox("Category", options, key="category")
    return Controls(weights, strategy, int(k), None if category == ALL_CATEGORIES else category)
