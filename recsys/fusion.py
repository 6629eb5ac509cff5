"""Fusion of per-modality evidence into one score per item, with an exact per-pair breakdown.

A *pair* is (query modality ``a``, item modality ``b``) whose vectors live in one space; it is
named ``a`` when ``a == b`` and ``"a->b"`` otherwise. Every strategy returns contributions per
pair that sum to the fused score, so the app can explain any result without re-deriving it.

``weights`` weigh the catalogue's modalities (0 switches one off: a text query with text weight
0 then ranks items by their aligned images and sounds alone). ``query_weights``, default 1 for
every query input, weigh the query's own modalities; a pair's weight is the product of the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from recsys.errors import InputError
from recsys.vectors import unit_vectors

STRATEGIES: tuple[str, ...] = ("early", "late", "rrf")
RRF_K = 60
#: Smallest and largest positive weight. Weights are relative, and beyond these float32 item
#: vectors scaled by a weight overflow or underflow when squared, which turns every score into
#: 0 or NaN without an error.
MIN_WEIGHT, MAX_WEIGHT = 1e-6, 1e6

#: How two unit vectors are compared. ``euclidean`` is ``1 - |q - v| / 2``: for unit vectors
#: ``|q - v|^2 = 2 - 2 cos``, so it orders exactly as cosine does, on a 0 (opposite) .. 1 (same)
#: scale. ``pearson`` centres each vector on the mean of its own components first (then cosine),
#: so a component that every dimension shares does not count as agreement.
SIMILARITIES: tuple[str, ...] = ("cosine", "euclidean", "pearson")

SIMILARITY_MEANING: dict[str, str] = {
    "cosine": "cosine: the angle between two vectors; 1 = same direction, 0 = unrelated, -1 = opposite.",
    "euclidean": "euclidean: 1 - distance/2 between the unit vectors; 1 = identical, 0 = opposite. "
    "For normalised vectors it ranks exactly as cosine does, on another scale.",
    "pearson": "Pearson: cosine after centring each vector on its own mean, so a level shared by all "
    "dimensions does not count as a match; -1 .. 1.",
}

STRATEGY_MEANING: dict[str, str] = {
    "early": "early fusion: the score is one {similarity} similarity between your combined query and each "
    "item's combined vector; the coloured parts add up to it.",
    "late": "late fusion: the score is the weighted average of one {similarity} similarity per pair "
    "(your input -> the item's medium), the weights adding up to 1.",
    "rrf": "reciprocal rank fusion: each pair adds weight / (60 + the item's rank in that pair), so only "
    "ranks count (a best match everywhere scores 1/61 = 0.016, however poor it is); compare the ranks.",
}


def strategy_meaning(strategy: str, similarity: str = "cosine") -> str:
    """One sentence saying what a score means under ``strategy`` with ``similarity``."""
    return STRATEGY_MEANING[strategy].format(similarity=similarity)


@dataclass(frozen=True)
class Fused:
    """Fused scores (n_items,) and each pair's additive share of them.

    ``ranks`` (rrf only) holds each pair's 1-based rank of every item, the number behind its term;
    ``scored`` (early only) marks the items that had a vector in a space the query reaches.
    """

    scores: np.ndarray
    contributions: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray] = field(default_factory=dict)
    scored: np.ndarray | None = None


def check_similarity(similarity: str) -> None:
    """Raise :class:`recsys.errors.InputError` for a similarity the product does not know."""
    if similarity not in SIMILARITIES:
        from recsys.errors import InputError

        raise InputError(f"unknown similarity '{similarity}'; choose one of {', '.join(SIMILARITIES)}")


def euclidean_similarity(cosine: np.ndarray) -> np.ndarray:
    """``1 - |q - v| / 2`` of unit vectors from their cosine (``|q - v|^2 = 2 - 2 cos``)."""
    cos = np.asarray(cosine, dtype=np.float64)
    return 1.0 - np.sqrt(np.clip(2.0 - 2.0 * cos, 0.0, 4.0)) / 2.0


def centre(x: np.ndarray) -> np.ndarray:
    """Each row minus the mean of its own components, back to unit length: Pearson is cosine of these.

    A zero row (an item without that medium) stays zero.
    """
    x = np.asarray(x, dtype=np.float32)
    return unit_vectors(x - x.mean(axis=-1, keepdims=True), in_place=True)


def rescore(fused: Fused, scores: np.ndarray) -> Fused:
    """``fused`` with new ``scores``, each contribution scaled by the same factor so they still sum up.

    Used when a monotone map (cosine -> euclidean) is applied to a fused cosine; an item with
    nothing to compare (``fused.scored`` false, else every contribution 0) keeps the score 0.
    """
    old = np.asarray(fused.scores, dtype=np.float64)
    if fused.scored is not None:
        evidence = np.asarray(fused.scored, dtype=bool)
    else:
        evidence = np.zeros(len(old), dtype=bool)
        for part in fused.contributions.values():
            evidence |= part != 0
    new = np.where(evidence, np.asarray(scores, dtype=np.float64), 0.0)
    safe = np.where(old != 0, old, 1.0)
    n_pairs = max(1, len(fused.contributions))
    contributions = {
        name: np.where(old != 0, part * new / safe, new / n_pairs) for name, part in fused.contributions.items()
    }
    return Fused(new, contributions, fused.ranks, fused.scored)


def _weight_problem(value: float) -> str | None:
    if value == 0 or MIN_WEIGHT <= value <= MAX_WEIGHT:
        return None
    if math.isnan(value):
        return "not a number (NaN)"
    if math.isinf(value):
        return "infinite or too large"
    return "negative" if value < 0 else "out of range"


def check_weights(weights: Mapping[str, object] | None, what: str = "weight") -> dict[str, float]:
    """``weights`` as floats, or :class:`InputError` for one that is not 0 or a number from
    :data:`MIN_WEIGHT` to :data:`MAX_WEIGHT` (NaN, infinite, negative, text, ...).

    The one check of user weights: the CLI's ``--weights`` and the engine both use it.
    """
    checked: dict[str, float] = {}
    for name, raw in (weights or {}).items():
        given = f"{name}={raw}"
        label = f"bad {what} {given if len(given) <= 60 else given[:57] + '...'}"
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{label}: not a number") from None
        problem = _weight_problem(value)
        if problem is not None:
            raise InputError(
                f"{label}: {problem}; use 0 (off) or a number from {MIN_WEIGHT:g} to {MAX_WEIGHT:g} "
                "(weights are relative)"
            )
        checked[name] = value + 0.0  # -0.0 -> 0.0
    return checked


#: The modalities a weight can be given for.
WEIGHT_MODALITIES: tuple[str, ...] = ("text", "image", "audio")


def parse_weights(spec: str | None) -> dict[str, float]:
    """``text=1,image=0.5`` (the CLI's ``--weights``, a query file's ``weights``) as checked
    weights; unknown modalities, repeats and bad numbers raise :class:`InputError`."""
    if not spec:
        return {}
    weights: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in WEIGHT_MODALITIES:
            raise InputError(
                f"bad weight '{part}': use modality=number with modality in {', '.join(WEIGHT_MODALITIES)}"
            )
        if name in weights:
            raise InputError(f"bad weights: {name} is given twice")
        weights[name] = value.strip()
    return check_weights(weights)


def pair_name(query_modality: str, item_modality: str) -> str:
    return query_modality if query_modality == item_modality else f"{query_modality}->{item_modality}"


def pair_weights(
    pairs: list[tuple[str, str]], weights: Mapping[str, float], query_weights: Mapping[str, float] | None = None
) -> dict[tuple[str, str], float]:
    """Weight of a pair = query weight of ``a`` times item weight of ``b``, normalised to sum to one."""
    qw = query_weights or {}
    raw = {(a, b): float(qw.get(a, 1.0)) * float(weights.get(b, 1.0)) for a, b in pairs}
    total = sum(raw.values())
    if total <= 0:
        return {}
    return {pair: w / total for pair, w in raw.items() if w > 0}


def early_fusion(
    query: Mapping[str, np.ndarray],
    items: Mapping[str, np.ndarray],
    spaces: Mapping[str, str],
    weights: Mapping[str, float],
    query_weights: Mapping[str, float] | None = None,
) -> Fused:
    """Cosine between the weighted sums of normalised query and item vectors.

    Vectors that share a space are summed; distinct spaces are concatenated. Only spaces the
    query reaches enter the item norm, so an item is not rewarded for lacking a modality the
    query cannot see. Items missing a modality carry a zero vector for it.
    """
    qw = query_weights or {}
    query_spaces = {spaces[a] for a in query if qw.get(a, 1.0) > 0}
    n_items = next(iter(items.values())).shape[0]
    q_sum: dict[str, np.ndarray] = {}
    for a, vec in query.items():
        w = float(qw.get(a, 1.0))
        if w > 0:
            q_sum[spaces[a]] = q_sum.get(spaces[a], 0) + w * vec
    v_sum: dict[str, np.ndarray] = {}
    for b, mat in items.items():
        w = float(weights.get(b, 1.0))
        if w > 0 and spaces[b] in query_spaces:
            v_sum[spaces[b]] = v_sum.get(spaces[b], 0) + w * mat
    q_norm = float(np.sqrt(sum(float(v @ v) for v in q_sum.values())))
    v_norm = np.sqrt(sum(np.einsum("ij,ij->i", m, m) for m in v_sum.values())) if v_sum else np.zeros(n_items)
    denom = q_norm * np.asarray(v_norm, dtype=np.float64)
    safe = np.where(denom > 0, denom, 1.0)
    contributions: dict[str, np.ndarray] = {}
    for a, q in query.items():
        wa = float(qw.get(a, 1.0))
        for b, mat in items.items():
            wb = float(weights.get(b, 1.0))
            if wa <= 0 or wb <= 0 or spaces[a] != spaces[b]:
                continue
            part = wa * wb * (mat @ q).astype(np.float64) / safe
            contributions[pair_name(a, b)] = np.where(denom > 0, part, 0.0)
    scores = sum(contributions.values()) if contributions else np.zeros(n_items)
    return Fused(np.asarray(scores, dtype=np.float64), contributions, scored=denom > 0)


def late_fusion(
    similarities: Mapping[tuple[str, str], np.ndarray],
    present: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    query_weights: Mapping[str, float] | None = None,
) -> Fused:
    """Weighted sum of per-pair cosine scores; an item lacking modality ``b`` gets 0 from pairs into ``b``."""
    ws = pair_weights(list(similarities), weights, query_weights)
    contributions = {
        pair_name(a, b): ws[(a, b)] * np.where(present[b], similarities[(a, b)], 0.0).astype(np.float64)
        for (a, b) in similarities
        if (a, b) in ws
    }
    return _sum(contributions, similarities)


def similarity_ranks(sims: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1-based rank of every item among the ``mask`` items by similarity (others rank last).

    Similarities are rounded first so that float noise between equal vectors (scored in
    different batches) never decides a rank: ties go to item order.
    """
    key = np.where(mask, np.round(np.asarray(sims, dtype=np.float64), 6), -np.inf)
    order = np.argsort(-key, kind="stable")
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def rrf_fusion(
    similarities: Mapping[tuple[str, str], np.ndarray],
    present: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    query_weights: Mapping[str, float] | None = None,
    k: int = RRF_K,
    ranks: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> Fused:
    """Reciprocal rank fusion (Cormack et al. 2009): each pair adds ``w / (k + rank)``.

    A pair's ranks are by default each item's rank among the present items by similarity;
    ``ranks`` (pair -> ranks) replaces them when the items scored are candidates drawn from a much
    larger catalogue, whose ranks the caller estimates.
    """
    ws = pair_weights(list(similarities), weights, query_weights)
    contributions: dict[str, np.ndarray] = {}
    pair_ranks_out: dict[str, np.ndarray] = {}
    for (a, b), sims in similarities.items():
        if (a, b) not in ws:
            continue
        mask = np.asarray(present[b], dtype=bool)
        pair_ranks = ranks[(a, b)] if ranks is not None else similarity_ranks(sims, mask)
        contributions[pair_name(a, b)] = np.where(mask, ws[(a, b)] / (k + pair_ranks), 0.0)
        pair_ranks_out[pair_name(a, b)] = np.where(mask, np.round(pair_ranks), np.nan)
    return _sum(contributions, similarities, pair_ranks_out)


def _sum(
    contributions: dict[str, np.ndarray],
    similarities: Mapping[tuple[str, str], np.ndarray],
    ranks: dict[str, np.ndarray] | None = None,
) -> Fused:
    n_items = len(next(iter(similarities.values()))) if similarities else 0
    scores = sum(contributions.values()) if contributions else np.zeros(n_items)
    return Fused(np.asarray(scores, dtype=np.float64), contributions, ranks or {})
