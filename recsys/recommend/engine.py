"""Scoring a catalogue against a multimodal query: cosine similarities, fusion, top-K.

Each item modality has a *native* index (the encoder's own space, centred on the catalogue
mean for media so that the generic "everything looks alike" component of clip-art or sound-effect
embeddings does not dominate) and, when an aligner maps it into the text space, a *shared*
index. Same-modality pairs compare natively (most discriminative); cross-modal pairs such as
``text->image`` compare in the shared space; ``early`` fusion works entirely in the shared space
when there is one.

Past :data:`EXACT_MAX_ITEMS` items (or when asked to), scoring the whole catalogue gives way to
*candidate retrieval*: each (query modality, item modality) pair asks the engine's vector store
for its nearest items, inside the category filter, and only the union of those candidates is
scored exactly by the same fusion code, so explanations still sum to the score. A category filter
that leaves at most :data:`EXACT_CATEGORY_MAX` items is answered by scoring each of them instead.

Scores compare unit vectors by cosine, or by one of the other :data:`recsys.fusion.SIMILARITIES`
(``euclidean``: a monotone rescaling of cosine; ``pearson``: cosine of vectors centred on their own
mean). Candidates always come from the store's inner-product search; the chosen similarity
re-scores them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from recsys import fusion, speech
from recsys.alignment import spoken
from recsys.alignment.base import aligner_inputs
from recsys.alignment.confidence import standardise
from recsys.catalogue import Catalogue, Item
from recsys.catalogue.categories import CategoryCodes
from recsys.encoders.base import encoder_outputs
from recsys.errors import InputError, RecsysError
from recsys.float16 import rows_float32
from recsys.ranking import top_k
from recsys.recommend import retrieval
from recsys.recommend.query import Query, QueryVectors, fold_examples
from recsys.recommend.retrieval import Probe, RankSample, Retrieved, candidate_ranks, on_ranked_list, union
from recsys.store.base import Hits
from recsys.store.joint import JOINT_FIELD
from recsys.threads import run_side_by_side
from recsys.vectors import unit_vectors

MODALITIES: tuple[str, ...] = ("text", "image", "audio")
SHARED_SPACE = "shared"
#: Catalogues up to this size are scored exhaustively (a few ms of matrix products); larger ones
#: retrieve candidates from the vector store first.
EXACT_MAX_ITEMS = 20_000
#: A category filter leaving at most this many items is answered by scoring every one of them
#: exactly, as the exact path does, instead of searching the vector store (which answered a filter
#: of up to 1,000 items exactly too, once per field, from its own copies of the rows). Validation
#: queries at 1M items (seed 77, each with a random leaf category: 140-44k items, median 275), p50 /
#: p95 early 1.1 / 2.8, late 1.4 / 3.8, rrf 1.8 / 4.9 ms against 8.0 / 49.6, 11.4 / 29.8, 11.8 /
#: 15.4 through the store. Scoring every item costs ~4 ms per 1,000 (rrf 4.5 ms at 1,018 items,
#: 47-58 ms at 6,717 where the store took 8-10): the bound sits where the two meet.
EXACT_CATEGORY_MAX = 2_000
#: Past this many items the engine keeps item vectors in float16: half the memory (4 GB instead of
#: 8 GB at 1M items of 384 + 1280 + 384-d), and such catalogues are searched through the vector
#: store, whose candidates are re-scored here in float32 from the rounded vectors (a cosine moves by
#: ~1e-5, far below the gaps between neighbours). Smaller catalogues stay float32, scored as before.
HALF_PRECISION_ABOVE = EXACT_MAX_ITEMS


def item_dtype(n_items: int) -> type[np.floating]:
    """The precision the engine keeps item vectors in for a catalogue of ``n_items``."""
    return np.float16 if n_items > HALF_PRECISION_ABOVE else np.float32


def item_matrix(vectors: np.ndarray) -> np.ndarray:
    """Item vectors (one row per catalogue item) in the precision the engine keeps them in."""
    return np.asarray(vectors, dtype=item_dtype(len(vectors)))


@dataclass(frozen=True)
class Recommendation:
    item: Item
    rank: int
    score: float
    contributions: dict[str, float]
    #: rrf only: the item's 1-based rank in each pair, the number behind that pair's contribution
    ranks: dict[str, int] = field(default_factory=dict)
    #: Cross-modal pair name (``text->image``) -> calibrated P(the item matches the query) in that pair
    #: (:mod:`recsys.alignment.confidence`); only pairs with a calibration for the engine's aligners
    #: and an item that has the pair's modality.
    confidence: dict[str, float] = field(default_factory=dict)


@dataclass
class ModalityIndex:
    """Everything needed to score one item modality."""

    modality: str
    encoder: Any
    native: np.ndarray
    present: np.ndarray
    native_space: str
    centre: np.ndarray | None = None
    aligner: Any = None
    shared: np.ndarray | None = None

    def to_native(self, raw: np.ndarray) -> np.ndarray:
        return unit_vectors(raw - self.centre) if self.centre is not None else unit_vectors(raw)


def store_field(modality: str, shared: bool) -> str:
    """Name of the vector-store field holding ``modality``'s vectors natively or in the shared space.

    Text is the shared space's own modality, so its native and shared vectors are one field.
    """
    return f"{modality}@{SHARED_SPACE}" if shared and modality != "text" else modality


@dataclass
class RecommendationEngine:
    """A catalogue indexed per modality, ready to answer queries.

    ``store`` (a :class:`recsys.store.VectorStore` holding every item's vectors under
    :func:`store_field` names) serves candidate retrieval; ``search`` is ``"auto"`` (exact up to
    :data:`EXACT_MAX_ITEMS` items, candidates past it), ``"exact"`` or ``"ann"``.
    """

    catalogue: Catalogue
    text_encoder: Any
    indexes: dict[str, ModalityIndex]
    query_encoders: dict[str, Any] = field(default_factory=dict)
    store: Any = None
    search: str = "auto"
    candidates: int = retrieval.CANDIDATES_PER_PAIR
    #: The store's joint field (:class:`recsys.store.joint.JointProjection`): set when the store has one,
    #: so ``early`` and ``late`` also retrieve candidates with one search of it.
    joint: Any = None
    joint_candidates: int = retrieval.JOINT_CANDIDATES
    exact_category_max: int = EXACT_CATEGORY_MAX
    field_effort: float = retrieval.FIELD_EFFORT_BESIDE_JOINT
    rank_depth: int = retrieval.RRF_RANK_DEPTH
    cross_modal_effort: float = retrieval.CROSS_MODAL_EFFORT
    #: Cross-modal pair name -> confidence calibration (:func:`recsys.alignment.confidence.find_calibrations`).
    calibrations: dict[str, Any] = field(default_factory=dict)
    #: What the item matrices were built from, as one hash (:func:`recsys.snapshot.snapshot_key`: the items'
    #: content keys and the models), set by :func:`recsys.pipeline.build_engine`: what keys this engine's
    #: maps (:class:`recsys.maps.MapVectors`). None: unnamed, the maps hash the vectors themselves.
    matrices_key: str | None = None
    _rank_samples: dict[str, RankSample] = field(default_factory=dict, repr=False)
    _centred_cache: dict[tuple[str, bool], np.ndarray] = field(default_factory=dict, repr=False)
    #: (the store's :meth:`~recsys.store.VectorStore.row_ids` list, each of its rows' catalogue row)
    _row_map: tuple[list[str], np.ndarray] | None = field(default=None, repr=False)
    #: Speech clips matched by their words (:class:`recsys.alignment.spoken.SpokenWords`): set when the
    #: catalogue's speech clips were placed at their words, so a spoken query is too. None: by sound.
    spoken: Any = None
    #: (query sound, its raw embedding) of the latest query, so :meth:`audio_note` does not encode it again
    _last_audio: tuple[Any, np.ndarray] | None = field(default=None, repr=False)
    #: (query sound, its speech note, its vector by words) of the latest query: transcribed once
    _last_heard: tuple[Any, speech.SpeechNote | None, np.ndarray | None] | None = field(default=None, repr=False)

    @property
    def item_modalities(self) -> list[str]:
        return [m for m in MODALITIES if m in self.indexes]

    @property
    def aligned(self) -> bool:
        return any(ix.shared is not None for m, ix in self.indexes.items() if m != "text")

    @property
    def image_classifier(self) -> Any:
        enc = self.query_encoders.get("image")
        return enc if enc is not None and hasattr(enc, "predict_proba") else None

    @property
    def uses_candidates(self) -> bool:
        """Whether :meth:`recommend` retrieves candidates from the store instead of scoring everything."""
        if self.store is None or self.search == "exact":
            return False
        return self.search == "ann" or len(self.catalogue) > EXACT_MAX_ITEMS

    def item_vectors(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors of ``modality`` in the shared space when aligned, else natively; and the mask."""
        ix = self._index(modality)
        return (ix.shared if ix.shared is not None else ix.native), ix.present

    def store_vectors(self) -> dict[str, np.ndarray]:
        """Every item's vectors by :func:`store_field` name: what the vector store indexes."""
        out: dict[str, np.ndarray] = {}
        for m, ix in self.indexes.items():
            out[store_field(m, False)] = ix.native
            if ix.shared is not None and m != "text":
                out[store_field(m, True)] = ix.shared
        return out

    def _index(self, modality: str) -> ModalityIndex:
        if modality not in self.indexes:
            have = ", ".join(self.item_modalities) or "none"
            raise InputError(f"the catalogue has no {modality} items indexed (it has: {have})")
        return self.indexes[modality]

    # -- query side -------------------------------------------------------------------------
    def _encode_input(self, modality: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(native vector, shared vector or None) of one raw query input, from one forward pass."""
        if modality == "text":
            vec = self.text_encoder.encode([value])[0]
            return vec, vec
        ix = self.indexes.get(modality)
        encoder = self.query_encoders[modality]
        aligner = ix.aligner if ix is not None else None
        kinds = aligner.input_kind.split("+") if aligner is not None else []
        outputs = encoder_outputs(encoder, [value], list(dict.fromkeys(["embedding", *kinds])))
        raw = outputs["embedding"][0]
        if modality == "audio":
            self._last_audio = (value, raw)
        native = ix.to_native(raw) if ix is not None else raw
        shared = aligner.transform(aligner_inputs(aligner.input_kind, outputs))[0] if aligner is not None else None
        if modality == "audio" and shared is not None and self.spoken is not None:
            by_words = self._heard(value, raw)[1]
            shared = shared if by_words is None else spoken.blend(shared[None, :], by_words[None, :])[0]
        return native, shared

    def _heard(self, audio: Any, raw: np.ndarray) -> tuple[speech.SpeechNote | None, np.ndarray | None]:
        """(speech note, vector by its words) of a query sound, under :attr:`spoken`; the latest is kept."""
        last = self._last_heard
        if last is None or last[0] is not audio:
            last = (audio, *self.spoken.hear(audio, raw))
            self._last_heard = last
        return last[1], last[2]

    def audio_note(self, audio: Any) -> speech.SpeechNote | None:
        """A note when the query sound ``audio`` is speech (:mod:`recsys.speech`), else None.

        Sound matching cannot read words: with :attr:`spoken` the note says what was heard (the clip was
        matched by those words), else it hints to type them. Reuses the embedding and transcript
        :meth:`recommend` just computed for the same clip; without a speech head for the audio encoder
        (one log line, once) there is never a note.
        """
        encoder = self.query_encoders.get("audio")
        if audio is None or encoder is None:
            return None
        detector = speech.detector_for(str(getattr(encoder, "encoder_id", "")))
        if detector is None:
            return None
        last = self._last_audio
        if last is not None and last[0] is audio:
            raw = last[1]
        else:
            raw = encoder_outputs(encoder, [audio], ["embedding"])["embedding"][0]
        if self.spoken is not None:
            return self._heard(audio, raw)[0]
        try:
            return detector.note(raw)
        except speech.SpeechDetectorError as exc:
            speech.log.warning("No speech detection for this query sound: %s", exc)
            return None

    def _item_vectors_for(self, ids: Sequence[str], modality: str, shared: bool) -> list[np.ndarray]:
        ix = self.indexes.get(modality)
        if ix is None or (shared and ix.shared is None):
            return []
        matrix = ix.shared if shared else ix.native
        rows = [self.catalogue.index_of(i) for i in ids]
        return list(rows_float32(matrix, [r for r in rows if ix.present[r]]))

    def encode_query(self, query: Query) -> QueryVectors:
        """Encode each query input once and fold likes and dislikes in, natively and in the shared space."""
        for item_id in (*query.likes, *query.dislikes):
            self.catalogue.index_of(item_id)
        encoded = {
            m: self._encode_input(m, v) for m, v in query.inputs().items() if m == "text" or m in self.query_encoders
        }
        sides = {}
        for shared in (False, True):
            out: dict[str, np.ndarray] = {}
            if shared and not self.aligned:
                sides[shared] = out
                continue
            for modality in MODALITIES:
                given = encoded.get(modality)
                own = given[1 if shared else 0] if given else None
                positives = ([own] if own is not None else []) + self._item_vectors_for(query.likes, modality, shared)
                negatives = self._item_vectors_for(query.dislikes, modality, shared)
                vec = fold_examples(positives, negatives)
                if vec is not None:
                    out[modality] = vec
            sides[shared] = out
        return QueryVectors(native=sides[False], shared=sides[True])

    def query_vectors(self, query: Query, shared: bool = False) -> dict[str, np.ndarray]:
        """Query modality -> unit vector (native, or in the shared space), likes and dislikes folded in."""
        return self.encode_query(query).side(shared)

    # -- scoring ----------------------------------------------------------------------------
    def _matrix(
        self,
        ix: ModalityIndex,
        shared: bool,
        rows: np.ndarray | None,
        centred: bool = False,
    ) -> np.ndarray:
        """Item vectors of ``ix`` (all, or ``rows``) in float32 (:func:`item_matrix` may keep them in
        float16); ``centred`` for Pearson (the full matrix is cached)."""
        matrix = ix.shared if shared else ix.native
        matrix = matrix.astype(np.float32, copy=False) if rows is None else rows_float32(matrix, rows)
        if not centred:
            return matrix
        if rows is not None:
            return fusion.centre(matrix)
        key = (ix.modality, shared)
        if key not in self._centred_cache:
            self._centred_cache[key] = fusion.centre(matrix)
        return self._centred_cache[key]

    def _present(self, rows: np.ndarray | None) -> dict[str, np.ndarray]:
        return {m: ix.present if rows is None else ix.present[rows] for m, ix in self.indexes.items()}

    def _pair_specs(self, q: QueryVectors) -> list[tuple[str, str, bool]]:
        """(query modality, item modality, in the shared space?) for every pair ``q`` can score.

        Same-modality pairs compare natively (most discriminative), cross-modal ones in the shared space.
        """
        specs = []
        for a in MODALITIES:
            for b, ix in self.indexes.items():
                if a == b and a in q.native:
                    specs.append((a, b, False))
                elif a != b and a in q.shared and ix.shared is not None:
                    specs.append((a, b, True))
        return specs

    def _pairs(
        self, q: QueryVectors, rows: np.ndarray | None = None, similarity: str = "cosine"
    ) -> dict[tuple[str, str], np.ndarray]:
        """Per-pair similarity of the items (all, or ``rows``); ``q`` is already centred for Pearson.
        Pairs scoring one array (text's native and shared vectors are one) gather its rows once."""
        centred = similarity == "pearson"
        out = {}
        matrices: dict[int, np.ndarray] = {}
        for a, b, shared in self._pair_specs(q):
            ix = self.indexes[b]
            key = id(ix.shared if shared else ix.native)
            if key not in matrices:
                matrices[key] = self._matrix(ix, shared, rows, centred)
            sims = matrices[key] @ q.side(shared)[a]
            out[(a, b)] = fusion.euclidean_similarity(sims) if similarity == "euclidean" else sims
        return out

    def pair_similarities(
        self, query: Query, similarity: str = "cosine", rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Pair name (``text``, ``text->image``, ...) -> similarity of every item, or of the catalogue
        ``rows`` (cosine by default): explaining one item of a million scores that item alone."""
        fusion.check_similarity(similarity)
        q = self.encode_query(query)
        q = q.centred() if similarity == "pearson" else q
        rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        return {fusion.pair_name(a, b): s for (a, b), s in self._pairs(q, rows, similarity).items()}

    def _early_modalities(self) -> dict[str, tuple[bool, str]]:
        """Modality -> (use the shared space?, the space's name) for early fusion."""
        out = {}
        for m in MODALITIES:
            ix = self.indexes.get(m)
            use_shared = ix is not None and ix.shared is not None and self.aligned
            out[m] = (use_shared, SHARED_SPACE if use_shared else (ix.native_space if ix is not None else m))
        return out

    def _early_inputs(
        self, q: QueryVectors, rows: np.ndarray | None = None, centred: bool = False
    ) -> tuple[dict, dict, dict]:
        """Query vectors, item matrices and their spaces: shared where a modality is aligned, else native."""
        query, items, spaces = {}, {}, {}
        for m, (use_shared, space) in self._early_modalities().items():
            source = q.side(use_shared)
            if m in source:
                query[m], spaces[m] = source[m], space
            if m in self.indexes:
                items[m], spaces[m] = self._matrix(self.indexes[m], use_shared, rows, centred), space
        return query, items, spaces

    def _fuse(
        self,
        q: QueryVectors,
        weights: Mapping[str, float],
        strategy: str,
        query_weights: Mapping[str, float] | None,
        rows: np.ndarray | None = None,
        eligible: np.ndarray | None = None,
        retrieved: Retrieved | None = None,
        similarity: str = "cosine",
    ) -> fusion.Fused:
        """Fused scores of all items, or of the candidate ``rows`` (``retrieved`` says what each pair's
        own search found); ``rrf`` ranks only ``eligible`` items (the filter's).

        ``pearson`` centres the query and item vectors and proceeds as cosine; ``euclidean`` maps
        each per-pair cosine (late, rrf) or the fused cosine of ``early`` (its parts scaled alike).
        """
        if strategy not in fusion.STRATEGIES:
            raise InputError(f"unknown fusion strategy '{strategy}'; choose one of {', '.join(fusion.STRATEGIES)}")
        fusion.check_similarity(similarity)
        centred = similarity == "pearson"
        if centred:
            q = q.centred()
        if strategy == "early":
            fused = fusion.early_fusion(*self._early_inputs(q, rows, centred), weights, query_weights)
            if similarity == "euclidean":
                fused = fusion.rescore(fused, fusion.euclidean_similarity(fused.scores))
            return fused
        sims = self._pairs(q, rows, similarity)
        present = self._present(rows)
        if strategy == "late":
            return fusion.late_fusion(sims, present, weights, query_weights)
        if eligible is not None:
            present = {m: mask & eligible for m, mask in present.items()}
        ranks = candidate_ranks(sims, present, retrieved) if retrieved is not None else None
        return fusion.rrf_fusion(sims, present, weights, query_weights, ranks=ranks)

    def _sample_similarities(
        self, sample: RankSample, q: QueryVectors, pair: tuple[str, str], similarity: str
    ) -> np.ndarray:
        """Similarities of ``sample``'s items that have the pair's item modality to the query in that
        pair (``q`` centred for Pearson), in the order of :meth:`RankSample.rows_with`."""
        matrix = sample.matrix(self, pair[1], pair[0] != pair[1], similarity == "pearson")
        return self._pair_scores(matrix, q, pair, similarity)

    def _row_similarities(
        self, rows: np.ndarray, q: QueryVectors, pair: tuple[str, str], similarity: str
    ) -> np.ndarray:
        """Cosine (or Euclidean) similarities of the catalogue ``rows`` to the query in ``pair``."""
        return self._pair_scores(self._matrix(self.indexes[pair[1]], pair[0] != pair[1], rows), q, pair, similarity)

    @staticmethod
    def _pair_scores(matrix: np.ndarray, q: QueryVectors, pair: tuple[str, str], similarity: str) -> np.ndarray:
        """``matrix`` (the pair's item vectors, in its space) against the pair's query vector."""
        a, b = pair
        sims = matrix @ q.side(a != b)[a]
        return fusion.euclidean_similarity(sims) if similarity == "euclidean" else sims

    def _rank_sample(self, category: str | None) -> RankSample:
        """A fixed random sample of the items in ``category`` (all items for None), kept for the
        categories asked for most recently, up to :data:`~recsys.recommend.retrieval.RANK_SAMPLE_MEMORY` bytes."""
        key = category.strip("/") if category else ""
        sample = self._rank_samples.pop(key, None)
        if sample is None:
            everything = np.arange(len(self.catalogue))
            members = np.flatnonzero(self._category_codes.mask(category)) if category else everything
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(members, size=min(len(members), retrieval.RANK_SAMPLE), replace=False))
            sample = RankSample(rows, len(members))
        kept = sample.nbytes
        for other in reversed(list(self._rank_samples)):  # most recent first
            kept += self._rank_samples[other].nbytes
            if kept > retrieval.RANK_SAMPLE_MEMORY:
                del self._rank_samples[other]
        self._rank_samples[key] = sample  # most recently used last
        return sample

    def fuse(
        self,
        query: Query,
        weights: Mapping[str, float],
        strategy: str,
        query_weights: Mapping[str, float] | None = None,
        similarity: str = "cosine",
    ) -> fusion.Fused:
        """Fused scores and contributions of every catalogue item."""
        return self._fuse(self.encode_query(query), weights, strategy, query_weights, similarity=similarity)

    # -- candidate retrieval ---------------------------------------------------------------
    def _probes(
        self,
        q: QueryVectors,
        strategy: str,
        weights: Mapping[str, float],
        query_weights: Mapping[str, float] | None,
    ) -> list[Probe]:
        """One store search per item field the strategy scores with a positive weight.

        ``early`` and ``late`` add up, per item field, the query-weighted inner products of every
        query vector reaching that field, which is the inner product with their weighted sum: one
        search for the sum finds the items those pairs lift most, where one search per pair
        finds items strong on one pair only, at twice the cost. With a joint field, one more search
        over every field together finds the items good on all of them but best on none (the
        per-field searches find those far ahead on one field, which an inverted-file index over
        the joint vectors misses: on a real 25k catalogue the joint search alone held 0.85 / 0.94 of
        the early / late top 10, the per-field searches 0.97, at 1M synthetic items the opposite).
        ``rrf`` ranks each pair on its own, so it searches each pair, cross-modal pairs at
        :data:`~recsys.recommend.retrieval.CROSS_MODAL_EFFORT`. The joint search runs under a
        category filter too: on validation queries at 1M items it took filtered recall@10 from
        0.980 / 0.993 to 1.0 / 1.0 (early / late) at p95 4.3-4.7 / 6.2-6.7 ms once each category's
        lists were built (its first search in a category copies them: 150-300 ms at 1M items, which
        an earlier measurement had counted).
        """
        qw = query_weights or {}
        if strategy == "early":
            early = self._early_modalities()
            specs = {
                (a, b, early[b][0])
                for a in q.native
                for b in self.indexes
                if early[a][1] == early[b][1] and early[a][0] == early[b][0] and a in q.side(early[a][0])
            }
        else:
            specs = set(self._pair_specs(q))
        weighed = fusion.pair_weights([(a, b) for a, b, _ in specs], weights, qw)
        specs = {spec for spec in specs if spec[:2] in weighed}
        if strategy == "rrf":
            return [
                Probe(store_field(b, sh), q.side(sh)[a], ((a, b),), 1.0 if a == b else self.cross_effort())
                for a, b, sh in sorted(specs)
            ]
        grouped: dict[str, list[tuple[str, str, bool]]] = {}
        for spec in sorted(specs):
            grouped.setdefault(store_field(spec[1], spec[2]), []).append(spec)
        probes = []
        for name, group in grouped.items():
            vector = sum(float(qw.get(a, 1.0)) * q.side(sh)[a] for a, _, sh in group)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                probes.append(Probe(name, vector / norm, tuple((a, b) for a, b, _ in group)))
            else:  # opposite query vectors cancel out: search each on its own
                probes += [Probe(name, q.side(sh)[a], ((a, b),)) for a, b, sh in group]
        joint = self._joint_probe(q, sorted(specs), weighed)
        if joint is None:
            return probes
        return [*(replace(p, effort=self.field_effort) for p in probes), joint]

    def cross_effort(self) -> float:
        """Search effort of ``rrf``'s cross-modal searches in this catalogue: :attr:`cross_modal_effort`,
        widened in catalogues under :data:`~recsys.recommend.retrieval.CROSS_MODAL_WIDEN_BELOW` items,
        where it costs little."""
        widened = self.cross_modal_effort * math.sqrt(retrieval.CROSS_MODAL_WIDEN_BELOW / max(len(self.catalogue), 1))
        return max(self.cross_modal_effort, min(retrieval.CROSS_MODAL_MAX_EFFORT, widened))

    def _joint_probe(
        self,
        q: QueryVectors,
        specs: list[tuple[str, str, bool]],
        pair_weights: Mapping[tuple[str, str], float],
    ) -> Probe | None:
        """The search of the store's joint field for ``early`` / ``late``: each field's coefficient
        is the sum of the query vectors reaching it, each weighed as its pair
        (:func:`recsys.fusion.pair_weights`), so the joint inner product ranks items by the fused
        score's numerator (``late``'s score itself). None when there is no joint field or it lacks
        a field the query reaches."""
        if self.joint is None or not specs:
            return None
        coefficients: dict[str, np.ndarray] = {}
        for a, b, shared in specs:
            name = store_field(b, shared)
            w = pair_weights[(a, b)]
            coefficients[name] = coefficients.get(name, 0) + w * np.asarray(q.side(shared)[a], dtype=np.float32)
        if not set(coefficients) <= {name for name, _ in self.joint.fields}:
            return None
        vector = self.joint.query(coefficients)
        norm = float(np.linalg.norm(vector))
        if not norm > 0:
            return None
        return Probe(JOINT_FIELD, vector / norm, tuple((a, b) for a, b, _ in specs))

    def _candidates(
        self,
        probes: list[Probe],
        category: str | None,
        exclude: Sequence[str],
        q: QueryVectors | None = None,
        similarity: str = "cosine",
    ) -> tuple[np.ndarray, Retrieved]:
        """Catalogue rows of the union of every probe's nearest items, and what each pair's own
        search retrieved; given ``q`` (``rrf``), also each pair's ranked list
        (:data:`~recsys.recommend.retrieval.RRF_RANK_DEPTH` items, of which the first ``candidates``
        are candidates) and the rank-sample items it lacks.

        The store searches by inner product of the unit vectors (cosine) whatever similarity was
        chosen: the candidates are then re-scored with it. Euclidean orders unit vectors as cosine
        does; Pearson may rank an item higher than its cosine would, so with Pearson a true top-K
        item is found only when the cosine search retrieved it. The probes run side by side
        (:func:`recsys.threads.run_side_by_side`), each one single-threaded index search and, for
        ``rrf``, its pair's rank-sample product, list membership and, for a list with rough scores,
        its ranking (run after the searches, the ranking of the image list alone made a 1M-item
        query's mean 0.56 ms longer on 2 cores).
        """
        sample = self._rank_sample(category) if q is not None else None
        centred = q.centred() if q is not None and similarity == "pearson" else q
        # liked / disliked items are ranked nowhere: the list leaves them out, and so does the sample
        left_out = self.catalogue.rows_of(list(exclude)) if sample is not None else None
        row_map = self._store_row_map()

        def search(probe: Probe) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
            """The probe's candidate rows; for ``rrf`` also its pair's ranked list and the
            similarities of the rank-sample items that list lacks (both ascending)."""
            k = self.joint_candidates if probe.field == JOINT_FIELD else self.candidates
            depth = k if sample is None else max(k, self.rank_depth)
            found = self.store.search(
                probe.field, probe.vector, depth, category=category, exclude=exclude, rescore=False, effort=probe.effort
            )
            if sample is None:
                return self._hit_rows(found, row_map, k), None, None
            return ranked(probe, found)

        def ranked(probe: Probe, found: Hits) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
            """The pair's candidates, ranked list and the rank-sample similarities the list lacks."""
            k, pair = self.candidates, probe.pairs[0]  # rrf searches pairs, never the joint field
            on_list = self._hit_rows(found, row_map)
            if found.rough:  # an index over a wide field's principal components: score the list here
                scored = self._row_similarities(on_list, q, pair, similarity)
                order = np.argsort(-scored, kind="stable")
                candidates, listed = on_list[order[:k]], scored[order[::-1]].astype(np.float64)
            else:
                candidates = on_list[:k]
                listed = np.sort(np.asarray(found.scores, dtype=np.float64))
                listed = fusion.euclidean_similarity(listed) if similarity == "euclidean" else listed
            sims = self._sample_similarities(sample, centred, pair, similarity)
            sampled = sample.rows_with(self, pair[1])
            accounted = np.isin(sampled, left_out)
            if similarity == "pearson":  # the store ranked by cosine: only the candidates are placed by Pearson
                return candidates, None, np.sort(sims[~(accounted | np.isin(sampled, candidates))])
            accounted |= on_ranked_list(sampled, sims, on_list, listed)
            return candidates, listed, np.sort(sims[~accounted])

        searched = run_side_by_side(search, probes)
        found = [candidates for candidates, _, _ in searched]
        rows, members = union(found)
        hits = {probe.pairs[0]: mask for probe, mask in zip(probes, members, strict=True) if len(probe.pairs) == 1}
        if sample is None:
            return rows, Retrieved(hits)
        listed = {p.pairs[0]: deep for p, (_, deep, _) in zip(probes, searched, strict=True) if deep is not None}
        unlisted = {p.pairs[0]: missed for p, (_, _, missed) in zip(probes, searched, strict=True)}
        scale = sample.population / max(1, len(sample.rows))
        return rows, Retrieved(hits, listed, unlisted, scale)

    def _store_row_map(self) -> np.ndarray | None:
        """Each store row's catalogue row (-1: an id the catalogue lacks), built once per store
        numbering and extended as the store grows; None for a store without row numbers."""
        ids = self.store.row_ids() if self.store is not None else None
        if ids is None:
            return None
        kept = self._row_map
        if kept is None or kept[0] is not ids or len(kept[1]) > len(ids):
            kept = (ids, np.zeros(0, dtype=np.int64))
        if len(kept[1]) < len(ids):
            more = self.catalogue.rows_or_missing(ids[len(kept[1]) :])
            kept = (ids, np.concatenate([kept[1], more]))
        self._row_map = kept
        return kept[1]

    def _hit_rows(self, found: Hits, row_map: np.ndarray | None, k: int | None = None) -> np.ndarray:
        """Catalogue rows of the first ``k`` hits (all by default): through the store's row numbers
        where it has them, else by id (an id the catalogue lacks raises, as
        :meth:`~recsys.catalogue.Catalogue.rows_of` does)."""
        if found.rows is not None and row_map is not None:
            numbers = found.rows[:k]
            if not len(numbers) or numbers.max() < len(row_map):
                rows = row_map[numbers]
                if not len(rows) or rows.min() >= 0:
                    return rows
        return self.catalogue.rows_of(found.ids[:k])

    @cached_property
    def _category_codes(self) -> CategoryCodes:
        return CategoryCodes([it.category for it in self.catalogue.items])

    def recommend(
        self,
        query: Query,
        *,
        weights: Mapping[str, float] | None = None,
        strategy: str = "early",
        k: int = 10,
        category: str | None = None,
        query_weights: Mapping[str, float] | None = None,
        similarity: str = "cosine",
    ) -> list[Recommendation]:
        """Top-``k`` items for ``query``; liked and disliked items are never returned.

        ``weights`` weigh the catalogue's modalities, ``query_weights`` the query's (see :mod:`recsys.fusion`);
        ``similarity`` is one of :data:`recsys.fusion.SIMILARITIES`.
        """
        if query.is_empty():
            raise InputError("empty query: type some text, upload an image or a sound, or like an item")
        return self.recommend_vectors(
            self.encode_query(query),
            weights=weights,
            strategy=strategy,
            k=k,
            category=category,
            query_weights=query_weights,
            exclude=(*query.likes, *query.dislikes),
            similarity=similarity,
        )

    def recommend_vectors(
        self,
        q: QueryVectors,
        *,
        weights: Mapping[str, float] | None = None,
        strategy: str = "early",
        k: int = 10,
        category: str | None = None,
        query_weights: Mapping[str, float] | None = None,
        exclude: Sequence[str] = (),
        similarity: str = "cosine",
    ) -> list[Recommendation]:
        """:meth:`recommend` for a query already encoded (:meth:`encode_query`); ``exclude`` lists item ids."""
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})")
        weights = fusion.check_weights(weights)
        query_weights = fusion.check_weights(query_weights, "query weight") if query_weights else None
        if strategy not in fusion.STRATEGIES:
            raise InputError(f"unknown fusion strategy '{strategy}'; choose one of {', '.join(fusion.STRATEGIES)}")
        fusion.check_similarity(similarity)
        rows: np.ndarray | None = None
        retrieved = None
        if self.uses_candidates:
            if category:
                self._category_codes.check(category)
            rows = self._category_codes.rows(category, self.exact_category_max) if category else None
            if rows is not None:  # every item of a small category, scored exactly: no search
                left_out = self.catalogue.rows_of(list(exclude)) if exclude else np.zeros(0, dtype=np.int64)
                allowed = ~np.isin(rows, left_out)
            else:
                probes = self._probes(q, strategy, weights, query_weights)
                rrf_q = q if strategy == "rrf" else None
                rows, retrieved = self._candidates(probes, category, exclude, rrf_q, similarity)
                # the store filtered by its own copy of the categories: a store out of step (written by
                # another process, or before its items' categories counted in their versions) cannot
                # put an item of another category in the results
                allowed = self._category_codes.mask(category, rows) if category else np.ones(len(rows), dtype=bool)
        else:
            allowed = np.ones(len(self.catalogue), dtype=bool)
            for item_id in exclude:
                allowed[self.catalogue.index_of(item_id)] = False
            if category:
                allowed &= self._category_codes.mask(category)
        fused = self._fuse(q, weights, strategy, query_weights, rows, allowed, retrieved, similarity)
        if not fused.contributions:
            raise InputError("nothing to score: every modality of this query has weight 0 or nothing to match")
        # Rounded (float32 vectors carry ~7 digits) for ordering only, so float noise never decides
        # a tie: ties go to catalogue order.
        scores = np.where(allowed, np.round(fused.scores, 6), -np.inf)
        k = min(k, int(allowed.sum()))
        top = top_k(scores, k)
        item_rows = rows[top] if rows is not None else top
        confidence = self._confidences(q, item_rows, fused.contributions)
        # each result's numbers as Python values, read once per array, not as a numpy scalar each
        # (with np.isfinite on each): 25 against 84 us for 10 results of 4 rrf pairs
        fused_scores = fused.scores[top].tolist()
        parts = {name: c[top].tolist() for name, c in fused.contributions.items()}
        ranks = {name: r[top].tolist() for name, r in fused.ranks.items()}
        sure = {name: c.tolist() for name, c in confidence.items()}
        items = self.catalogue.items
        return [
            Recommendation(
                item=items[row],
                rank=j + 1,
                score=fused_scores[j],
                contributions={name: c[j] for name, c in parts.items()},
                ranks={name: int(r[j]) for name, r in ranks.items() if math.isfinite(r[j])},
                confidence={name: c[j] for name, c in sure.items() if math.isfinite(c[j])},
            )
            for j, row in enumerate(item_rows.tolist())
        ]

    def _confidences(
        self, q: QueryVectors, item_rows: np.ndarray, pairs: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Calibrated confidence of each returned item in each scored cross-modal pair (NaN where the
        item lacks the pair's modality), from the pair's cosine standardised over the query's
        cosines to a fixed sample of the catalogue (:data:`~recsys.recommend.retrieval.RANK_SAMPLE`
        items, as rrf's ranks): one small matrix-vector product per pair, never a pass over a large
        catalogue."""
        if not self.calibrations or len(item_rows) == 0:
            return {}
        out = {}
        sample = None
        for a, b, shared in self._pair_specs(q):
            name = fusion.pair_name(a, b)
            if not shared or name not in pairs or name not in self.calibrations:
                continue
            sample = sample or self._rank_sample(None)
            ix = self.indexes[b]
            vec = q.shared[a]
            reference = sample.matrix(self, b, True, False) @ vec
            try:
                z = standardise(self._matrix(ix, True, item_rows) @ vec, reference)
                conf = self.calibrations[name](z)
            except RecsysError:  # no spread to stand out from (e.g. a two-item catalogue)
                continue
            out[name] = np.where(ix.present[item_rows], conf, np.nan)
        return out
