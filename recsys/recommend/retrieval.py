"""Candidate retrieval: what the engine asks its vector store for past
:data:`recsys.recommend.engine.EXACT_MAX_ITEMS` items, and how ``rrf`` places the candidates by what the
searches returned.

Each weighted (query modality, item modality) pair, or for ``early`` / ``late`` each item field and
the joint field, is one :class:`Probe`; the union of what the probes return is scored exactly by
the engine's fusion code. ``rrf`` also needs each candidate's rank in every pair over the whole
(filtered) catalogue: :func:`candidate_ranks` counts the items of the pair's ranked list above it and
estimates the rest from a fixed random :class:`RankSample` of the filter's items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recsys import fusion

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import RecommendationEngine

#: Candidates fetched per (query modality, item modality) pair; re-scored exactly afterwards.
CANDIDATES_PER_PAIR = 100
#: Candidates fetched by the search of the joint field (:mod:`recsys.store.joint`) that ``early`` and
#: ``late`` add to their per-field searches; re-scored exactly afterwards. On validation queries at 1M synthetic items,
#: the exact fused top 10 within the joint (512-d) top 100 / 200 / 400: early 0.89 / 0.93 / 0.975,
#: late 0.99 / 1.0 / 1.0 (early's item norm is outside the linear score the projection ranks by).
JOINT_CANDIDATES = 400
#: Search effort (:meth:`recsys.store.VectorStore.search`) of the per-field searches that run beside
#: the joint one: they need only the items far ahead on their own field, which lie in the lists
#: nearest the query. On validation queries at 1M items without a filter, 1 / 0.5 / 0.25 kept
#: recall@10 at 0.973 / 0.970 / 0.968 (early) and 0.995 (late) while late's p95 went 10.4 / 7.8 /
#: 8.9 ms (2 cores); on the real 25k catalogue 0.5 cost early 0.994 -> 0.987.
FIELD_EFFORT_BESIDE_JOINT = 0.5
#: Items each ``rrf`` pair search returns (its first :data:`CANDIDATES_PER_PAIR` become candidates):
#: the rest only rank the candidates other pairs found. With 100 only, a candidate ranked past the
#: pair's 100th item was placed from the rank sample alone, ~490 catalogue items per sampled one at
#: 1M items, and rrf's top 10 hung on those guesses. On validation queries at 1M items, the same
#: candidates given their exact ranks made recall@10 1.0; lists 100 / 500 / 1000 deep gave 0.94 /
#: 0.985 / 0.995 without a filter and 0.96 / 0.978 / 0.985 with one, at p50 7.6 ms for 1000 and
#: 6.7 ms for 500 (filtered, 2 cores); on the real 25k catalogue 500 and 1000 gave the same.
RRF_RANK_DEPTH = 500
#: Search effort of ``rrf``'s cross-modal pair searches (an image query against the text items'
#: index): such a query sits apart from the items the index's lists were clustered on, so the lists
#: nearest it hold fewer of its best items. On the real 25k catalogue at effort 1 / 2 / 4 a
#: cross-modal search held 0.80 / 0.91 / 0.97 of the pair's true top 100 (same-modal: 0.95-0.99)
#: and rrf recall@10 was 0.914 / 0.944 / 0.968 (1.5: 0.930); at 1M synthetic items the searches held
#: 0.93 / 0.96-0.98 / 0.97-0.99, and effort 4 took the unfiltered p50 from 10 to 17 ms.
CROSS_MODAL_EFFORT = 2.0
#: Smaller catalogues widen the cross-modal searches past :data:`CROSS_MODAL_EFFORT`: an IVF search's
#: cost grows as sqrt(n) (4 sqrt(n) lists, a fixed number probed), so effort
#: ``2 * sqrt(250,000 / n)`` scans about as many codes as effort 2 at 250k items, up to 8. On
#: validation queries (the real 25k catalogue, seed 8) rrf recall@10 without / with a filter was
#: 0.953 / 0.957 at effort 2, 0.972 / 0.969 at 4, 0.978 / 0.970 at 8 and no higher past it, at p50
#: 6.2-6.8 ms throughout; at 100k synthetic items (seed 77) effort 3.2 cost 0.2-0.4 ms of p50.
CROSS_MODAL_WIDEN_BELOW = 250_000
CROSS_MODAL_MAX_EFFORT = 8.0
#: Float noise between a similarity the store computed and the engine's own (as fusion's 6-digit rounding).
SCORE_NOISE = 1e-6
#: How far below its stored score (8-bit codes, not re-scored) an item's similarity may lie: on the
#: real 25k catalogue the codes' error was 0.0002 median, 0.002 at p99, 0.02 at most.
LISTED_MARGIN = 0.03
#: Items sampled once to estimate catalogue-wide ranks of ``rrf`` candidates.
# The sample stands for the items of the filtered category that a pair's ranked list lacks. With
# lists 1000 deep, 1024 / 2048 gave recall@10 0.995 / 0.997 on validation queries at 1M items and
# 0.945 / 0.944 on the real 25k catalogue (before those lists, at 1M: 1024 / 2048 / 4096 gave
# 0.938 / 0.954 / 0.960); its products cost ~0.2 ms a pair per 1024 items.
RANK_SAMPLE = 1024
#: Bytes of rank samples kept, most recently used first: gathering a category's sample from memory-
#: mapped vectors costs ~25 ms at 1M items, one at 384 + 1280 + 384-d holds 8.4 MB (60 fit).
RANK_SAMPLE_MEMORY = 512 * 2**20


@dataclass
class RankSample:
    """Sampled rows of the items a filter lets through, standing for ``population`` items, with
    the vectors of those that have each field gathered once per (modality, space)."""

    rows: np.ndarray
    population: int
    _matrices: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + sum(m.nbytes for m in self._matrices.values())

    def rows_with(self, engine: RecommendationEngine, modality: str) -> np.ndarray:
        """The sampled rows whose items have ``modality``: the rows of :meth:`matrix`."""
        return self.rows[engine.indexes[modality].present[self.rows]]

    def matrix(self, engine: RecommendationEngine, modality: str, shared: bool, centred: bool) -> np.ndarray:
        """Vectors of the sampled items that have ``modality`` (one copy per distinct array: text's
        native and shared vectors are one array)."""
        ix = engine.indexes[modality]
        key = (id(ix.shared if shared else ix.native), centred)
        if key not in self._matrices:
            rows = self.rows_with(engine, modality)
            # built by the first search in its category, beside the query's other searches
            self._matrices[key] = np.ascontiguousarray(engine._matrix(ix, shared, rows, centred))
        return self._matrices[key]


@dataclass(frozen=True)
class Probe:
    """One vector-store search for candidates: ``vector`` against ``field``, on behalf of ``pairs``
    ((query modality, item modality) pairs whose scores it stands for)."""

    field: str
    vector: np.ndarray
    pairs: tuple[tuple[str, str], ...]
    effort: float = 1.0  # share of the store's default search breadth (:meth:`VectorStore.search`)


@dataclass(frozen=True)
class Retrieved:
    """What the candidate searches found beyond the rows themselves: which candidates each pair's own
    search returned (``rrf`` probes one pair each); for ``rrf`` also each pair's ranked list, the
    ascending similarities of the items its search returned (:data:`RRF_RANK_DEPTH` of them, as the
    store scored them, or as the engine does where the store's scores were rough; for Pearson,
    which the store's cosine does not rank by, the pair's own candidates), and the ascending
    similarities of the filtered category's rank-sample items that list lacks, each sampled item
    standing for ``scale`` items."""

    hits: Mapping[tuple[str, str], np.ndarray]
    listed: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)
    unlisted_sample: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)
    scale: float = 1.0


def union(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The sorted distinct rows of ``parts`` (each without repeats), and for each part which of
    them it holds: one sort, where a membership test per part took 2.6x as long (4 x 100 rows)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), []
    rows, where = np.unique(np.concatenate(parts), return_inverse=True)
    members, start = [], 0
    for part in parts:
        mask = np.zeros(len(rows), dtype=bool)
        mask[where[start : start + len(part)]] = True
        members.append(mask)
        start += len(part)
    return rows, members


def candidate_ranks(
    sims: Mapping[tuple[str, str], np.ndarray],
    present: Mapping[str, np.ndarray],
    retrieved: Retrieved,
) -> dict[tuple[str, str], np.ndarray]:
    """Catalogue-wide rank of each candidate in each pair, for ``rrf`` over candidates.

    A candidate ranks below the items that beat it: those on the pair's ranked list (for the
    pair's own candidates, the candidates ahead of it; for others, the listed items, counted by
    the list's scores: the store's, or the engine's where the store's were rough), and those the
    list lacks, estimated from the items of a fixed random sample of the filter's items that
    beat it and are not on the list (each standing for its share of the population; with
    Pearson, by which the store does not rank, the list is the pair's own candidates, and another
    pair's candidate may beat some of them). With a
    list 500 deep at 1M items the count does nearly all the work (one sampled item stands for ~980), and
    where the search missed items of its own top ranks (an image query against text items on a
    25k catalogue) the sample makes up for them. Sampling within the category keeps the estimate
    as fine under a 5% filter as without one: a catalogue-wide sample kept ~200 of its 4,096
    rows there, and rrf recall@10 at 1M items fell to 0.88.
    """
    out = {}
    for pair, s in sims.items():
        if pair not in retrieved.unlisted_sample:  # weighed 0: not searched, and rrf leaves it out
            continue
        got = np.asarray(retrieved.hits.get(pair, np.zeros(len(s), bool)))
        among = fusion.similarity_ranks(np.where(got, s, s - 4.0), present[pair[1]])  # similarities lie in [-1, 1]
        listed, unlisted = retrieved.listed.get(pair), retrieved.unlisted_sample[pair]
        ordered = listed is not None  # the list ranks as the pair does (Pearson's does not: the store ranks by cosine)
        if not ordered:  # Pearson: the pair's own candidates
            listed = np.sort(s[got])
        # the list's scores and these re-computed ones differ by float noise (or the codes' rounding)
        above = len(listed) - np.searchsorted(listed, s + SCORE_NOISE, side="right")
        missed = len(unlisted) - np.searchsorted(unlisted, s + SCORE_NOISE, side="right")
        lacked = missed * retrieved.scale
        counted = above + 1.0 + lacked
        # another pair's candidate ranks below the pair's own ones only where the list ranks as the pair
        out[pair] = np.where(got, among + lacked, np.maximum(among, counted) if ordered else counted)
    return out


def on_ranked_list(rows: np.ndarray, sims: np.ndarray, list_rows: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Which of ``rows`` (with similarities ``sims``) are among ``list_rows``, a search's ranked
    list whose ascending similarities are ``listed``: only rows that reach the list's lowest
    similarity (less the store codes' rounding) can be on it, so only they are looked up."""
    on_list = np.zeros(len(rows), dtype=bool)
    if len(listed):
        reach = np.flatnonzero(sims >= listed[0] - LISTED_MARGIN)
        if len(reach) and len(list_rows):
            sorted_rows = np.sort(list_rows)
            wanted = rows[reach]
            at = np.minimum(np.searchsorted(sorted_rows, wanted), len(sorted_rows) - 1)
            on_list[reach] = sorted_rows[at] == wanted
    return on_list
