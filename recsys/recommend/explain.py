"""Why was this item recommended? Explanations computed from the engine's own scores.

Every figure here comes from re-running the engine (leave-one-modality-out, leave-one-word-out)
or reading its vectors, so an explanation can never disagree with the ranking it explains.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recsys.errors import InputError
from recsys.float16 import rows_float32
from recsys.vectors import unit_vectors

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import Recommendation, RecommendationEngine
    from recsys.recommend.query import Query


#: Plain words for each side of a pair: what the person gave, and what the item has.
QUERY_SIDE = {"text": "your words", "image": "your picture", "audio": "your sound"}
PROFILE_SIDE = {
    "text": "your liked items' words",
    "image": "your liked items' pictures",
    "audio": "your liked items' sounds",
}
#: What an item has in each modality, as a noun: "item picture", "its picture".
ITEM_NOUN = {"text": "description", "image": "picture", "audio": "sound"}
ARROW = "\u00a0\u2192\u00a0"  # a non-breaking space each side: the arrow never starts or ends a line
#: Why an item has no rank when it is one the query likes or dislikes (the engine leaves those out).
IN_PROFILE = "the item is in your profile (liked or disliked)"


def _pair_sides(pair: str, given: Collection[str] | None) -> tuple[str, str]:
    """(what the person gave, what the item has) of a pair, in the words of :func:`plain_pair_name`."""
    a, sep, b = pair.partition("->")
    b = b if sep else a
    own = given is None or a in given
    return (QUERY_SIDE if own else PROFILE_SIDE).get(a, f"your {a}"), ITEM_NOUN.get(b, b)


def plain_pair_name(pair: str, given: Collection[str] | None = None) -> str:
    """``text->image`` -> ``your words → item picture``; ``text`` -> ``your words → item description``.

    ``given`` lists the query modalities the person actually supplied; the others came from the
    liked / disliked items and are named so. Unknown modalities keep their own name.
    """
    query_side, noun = _pair_sides(pair, given)
    return f"{query_side}{ARROW}item {noun}"


@dataclass(frozen=True)
class Part:
    """One pair's part of a result's score, ready to show: plain name, value, share, rank (rrf)."""

    pair: str
    name: str
    value: float
    share: float  # |value| / sum of |values|: its width in the contribution bar
    rank: int | None = None


def score_parts(
    contributions: Mapping[str, float],
    ranks: Mapping[str, int] | None = None,
    given: Collection[str] | None = None,
) -> list[Part]:
    """The pairs that moved the score, largest first, each with its share in the bar (zero pairs left out)."""
    total = sum(abs(v) for v in contributions.values())
    parts = [
        Part(pair, plain_pair_name(pair, given), float(v), abs(v) / total, (ranks or {}).get(pair))
        for pair, v in contributions.items()
        if v != 0 and total > 0
    ]
    return sorted(parts, key=lambda p: (-abs(p.value), p.pair))


def format_part(part: Part) -> str:
    """``your words → item picture 38%``, with ``(rank 3)`` when the part comes from a rank."""
    text = f"{part.name} {100 * part.share:.0f}%"
    if part.value < 0:
        text += " (against)"
    return text + (f" (rank {part.rank})" if part.rank is not None else "")


def _clause(part: Part, given: Collection[str] | None, previous_side: str | None) -> tuple[str, str]:
    """``its picture matches your words (27%)``; ``... matches them too`` when the query side repeats."""
    side, noun = _pair_sides(part.pair, given)
    repeat = "it too" if side in ("your picture", "your sound") else "them too"
    target = repeat if side == previous_side else side
    figure = f"{100 * part.share:.0f}%" + (f", rank {part.rank} there" if part.rank is not None else "")
    verb = "matches" if part.value >= 0 else "is unlike"
    return f"its {noun} {verb} {target} ({figure})", side


def summary_sentence(
    rank: int | None,
    parts: Sequence[Part],
    n_items: int | None = None,
    weak: bool = False,
    given: Collection[str] | None = None,
    unranked: str = IN_PROFILE,
) -> str:
    """One plain sentence on why an item ranks where it does, read off its score parts
    (``unranked``: why it has no rank, from :func:`unranked_reason`).

    ``parts`` are :func:`score_parts` (largest first). The two largest positive parts are named
    ("Ranked #1 mostly because its description matches your words (33%) and its picture matches
    them too (27%)"), the smaller ones summed, parts that pull the score down said so.
    """
    if rank is None:
        return f"Not ranked for this query: {unranked}."
    where = f"Ranked #{rank}" + (f" of {n_items:,}" if n_items else "") + (" (a weak match)" if weak else "")
    helping = [p for p in parts if p.value > 0]
    against = [p for p in parts if p.value < 0]
    if not helping:
        return f"{where}: nothing in your query matches it; it ranks there only because others match even less."
    top, rest = helping[:2], helping[2:]
    top_share = sum(p.share for p in top)
    if rest or against:
        lead = " mostly because " if top_share >= 0.5 else " partly because "
    else:
        lead = " only because " if len(top) == 1 else " because "
    clauses, side = [], None
    for part in top:
        text, side = _clause(part, given, side)
        clauses.append(text)
    sentence = where + lead + " and ".join(clauses)
    if rest:
        share = 100 * sum(p.share for p in rest)
        sentence += f"; {len(rest)} smaller part{'s' * (len(rest) > 1)} add{'s' * (len(rest) == 1)} {share:.0f}%"
    if against:
        worst, _ = _clause(against[0], given, None)
        more = f" (and {len(against) - 1} more against it)" if len(against) > 1 else ""
        sentence += f"; but {worst}{more}"
    return sentence + "."


#: A cross-modal pair whose calibrated confidence (:mod:`recsys.alignment.confidence`: P(the item is
#: the one the query names)) is below this is called a weak match. Fixed here; the UI threshold issue
#: makes it a setting. Read off the demo (60 Tux Paint titles as queries, items ranked by picture
#: alone): top results at or above 0.2 were the named item 91% of the time, those below 45%; 0.5 was
#: reached by 2% of them (the calibration is fitted on catalogues the aligner never saw, so it is
#: cautious on the demo's own pictures).
WEAK_MATCH_CONFIDENCE = 0.2


def confidence_note(pair: str, confidence: float, given: Collection[str] | None = None) -> str:
    """``your words → item picture: weak match (confidence 0.18)``, or ``likely match`` at or above
    :data:`WEAK_MATCH_CONFIDENCE`."""
    verdict = "weak match" if confidence < WEAK_MATCH_CONFIDENCE else "likely match"
    return f"{plain_pair_name(pair, given)}: {verdict} (confidence {confidence:.2f})"


def confidence_notes(confidence: Mapping[str, float], given: Collection[str] | None = None) -> list[str]:
    """One :func:`confidence_note` per cross-modal pair, weakest first."""
    return [confidence_note(p, c, given) for p, c in sorted(confidence.items(), key=lambda kv: (kv[1], kv[0]))]


#: ImageNet labels below this probability are not shown: for clip-art the classifier often
#: spreads its guesses thin (a cartoon apple: "mouse" 6%, "candle" 4.5%), and such labels mislead.
LABEL_FLOOR = 0.10


@dataclass(frozen=True)
class LabelReading:
    """The labels worth showing (probability >= floor) and a note when the classifier is unsure."""

    shown: list[Label]
    hidden: int
    note: str | None


def read_labels(labels: Sequence[Label], floor: float = LABEL_FLOOR) -> LabelReading:
    """Keep the labels at or above ``floor``; say so plainly when none reaches it."""
    shown = [label for label in labels if label.score >= floor]
    hidden = len(labels) - len(shown)
    note = None
    if labels and not shown:
        best = max(labels, key=lambda label: label.score)
        note = (
            f"The image classifier is unsure what this picture shows: its best guess, “{best.name}”, has a "
            f"probability of {100 * best.score:.0f}%, below the {100 * floor:.0f}% needed to show a label. "
            "It was trained on photographs (ImageNet), so drawings and clip-art often puzzle it."
        )
    return LabelReading(shown, hidden, note)


def label_rows(labels: Sequence[Label], score_name: str) -> list[dict[str, object]]:
    """Table rows of labels: name, score, and the similarity to the query text only when a query
    gave one (a column of "None" says nothing)."""
    with_query = any(label.query_similarity is not None for label in labels)
    rows: list[dict[str, object]] = []
    for label in labels:
        row: dict[str, object] = {"label": label.name, score_name: round(label.score, 3)}
        if with_query:
            similarity = label.query_similarity
            row["similarity to the query text"] = None if similarity is None else round(similarity, 3)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class PairShare:
    """One (query modality -> item modality) pair: raw cosine, contribution and share of the fused score."""

    pair: str
    similarity: float  # nan when the item or the query lacks that modality
    contribution: float
    share: float  # contribution / fused score (nan when the score is 0)


@dataclass(frozen=True)
class ModalityDrop:
    """Rank of the item with one modality's weight set to 0 (rank None: no longer ranked)."""

    modality: str
    rank_before: int | None
    rank_after: int | None
    score_after: float | None
    note: str = ""

    @property
    def change(self) -> int | None:
        """Positive = the item moves up (to a better rank) without this modality."""
        if self.rank_before is None or self.rank_after is None:
            return None
        return self.rank_before - self.rank_after


@dataclass(frozen=True)
class Neighbour:
    item_id: str
    title: str
    similarity: float


@dataclass(frozen=True)
class Label:
    """A predicted ImageNet label or aligned concept, with its similarity to the query text if any."""

    name: str
    score: float
    query_similarity: float | None = None


@dataclass(frozen=True)
class WordImportance:
    """How much the item's fused score drops when this query word is left out."""

    word: str
    importance: float


def default_weights(engine: RecommendationEngine, weights: Mapping[str, float] | None) -> dict[str, float]:
    """Explicit weights for every modality (missing ones at 1.0, the engine's default)."""
    mods = list(dict.fromkeys([*engine.item_modalities, *(weights or {})]))
    return {m: float((weights or {}).get(m, 1.0)) for m in mods}


def full_ranking(
    engine: RecommendationEngine,
    query: Query,
    weights: Mapping[str, float] | None = None,
    strategy: str = "early",
    similarity: str = "cosine",
) -> list[Recommendation]:
    """Every rankable item, best first (liked / disliked items are excluded by the engine); past the
    exact-search size, the candidates the vector store retrieved (:func:`unranked_reason`)."""
    return engine.recommend(
        query,
        weights=dict(weights) if weights else None,
        strategy=strategy,
        k=len(engine.catalogue.items),
        similarity=similarity,
    )


def unranked_reason(engine: RecommendationEngine, query: Query, item_id: str, strategy: str = "early") -> str:
    """Why :func:`full_ranking` left the item out, in words for the page."""
    if item_id in (*query.likes, *query.dislikes):
        return IN_PROFILE
    if engine.joint is not None and strategy != "rrf":
        together = f"{engine.joint_candidates} by one search of every modality together"
        retrieved = f"{engine.candidates} per item field, {together}"
    else:
        depth = f"ranked among that pair's best {engine.rank_depth:,}"
        retrieved = f"{engine.candidates} per query-item modality pair, {depth}"
    return (
        f"the item is not among the best matches the vector store retrieved ({retrieved}): "
        f"a catalogue of {len(engine.catalogue):,} items is searched, not scored whole"
    )


def _find(ranking: list[Recommendation], item_id: str) -> tuple[int | None, Recommendation | None]:
    for pos, rec in enumerate(ranking, start=1):
        if rec.item.id == item_id:
            return pos, rec
    return None, None


def pair_breakdown(
    engine: RecommendationEngine,
    query: Query,
    item_id: str,
    weights: Mapping[str, float] | None = None,
    strategy: str = "early",
    similarity: str = "cosine",
) -> tuple[Recommendation | None, int | None, list[PairShare]]:
    """The item's recommendation (None if not ranked), its 1-based rank and the per-pair breakdown."""
    idx = engine.catalogue.index_of(item_id)
    rank, rec = _find(full_ranking(engine, query, weights, strategy, similarity), item_id)
    sims = engine.pair_similarities(query, similarity, rows=np.array([idx]))
    contributions = rec.contributions if rec is not None else {}
    score = rec.score if rec is not None else 0.0
    rows = []
    for pair in dict.fromkeys([*sims, *contributions]):
        sim = float(sims[pair][0]) if pair in sims else math.nan
        contrib = float(contributions.get(pair, 0.0))
        share = contrib / score if score else math.nan
        rows.append(PairShare(pair=pair, similarity=sim, contribution=contrib, share=share))
    return rec, rank, rows


def leave_one_modality_out(
    engine: RecommendationEngine,
    query: Query,
    item_id: str,
    weights: Mapping[str, float] | None = None,
    strategy: str = "early",
    similarity: str = "cosine",
) -> list[ModalityDrop]:
    """For each modality with a weight > 0: the item's rank when that weight goes to 0."""
    full = default_weights(engine, weights)
    rank_before, _ = _find(full_ranking(engine, query, full, strategy, similarity), item_id)
    query_sides = set(engine.query_vectors(query))
    out = []
    for mod, w in full.items():
        if w <= 0:
            continue
        dropped = {**full, mod: 0.0}
        try:
            ranking = full_ranking(engine, query, dropped, strategy, similarity)
        except InputError as exc:  # e.g. no modality left, or the query only had this one
            out.append(ModalityDrop(mod, rank_before, None, None, note=str(exc)))
            continue
        rank_after, rec = _find(ranking, item_id)
        note = "" if rec else "not ranked without it"
        if rec and mod not in query_sides:
            note = f"the query has no {mod} side: only the items' {mod} is switched off"
        out.append(ModalityDrop(mod, rank_before, rank_after, rec.score if rec else None, note=note))
    return out


def nearest_neighbours(engine: RecommendationEngine, item_id: str, k: int = 5) -> dict[str, list[Neighbour]]:
    """The item's ``k`` nearest catalogue items by cosine, separately in each modality it has.

    Past the exact-search size the engine's vector store finds them (one search per modality),
    so the page never casts and scans millions of vectors; they are ranked by the same cosine.
    """
    from recsys.recommend.engine import store_field

    idx = engine.catalogue.index_of(item_id)
    items = engine.catalogue.items
    out: dict[str, list[Neighbour]] = {}
    for mod in engine.item_modalities:
        vecs, mask = engine.item_vectors(mod)
        mask = np.asarray(mask, dtype=bool)
        if not mask[idx]:
            continue
        own = unit_vectors(rows_float32(vecs, [idx]))[0]
        if engine.uses_candidates:
            field = store_field(mod, engine.indexes[mod].shared is not None)
            rows = engine.catalogue.rows_of(engine.store.search(field, own, k, exclude=[item_id]).ids)
        else:
            rows = np.flatnonzero(mask)
            rows = rows[rows != idx]
        sims = unit_vectors(rows_float32(vecs, rows)) @ own
        order = np.lexsort((rows, -sims))[:k]
        out[mod] = [Neighbour(items[j].id, items[j].title, float(sims[i])) for i, j in ((i, rows[i]) for i in order)]
    return out


def _query_text_similarity(engine: RecommendationEngine, query: Query, names: list[str]) -> list[float | None]:
    if not query.text or not query.text.strip() or engine.text_encoder is None or not names:
        return [None] * len(names)
    vecs = unit_vectors(np.asarray(engine.text_encoder.encode([query.text, *names]), dtype=np.float32))
    return [float(s) for s in vecs[1:] @ vecs[0]]


def image_labels(engine: RecommendationEngine, item_id: str, query: Query | None = None, top: int = 5) -> list[Label]:
    """Top ImageNet labels the image classifier predicts for the item's image (empty without one).

    With a text query, each label also gets its cosine to the query text: the labels that are
    both likely and close to the query are the ones a label bridge matched on.
    """
    item = engine.catalogue.item(item_id)
    clf = engine.image_classifier
    if clf is None or item.image is None:
        return []
    from recsys.media import load_image

    side = getattr(getattr(clf, "preprocessor", None), "min_image_side", None)  # decoded as indexing did
    probs = np.asarray(clf.predict_proba([load_image(item.image, min_side=side)]), dtype=np.float64)[0]
    order = np.argsort(-probs)[:top]
    names = [str(clf.class_names[i]) for i in order]
    qsims = _query_text_similarity(engine, query, names) if query is not None else [None] * len(names)
    return [Label(n, float(probs[i]), q) for n, i, q in zip(names, order, qsims, strict=True)]


def concept_vocabulary(engine: RecommendationEngine) -> list[str]:
    """Concepts to read an aligned image against: every segment of every catalogue category path."""
    words = set()
    for cat in engine.catalogue.categories:
        words.update(seg.replace("_", " ").strip() for seg in str(cat).split("/") if seg.strip())
    return sorted(words)


def aligned_concepts(
    engine: RecommendationEngine,
    item_id: str,
    query: Query | None = None,
    vocabulary: list[str] | None = None,
    top: int = 5,
) -> list[Label]:
    """Concepts nearest to the item's image in the shared (text) space; empty if images are not aligned."""
    if "image" not in engine.item_modalities or engine.text_encoder is None:
        return []
    idx = engine.catalogue.index_of(item_id)
    vecs, mask = engine.item_vectors("image")
    if not np.asarray(mask, dtype=bool)[idx] or np.asarray(vecs).shape[1] != engine.text_encoder.dim:
        return []
    vocab = vocabulary if vocabulary is not None else concept_vocabulary(engine)
    if not vocab:
        return []
    concept_vecs = unit_vectors(np.asarray(engine.text_encoder.encode(vocab), dtype=np.float32))
    sims = concept_vecs @ unit_vectors(np.asarray(vecs[idx], dtype=np.float32))
    order = np.argsort(-sims)[:top]
    names = [vocab[i] for i in order]
    qsims = _query_text_similarity(engine, query, names) if query is not None else [None] * len(names)
    return [Label(n, float(sims[i]), q) for n, i, q in zip(names, order, qsims, strict=True)]


_WORD = re.compile(r"\S+")


def word_importance(
    engine: RecommendationEngine,
    query: Query,
    item_id: str,
    weights: Mapping[str, float] | None = None,
    strategy: str = "early",
    similarity: str = "cosine",
) -> list[WordImportance]:
    """Leave-one-word-out: the drop in the item's fused score when each query word is removed."""
    if not query.text or not query.text.strip():
        return []
    words = _WORD.findall(query.text)
    _, rec = _find(full_ranking(engine, query, weights, strategy, similarity), item_id)
    if rec is None:
        return []
    out = []
    for i, word in enumerate(words):
        rest = " ".join(words[:i] + words[i + 1 :])
        variant = dataclasses.replace(query, text=rest or None)
        if variant.is_empty():
            score = 0.0  # nothing left to match on
        else:
            try:
                _, other = _find(full_ranking(engine, variant, weights, strategy, similarity), item_id)
            except InputError:
                other = None
            score = other.score if other is not None else 0.0
        out.append(WordImportance(word, float(rec.score - score)))
    return out
