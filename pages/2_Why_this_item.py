"""Why this item? A plain summary first, then per-modality similarity and share, leave-one-modality-out,
neighbours (with their sounds), the labels the classifier is sure of, and the query words that matter."""

from __future__ import annotations

import html
import math

import pandas as pd
import streamlit as st

from recsys.errors import InputError
from recsys.recommend import explain
from recsys.recommend.relevance import is_weak, threshold_scale
from recsys.ui import cards, picker, state
from recsys.ui.page import start_page
from recsys.ui.thumbs import thumbnail

engine, controls = start_page("Why this item?", ":material/psychology_alt:")
catalogue = engine.catalogue
last = state.get_last_search(st.session_state)

sources = ["the last results", "the whole catalogue"] if last and last.result_ids else ["the whole catalogue"]
pick_from = st.radio("Pick an item from", sources, horizontal=True, key="why-source")
preset = st.session_state.get(cards.WHY_ITEM_KEY)
if pick_from == "the last results":
    ids = list(last.result_ids)
else:
    typed = ""
    if picker.needs_search(catalogue):
        typed = st.text_input(
            f"Find an item among {len(catalogue):,} by title or id", key="why-find", placeholder="e.g. dog"
        )
    ids = picker.choices(catalogue, typed, preset)
    if not ids:
        st.info(f"No item's title or id contains “{typed}”.")
        st.stop()
item_id = st.selectbox(
    "Item",
    ids,
    index=ids.index(preset) if preset in ids else 0,
    key="why-item-select",
    format_func=lambda i: (
        catalogue.item(i).title + (f"  (#{last.result_ids.index(i) + 1})" if last and i in last.result_ids else "")
    ),
)
item = catalogue.item(item_id)
summary = st.container(key="why-summary")  # filled once the query is scored: the first thing to read

head_img, head_text = st.columns([1, 3])
head_img.image(thumbnail(item.image), width="stretch")
head_text.subheader(item.title)
head_text.caption(f"{item.category or 'uncategorised'} · id {item.id}")
if item.description:
    head_text.write(item.description)
if item.audio is not None:
    head_text.audio(str(item.audio))

if last is None:
    st.info(
        "Run a query on the Recommend page to see how this item scores against it. "
        "Below: what the item is close to on its own."
    )
else:
    query = last.query
    parts = [f"text “{html.escape(query.text)}”"] if query.text else []
    parts += ["an image"] * (query.image is not None) + ["a sound"] * (query.audio is not None)
    parts += [f"{len(query.likes)} liked"] * bool(query.likes) + [f"{len(query.dislikes)} disliked"] * bool(
        query.dislikes
    )
    st.markdown(
        f"**Query:** {', '.join(parts)} · {controls.strategy} fusion, {controls.similarity} · weights "
        + ", ".join(f"{m} {w:g}" for m, w in controls.weights.items())
    )
    try:
        how = (controls.weights, controls.strategy, controls.similarity)
        rec, rank, shares = explain.pair_breakdown(engine, query, item_id, *how)
        drops = explain.leave_one_modality_out(engine, query, item_id, *how)
        words = explain.word_importance(engine, query, item_id, *how)
    except InputError as exc:
        st.error(str(exc))
        st.stop()
    n = len(catalogue.items)
    given = set(query.inputs())
    parts = explain.score_parts(rec.contributions, rec.ranks, given) if rec is not None else []
    weak = rec is not None and is_weak(rec.score, controls.threshold)
    unranked = explain.unranked_reason(engine, query, item_id, controls.strategy) if rec is None else ""
    summary.info(explain.summary_sentence(rank, parts, n, weak, given, unranked), icon=":material/lightbulb:")
    if rec is None:
        st.warning(f"Not ranked for this query: {unranked}.")
    else:
        scale = threshold_scale(controls.strategy, controls.similarity)
        score = f"{rec.score:.{max(3, scale.decimals)}f}"
        st.metric("Fused score", score, help=f"rank {rank} of the {n} catalogue items")
        st.caption(
            f"rank **{rank}** of {n} (whole catalogue, no category filter)"
            + (f" · below the weak-match threshold {scale.format(controls.threshold)}" if weak else "")
        )
        for note in explain.confidence_notes(rec.confidence, given):
            st.caption(f"Cross-modal match: {note}")

    st.subheader("Similarity per modality and share of the fused score")
    table = pd.DataFrame(
        [
            {
                "what met what": explain.plain_pair_name(s.pair, given),
                "pair (query → item)": s.pair,
                f"{controls.similarity} similarity": None if math.isnan(s.similarity) else round(s.similarity, 3),
                "contribution": round(s.contribution, 4),
                "share of score": None if math.isnan(s.share) else f"{100 * s.share:.0f}%",
            }
            for s in shares
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if rec is not None:
        st.markdown(cards.contribution_bar_html(rec.contributions), unsafe_allow_html=True)

    st.subheader("If one modality's weight went to 0")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "without": d.modality,
                    "rank now": d.rank_before,
                    "rank without it": d.rank_after,
                    "change": (
                        "—"
                        if d.change is None
                        else "same"
                        if d.change == 0
                        else f"▲ {d.change}"
                        if d.change > 0
                        else f"▼ {-d.change}"
                    ),
                    "note": d.note,
                }
                for d in drops
            ]
        ),
        hide_index=True,
        width="stretch",
    )

    if words:
        st.subheader("Which query words matter")
        top = max(abs(w.importance) for w in words) or 1.0
        spans = []
        for w in words:
            alpha = min(abs(w.importance) / top, 1.0)
            colour = f"rgba(46,160,67,{alpha:.2f})" if w.importance >= 0 else f"rgba(218,54,51,{alpha:.2f})"
            spans.append(
                f"<span title='{w.importance:+.4f}' style='background:{colour};padding:2px 5px;"
                f"border-radius:4px;margin-right:3px'>{html.escape(w.word)}</span>"
            )
        st.markdown("".join(spans), unsafe_allow_html=True)
        st.caption(
            "leave-one-word-out: how much the item's fused score drops without each word "
            + "; ".join(f"{w.word} {w.importance:+.3f}" for w in words)
        )

st.subheader("What the image shows")
query = last.query if last else None
labels = explain.read_labels(explain.image_labels(engine, item_id, query))
concepts = explain.aligned_concepts(engine, item_id, query)
if not labels.shown and not labels.note and not concepts:
    st.caption("No image, or no image classifier / aligned image space to read it with.")
if labels.note:
    st.info(labels.note, icon=":material/help:")
elif labels.hidden:
    st.caption(f"{labels.hidden} less likely ImageNet label{'s' * (labels.hidden > 1)} (below "
               f"{100 * explain.LABEL_FLOOR:.0f}%) not shown.")  # fmt: skip
for name, rows, score_name in (
    ("Top ImageNet labels", labels.shown, "probability"),
    ("Nearest concepts in the shared space", concepts, "cosine"),
):
    if rows:
        st.markdown(f"**{name}**")
        st.dataframe(pd.DataFrame(explain.label_rows(rows, score_name)), hide_index=True, width="stretch")

st.subheader("Nearest neighbours in each modality")
for modality, neighbours in explain.nearest_neighbours(engine, item_id, k=5).items():
    st.markdown(f"**{modality}**")
    for col, nb in zip(st.columns(5), neighbours, strict=False):
        other = catalogue.item(nb.item_id)
        col.image(thumbnail(other.image), width="stretch")  # a placeholder when it has no picture
        col.caption(f"{nb.title} · {nb.similarity:.2f}")
        if modality == "audio" and other.audio is not None:
            col.audio(str(other.audio))
