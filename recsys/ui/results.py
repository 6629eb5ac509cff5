"""The results block of the Recommend page: heading, what the score means, weak-match notice,
the cards and the downloads. The numbers and words come from ``recsys`` (fusion, relevance,
explain, export); this module lays them out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys import export
from recsys.fusion import SIMILARITY_MEANING, strategy_meaning
from recsys.recommend.relevance import split_weak, threshold_meaning, threshold_scale
from recsys.ui import cards

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import Recommendation
    from recsys.recommend.query import Query
    from recsys.speech import SpeechNote
    from recsys.ui.controls import Controls

NO_GOOD_MATCH = "No good match"


def settings_of(query: Query, controls: Controls, samples: Mapping[str, str]) -> dict[str, Any]:
    """How a result list was made, for the JSON download."""
    return {
        "text": query.text or "",
        "samples": dict(samples),
        "uploaded": [m for m in ("image", "audio") if m in query.inputs() and m not in samples],
        "likes": list(query.likes),
        "dislikes": list(query.dislikes),
        "weights": dict(controls.weights),
        "strategy": controls.strategy,
        "similarity": controls.similarity,
        "k": controls.k,
        "category": controls.category,
        "threshold": controls.threshold,
    }


def render_results(
    results: Sequence[Recommendation],
    query: Query,
    controls: Controls,
    elapsed_s: float,
    samples: Mapping[str, str] | None = None,
    audio_note: SpeechNote | None = None,
) -> None:
    scale = threshold_scale(controls.strategy, controls.similarity)
    strong, weak = split_weak(results, controls.threshold)
    st.subheader(f"{len(results)} results" + (f" for “{query.text.strip()}”" if query.text else ""))
    meaning = strategy_meaning(controls.strategy, controls.similarity)
    if controls.strategy != "rrf":
        meaning += " " + SIMILARITY_MEANING[controls.similarity]
    st.caption(f"{meaning} Scored in {elapsed_s * 1000:.0f} ms.")
    if audio_note is not None:
        st.info(audio_note.message, icon=":material/record_voice_over:")
    if results and not strong:
        st.warning(
            f"**{NO_GOOD_MATCH}**: none of the {len(results)} results reaches the threshold "
            f"{scale.format(controls.threshold)}. The closest items are shown below, marked as weak; "
            "try other words, another picture or sound, or lower the threshold in the sidebar.",
            icon=":material/search_off:",
        )
    elif weak:
        st.caption(
            f"{len(weak)} of them are flagged **weak match**. "
            + threshold_meaning(controls.strategy, controls.similarity, controls.threshold)
        )
    given = set(query.inputs())
    cards.render_grid(results, threshold=controls.threshold, given=given, decimals=max(3, scale.decimals))
    row = st.container(horizontal=True, gap="small")
    row.download_button(
        "Download CSV",
        export.results_csv(results, controls.threshold),
        file_name="recommendations.csv",
        mime="text/csv",
        key="download-csv",
        icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        "Download JSON",
        export.results_json(results, settings_of(query, controls, samples or {}), controls.threshold),
        file_name="recommendations.json",
        mime="application/json",
        key="download-json",
        icon=":material/download:",
        on_click="ignore",
    )
