"""Scoring a catalogue against a multimodal query: cosine similarities, fusion, top-K.

Each item modality has a *native* index (the encoder's own space, centred on the catalogue
mean for media so that the generic "everything looks alike" component of clip-art or sound-effect
embeddings does not dominate) and, when an aligner maps it into the text space, a *shared*
index. Same-modality pairs compare natively (most discriminative); cross-modal pairs such as
``text->image`` compare in the shared space; ``early`` fusion works entirely in the shared space
when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys import fusion
from recsys.catalogue import Catalogue, Item
from recsys.errors import InputError

MODALITIES: tuple[str, ...] = ("text", "image", "audio")
SHARED_SPACE = "shared"


@dataclass(frozen=True)
class Query:
    """What the user asks with; any combination may be given."""

    text: str | None = None
    image: Any = None
    audio: Any = None
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()

    def inputs(self) -> dict[str, Any]:
        """Query modality -> raw input, for the inputs actually given."""
        given = {"text": (self.text or "").strip() or None, "image": self.image, "audio": self.audio}
        return {m: v for m, v in given.items() if v is not None}

    def is_empty(self) -> bool:
        return not self.inputs() and not self.likes and not self.dislikes


@dataclass(frozen=True)
class Recommendation:
    item: Item
    rank: int
    score: float
    contributions: dict[str, float]


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
        return _normalise(raw - self.centre) if self.centre is not None else _normalise(raw)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _combine(positives: list[np.ndarray], negatives: list[np.ndarray]) -> np.ndarray | None:
    """Qdrant-style average vector: ``mean(pos) + (mean(pos) - mean(neg))``."""
    if not positives and not negatives:
        return None
    if positives and negatives:
        pos, neg = np.mean(positives, axis=0), np.mean(negatives, axis=0)
        vec = pos + (pos - neg)
    elif positives:
        vec = np.mean(positives, axis=0)
    else:
        vec = -np.mean(negatives, axis=0)
    out = _normalise(vec)
    return out if np.any(out) else None


@dataclass
class RecommendationEngine:
    """A catalogue indexed per modality, ready to answer queries."""

    catalogue: Catalogue
    text_encoder: Any
    indexes: dict[str, ModalityIndex]
    query_encoders: dict[str, Any] = field(default_factory=dict)

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

    def item_vectors(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors of ``modality`` in the shared space when aligned, else natively; and the mask."""
        ix = self._index(modality)
        return (ix.shared if ix.shared is not None else ix.native), ix.present

    def _index(self, modality: str) -> ModalityIndex:
        if modality not in self.indexes:
            have = ", ".join(self.item_modalities) or "none"
            raise InputError(f"the catalogue has no {modality} items indexed (it has: {have})")
        return self.indexes[modality]

    # -- query side -------------------------------------------------------------------------
    def _encode_input(self, modality: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(native vector, shared vector or None) of one raw query input."""
        if modality == "text":
            vec = self.text_encoder.encode([value])[0]
            return vec, vec
        ix = self.indexes.get(modality)
        encoder = self.query_encoders[modality]
        native = ix.to_native(encoder.encode([value])[0]) if ix is not None else encoder.encode([value])[0]
        shared = None
        aligner = ix.aligner if ix is not None else None
        if aligner is not None:
            features = aligner.features(encoder, [value])
            shared = aligner.transform(features)[0]
        return native, shared

    def _item_vectors_for(self, ids: Sequence[str], modality: str, shared: bool) -> list[np.ndarray]:
        ix = self.indexes.get(modality)
        if ix is None or (shared and ix.shared is None):
            return []
        matrix = ix.shared if shared else ix.native
        rows = [self.catalogue.index_of(i) for i in ids]
        return [matrix[r] for r in rows if ix.present[r]]

    def query_vectors(self, query: Query, shared: bool = False) -> dict[str, np.ndarray]:
        """Query modality -> unit vector (native, or in the shared space), likes and dislikes folded in."""
        for item_id in (*query.likes, *query.dislikes):
            self.catalogue.index_of(item_id)
        out: dict[str, np.ndarray] = {}
        encoded = {
            m: self._encode_input(m, v) for m, v in query.inputs().items() if m == "text" or m in self.query_encoders
        }
        for modality in MODALITIES:
            given = encoded.get(modality)
            own = given[1 if shared else 0] if given else None
            positives = ([own] if own is not None else []) + self._item_vectors_for(query.likes, modality, shared)
            negatives = self._item_vectors_for(query.dislikes, modality, shared)
            vec = _combine(positives, negatives)
            if vec is not None:
                out[modality] = vec
        return out

    # -- scoring ----------------------------------------------------------------------------
    def _pairs(self, query: Query) -> dict[tuple[str, str], np.ndarray]:
        native_q = self.query_vectors(query)
        shared_q = self.query_vectors(query, shared=True) if self.aligned else {}
        sims: dict[tuple[str, str], np.ndarray] = {}
        for a in MODALITIES:
            for b, ix in self.indexes.items():
                if a == b and a in native_q:
                    sims[(a, b)] = ix.native @ native_q[a]
                elif a != b and a in shared_q and ix.shared is not None:
                    sims[(a, b)] = ix.shared @ shared_q[a]
        return sims

    def pair_similarities(self, query: Query) -> dict[str, np.ndarray]:
        """Pair name (``text``, ``text->image``, ...) -> cosine similarity of every item."""
        return {fusion.pair_name(a, b): s for (a, b), s in self._pairs(query).items()}

    def _early_inputs(self, query: Query) -> tuple[dict, dict, dict]:
        """Query vectors, item matrices and their spaces: shared where a modality is aligned, else native."""
        native_q = self.query_vectors(query)
        shared_q = self.query_vectors(query, shared=True) if self.aligned else {}
        q, items, spaces = {}, {}, {}
        for m in MODALITIES:
            ix = self.indexes.get(m)
            use_shared = ix is not None and ix.shared is not None and self.aligned
            space = SHARED_SPACE if use_shared else (ix.native_space if ix is not None else m)
            source = shared_q if use_shared else native_q
            if m in source:
                q[m], spaces[m] = source[m], space
            if ix is not None:
                items[m], spaces[m] = (ix.shared if use_shared else ix.native), space
        return q, items, spaces

    def fuse(
        self,
        query: Query,
        weights: Mapping[str, float],
        strategy: str,
        query_weights: Mapping[str, float] | None = None,
    ) -> fusion.Fused:
        if strategy not in fusion.STRATEGIES:
            raise InputError(f"unknown fusion strategy '{strategy}'; choose one of {', '.join(fusion.STRATEGIES)}")
        present = {m: ix.present for m, ix in self.indexes.items()}
        if strategy == "early":
            return fusion.early_fusion(*self._early_inputs(query), weights, query_weights)
        sims = self._pairs(query)
        if strategy == "late":
            return fusion.late_fusion(sims, present, weights, query_weights)
        return fusion.rrf_fusion(sims, present, weights, query_weights)

    def recommend(
        self,
        query: Query,
        *,
        weights: Mapping[str, float] | None = None,
        strategy: str = "early",
        k: int = 10,
        category: str | None = None,
        query_weights: Mapping[str, float] | None = None,
    ) -> list[Recommendation]:
        """Top-``k`` items for ``query``; liked and disliked items are never returned.

        ``weights`` weigh the catalogue's modalities, ``query_weights`` the query's (see :mod:`recsys.fusion`).
        """
        if query.is_empty():
            raise InputError("empty query: type some text, upload an image or a sound, or like an item")
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})")
        weights = {m: float(w) for m, w in (weights or {}).items()}
        if any(w < 0 for w in weights.values()):
            raise InputError("modality weights must be >= 0 (0 disables a modality)")
        fused = self.fuse(query, weights, strategy, query_weights)
        if not fused.contributions:
            raise InputError("nothing to score: every modality of this query has weight 0 or nothing to match")
        allowed = np.ones(len(self.catalogue), dtype=bool)
        for item_id in (*query.likes, *query.dislikes):
            allowed[self.catalogue.index_of(item_id)] = False
        if category:
            cats = np.array([it.category for it in self.catalogue.items])
            in_cat = (cats == category) | np.char.startswith(cats.astype(str), category.rstrip("/") + "/")
            if not in_cat.any():
                raise InputError(f"no item in category '{category}'")
            allowed &= in_cat
        scores = np.where(allowed, fused.scores, -np.inf)
        k = min(k, int(allowed.sum()))
        top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], dtype=int)
        top = top[np.lexsort((top, -scores[top]))]
        return [
            Recommendation(
                item=self.catalogue.items[i],
                rank=rank,
                score=float(fused.scores[i]),
                contributions={name: float(c[i]) for name, c in fused.contributions.items()},
            )
            for rank, i in enumerate(top, start=1)
        ]
