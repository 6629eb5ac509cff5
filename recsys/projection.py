"""2-D UMAP maps of the catalogue's embedding space, cached on disk by input hash.

Fitting UMAP on ~1k items costs seconds (plus numba compilation the first time), so a map is
fitted once per (vectors, parameters) and reused across reruns and restarts. The fitted model
is kept with the coordinates so that a query can be placed on the same map with ``transform``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import atomic
from recsys.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend import Query, RecommendationEngine

FUSED = "fused"
METRICS = ("cosine", "euclidean", "correlation", "manhattan")


@dataclass(frozen=True)
class ProjectionParams:
    """The UMAP knobs exposed in the app; any change gives a new cache entry."""

    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.n_neighbors < 2:
            raise InputError(f"n_neighbors must be at least 2 (got {self.n_neighbors}).")
        if not 0.0 <= self.min_dist <= 1.0:
            raise InputError(f"min_dist must be between 0 and 1 (got {self.min_dist}).")
        if self.metric not in METRICS:
            raise InputError(f"Unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}.")


@dataclass
class Projection:
    """Map coordinates of the fitted points and the fitted reducer that places new points."""

    coords: np.ndarray  # (n, 2)
    reducer: Any  # umap.UMAP
    key: str

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Place new vectors (m, d) on this map -> (m, 2)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        return np.asarray(self.reducer.transform(vectors), dtype=np.float32)


def input_hash(vectors: np.ndarray, params: ProjectionParams) -> str:
    """Content hash of the vectors and parameters: the cache key of a map."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256()
    h.update(json.dumps({"shape": vectors.shape, **asdict(params)}, sort_keys=True).encode())
    h.update(vectors.tobytes())
    return h.hexdigest()[:24]


def project(
    vectors: np.ndarray, params: ProjectionParams = ProjectionParams(), cache_dir: str | Path | None = None
) -> Projection:
    """Fit (or load from ``cache_dir``) a 2-D UMAP of ``vectors`` (n, d)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) < 4:
        raise InputError(f"A map needs at least 4 items with vectors (got {len(vectors)}).")
    key = input_hash(vectors, params)
    path = Path(cache_dir) / f"umap-{key}.pkl" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            with open(path, "rb") as fh:
                coords, reducer = pickle.load(fh)
            if coords.shape == (len(vectors), 2):
                return Projection(coords=coords, reducer=reducer, key=key)
        except Exception:  # a stale or unreadable cache entry is refitted, not fatal
            pass

    import umap  # heavy (numba): imported only when a map is actually fitted

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(params.n_neighbors, len(vectors) - 1),
        min_dist=params.min_dist,
        metric=params.metric,
        random_state=params.random_state,
        n_jobs=1,  # a fixed seed runs single-threaded anyway; saying so silences the warning
        init="spectral" if len(vectors) > params.n_neighbors + 2 else "random",
    )
    coords = np.asarray(reducer.fit_transform(vectors), dtype=np.float32)
    if path is not None:
        atomic.write_with(path, lambda p: p.write_bytes(pickle.dumps((coords, reducer))))
    return Projection(coords=coords, reducer=reducer, key=key)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def _active(engine: RecommendationEngine, weights: Mapping[str, float] | None) -> list[str]:
    mods = list(engine.item_modalities)
    if weights is None:
        return mods
    return [m for m in mods if weights.get(m, 1.0) > 0]


def catalogue_vectors(
    engine: RecommendationEngine, source: str, weights: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors to map for ``source`` (a modality or ``"fused"``) and the catalogue indices they belong to.

    ``fused`` mirrors early fusion: per space (modalities of equal dimension share one after
    alignment) the weighted sum of normalised vectors, spaces concatenated, then normalised.
    """
    if source != FUSED:
        if source not in engine.item_modalities:
            raise InputError(f"No item has a {source!r} vector; choose one of {engine.item_modalities}.")
        vecs, mask = engine.item_vectors(source)
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        return _normalise(np.asarray(vecs, dtype=np.float32)[idx]), idx
    mods = _active(engine, weights)
    if not mods:
        raise InputError("Every modality weight is 0: raise at least one to draw the fused map.")
    groups: dict[int, np.ndarray] = {}
    any_mask = None
    for m in mods:
        vecs, mask = engine.item_vectors(m)
        mask = np.asarray(mask, dtype=bool)
        w = 1.0 if weights is None else float(weights.get(m, 1.0))
        part = _normalise(np.asarray(vecs, dtype=np.float32)) * mask[:, None] * w
        d = part.shape[1]
        groups[d] = groups.get(d, 0) + part
        any_mask = mask if any_mask is None else (any_mask | mask)
    fused = _normalise(np.concatenate([_normalise(g) for _, g in sorted(groups.items())], axis=1))
    idx = np.flatnonzero(any_mask)
    return fused[idx], idx


def _query_vectors(engine: RecommendationEngine, query: Query) -> dict[str, np.ndarray]:
    """Query vectors in the space :meth:`item_vectors` uses: shared where aligned, native otherwise."""
    native = engine.query_vectors(query)
    if getattr(engine, "aligned", False):
        shared = engine.query_vectors(query, shared=True)
        native = (
            {
                **native,
                **{
                    m: v
                    for m, v in shared.items()
                    if m in engine.item_modalities and engine.indexes[m].shared is not None
                },
            }
            if hasattr(engine, "indexes")
            else shared
        )
    return {m: _normalise(np.asarray(v, dtype=np.float32).ravel()) for m, v in native.items()}


def query_vector(
    engine: RecommendationEngine, query: Query, source: str, weights: Mapping[str, float] | None = None
) -> np.ndarray | None:
    """The query's vector in the same layout as :func:`catalogue_vectors`, or None if it has none there."""
    qvecs = _query_vectors(engine, query)
    if not qvecs:
        return None

    def w(m: str) -> float:
        return 1.0 if weights is None else float(weights.get(m, 1.0))

    if source != FUSED:
        vecs, _ = engine.item_vectors(source)
        d = np.asarray(vecs).shape[1]
        if source in qvecs and w(source) > 0:
            return qvecs[source]
        same = [w(m) * v for m, v in qvecs.items() if v.shape[0] == d and w(m) > 0]
        return _normalise(np.sum(same, axis=0)) if same else None
    dims = sorted({np.asarray(engine.item_vectors(m)[0]).shape[1] for m in _active(engine, weights)})
    parts = []
    for d in dims:
        same = [w(m) * v for m, v in qvecs.items() if v.shape[0] == d and w(m) > 0]
        parts.append(_normalise(np.sum(same, axis=0)) if same else np.zeros(d, dtype=np.float32))
    out = np.concatenate(parts)
    return _normalise(out) if np.any(out) else None
