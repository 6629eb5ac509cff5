"""2-D maps of the catalogue's embedding space: UMAP on a sample, the other items placed beside their neighbours.

UMAP over every item does not scale: 67 s for 950 items on a loaded 2-core machine, and its own
``transform`` placed 20k extra points in 68 s there. So a map is fitted on at most
``fit_size`` items (default 4,000; stratified by category, seeded), and every other item - and
a query - is placed at the kernel-weighted mean of the map positions of its ``n_neighbors``
nearest fitted items (inverse-distance weights; neighbours searched by chunked matrix products
in the sample's leading principal components, products and selection in torch). ``benchmarks/map.py``
on 2 shared cores, 384-d clustered vectors, numba warm: 2.4 s for 10k items, 4.4 s for 100k
(5.5 s while the placement's product ran in numpy beside torch's top-k); the first map of an
installation adds ~9 s of numba compilation, a later process's first map ~4 s (importing UMAP,
loading its compiled kernels: :func:`_umap`). The fitted items' own neighbours are computed
exactly and handed to UMAP, which skips its approximate search (and that search's ~30 s numba
compilation in a fresh process).

Coordinates are cached on disk (``map-<key>.npz``, written atomically) by a hash of the input
vectors, the parameters and the strata, or, for an engine that names its item matrices
(:class:`MapVectors`), by that name instead of the vectors: reopening such a map gathers only the
fitted items' vectors.

A map may place only the items it is asked to draw (``project(..., placed=)``) and the others when
first asked for (:meth:`Projection.coords_at`): a map of 1M items draws 50k of them, and placing the
other 950k (gathering their vectors, searching their neighbours) was most of its first drawing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.cachefile import Spec, discard, load_npz, save_npz
from recsys.errors import InputError
from recsys.float16 import rows_float32
from recsys.vectors import unit_vectors

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import RecommendationEngine
    from recsys.recommend.query import Query

FUSED = "fused"
METRICS = ("cosine", "euclidean", "correlation", "manhattan")
CACHE_FORMAT = 2  # bump when the way coordinates are computed changes: old cache entries then miss
SAMPLED_EPOCHS = 200  # UMAP's own choice for large data; 500 (its small-data default) doubles the fit
_CHUNK = 4096  # rows per neighbour-search block: 4096 x 5000 float32 similarities = 80 MB
PLACE_DIMS = 64  # principal components the placement search uses on sampled maps (see SearchSpace)
PLACE_ROWS = 16 * _CHUNK  # items whose vectors are gathered at once for placing (~200 MB of a 768-d fused map)


@dataclass(frozen=True)
class ProjectionParams:
    """The map's knobs (UMAP's, plus how many items UMAP itself sees); any change gives a new cache entry."""

    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    random_state: int = 42
    fit_size: int = 4000

    def __post_init__(self) -> None:
        if self.n_neighbors < 2:
            raise InputError(f"n_neighbors must be at least 2 (got {self.n_neighbors}).")
        if not 0.0 <= self.min_dist <= 1.0:
            raise InputError(f"min_dist must be between 0 and 1 (got {self.min_dist}).")
        if self.metric not in METRICS:
            raise InputError(f"Unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}.")
        if self.fit_size < 4:
            raise InputError(f"fit_size must be at least 4 (got {self.fit_size}).")


@dataclass(frozen=True)
class SearchSpace:
    """Where points look for their nearest fitted items: the metric's prepared rows, reduced to the
    fitted sample's ``PLACE_DIMS`` leading principal components on sampled maps.

    The reduction makes the search's matrix products ~6x cheaper on 384-d vectors; placement only
    needs the right neighbourhood, not exact ranks. Reduced cosine / correlation rows are
    re-normalised and compared by cosine; the other metrics keep theirs.
    """

    metric: str
    mean: np.ndarray | None = None
    basis: np.ndarray | None = None  # (d, PLACE_DIMS)

    @property
    def search_metric(self) -> str:
        return "cosine" if self.basis is not None and self.metric in ("cosine", "correlation") else self.metric

    @classmethod
    def fit(cls, prepared: np.ndarray, metric: str) -> SearchSpace:
        if prepared.shape[1] <= PLACE_DIMS or len(prepared) <= PLACE_DIMS:
            return cls(metric)
        mean = prepared.mean(axis=0, dtype=np.float64)
        centred = prepared - mean
        # eigenvectors of the d x d covariance: 0.05 s where an SVD of the (m, d) rows took 0.3-7 s
        _, vectors = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
        basis = vectors[:, ::-1][:, :PLACE_DIMS]
        return cls(metric, mean.astype(np.float32), np.ascontiguousarray(basis, dtype=np.float32))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        rows = _prepare(vectors, self.metric)
        if self.basis is None:
            return rows
        import torch  # the product beside the neighbour search's (torch): OpenBLAS's threads would wait on torch's

        centred = np.ascontiguousarray(rows - self.mean, dtype=np.float32)
        basis = np.ascontiguousarray(self.basis, dtype=np.float32)
        rows = (torch.from_numpy(centred) @ torch.from_numpy(basis)).numpy()
        return _prepare(rows, "cosine") if self.search_metric == "cosine" else rows


@dataclass
class Projection:
    """Map coordinates of the items, and what is needed to place new points on the same map."""

    coords: np.ndarray  # (n, 2) float32; NaN rows: items not placed yet (see coords_at)
    key: str
    fitted: np.ndarray  # indices of the items UMAP was fitted on
    space: SearchSpace
    reference: np.ndarray  # the fitted items' vectors in ``space``
    n_neighbors: int
    _placing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Place new vectors (m, d) on this map -> (m, 2), as the items outside the fitted sample were."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        return place(vectors, self.space, self.reference, self.coords[self.fitted], self.n_neighbors)

    def unplaced(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Which of the items at ``positions`` (default: all) are not placed yet, in order, once each."""
        positions = np.arange(len(self.coords)) if positions is None else np.unique(np.asarray(positions, np.int64))
        return positions[np.isnan(self.coords[positions, 0])]

    def coords_at(self, positions: np.ndarray, rows_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Coordinates (m, 2) of the items at ``positions``, placing those not placed yet first
        (``rows_of`` gathers the vectors of the items at given positions)."""
        positions = np.asarray(positions, dtype=np.int64)
        self.place_items(self.unplaced(positions), rows_of)
        return self.coords[positions]

    def place_items(self, positions: np.ndarray, rows_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """Place the items at ``positions`` beside their nearest fitted items, their vectors gathered
        :data:`PLACE_ROWS` at a time (so a million items never need their vectors all at once).
        Two threads placing the same item write the same coordinates."""
        fitted_coords = self.coords[self.fitted]
        for start in range(0, len(positions), PLACE_ROWS):
            block = positions[start : start + PLACE_ROWS]
            xy = place(rows_of(block), self.space, self.reference, fitted_coords, self.n_neighbors)
            with self._placing:
                self.coords[block] = xy


def input_hash(vectors: np.ndarray, params: ProjectionParams, groups: Sequence[str] | None = None) -> str:
    """Content hash of the vectors, parameters and strata: the cache key of a map."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256()
    meta = {"format": CACHE_FORMAT, "shape": vectors.shape, **asdict(params)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    h.update(vectors)  # its buffer, not a copy (3 GB for a fused map of 1M items)
    if groups is not None:
        h.update("\x1f".join(map(str, groups)).encode())
    return h.hexdigest()[:24]


def map_path(cache_dir: str | Path, key: str) -> Path:
    """The cache file of the map whose :func:`input_hash` is ``key``."""
    return Path(cache_dir) / f"map-{key}.npz"


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    """Rows such that cosine / correlation distances are ``1 - dot`` (unit rows, centred for correlation)."""
    x = np.asarray(x, dtype=np.float32)
    if metric == "correlation":
        x = x - x.mean(axis=1, keepdims=True)
    if metric in ("cosine", "correlation"):
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        return x * (1.0 / np.maximum(norms, 1e-12))[:, None]  # one pass: this runs on every item of a map
    return np.ascontiguousarray(x)


def nearest(
    queries: np.ndarray, reference: np.ndarray, k: int, metric: str, chunk: int = _CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest reference rows of each query row, nearest first -> (indices, distances).

    Both inputs are :func:`_prepare`-d. Blocks of ``chunk`` queries bound the memory. Cosine,
    correlation and euclidean rank by one matrix product (``q.r``, or ``q.r - |r|^2 / 2``, which
    orders like the euclidean distance) and compute exact distances for the ``k`` winners only.
    The product and the top-k selection both run in torch: numpy's product (OpenBLAS's threads)
    followed by torch's top-k (torch's) took 2.1-2.7 s to place 96k items among 4,000 in 64-d on
    2 cores, torch alone 1.3 s (FAISS's exact search 1.2 s alone, 2.9 s in the app beside torch).
    """
    import torch

    k = min(k, len(reference))
    out_idx = np.empty((len(queries), k), dtype=np.int64)
    out_dist = np.empty((len(queries), k), dtype=np.float32)
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
    half_sq = 0.5 * (ref * ref).sum(dim=1) if metric == "euclidean" else None
    for start in range(0, len(queries), chunk):
        q = np.ascontiguousarray(queries[start : start + chunk], dtype=np.float32)
        if metric == "manhattan":
            from sklearn.metrics import pairwise_distances

            score = torch.from_numpy(-pairwise_distances(q, reference, metric="manhattan").astype(np.float32))
        else:
            score = torch.from_numpy(q) @ ref.T
            if half_sq is not None:
                score -= half_sq
        values, columns = score.topk(k, dim=1)
        top_score, top = values.numpy(), columns.numpy()
        if metric == "euclidean":
            dist = np.sqrt(np.maximum(np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * top_score, 0.0))
        elif metric == "manhattan":
            dist = -top_score
        else:
            dist = np.maximum(1.0 - top_score, 0.0)
        out_idx[start : start + len(q)] = top
        out_dist[start : start + len(q)] = dist
    return out_idx, out_dist


def place(
    vectors: np.ndarray,
    space: SearchSpace,
    reference: np.ndarray,
    reference_coords: np.ndarray,
    k: int,
    chunk: int = _CHUNK,
) -> np.ndarray:
    """Map positions of ``vectors``: weighted mean of the positions of their ``k`` nearest reference points.

    Inverse-distance weights ``1 / (d + s / 100)``, ``s`` the row's mean neighbour distance: a point
    among equally near neighbours sits between them, a copy of a fitted item (d = 0) on it.
    Rows are mapped into ``space`` block by block, so no full-size copy of ``vectors`` is made.
    """
    out = np.empty((len(vectors), 2), dtype=np.float32)
    for start in range(0, len(vectors), chunk):
        idx, dist = nearest(space(vectors[start : start + chunk]), reference, k, space.search_metric, chunk)
        weights = 1.0 / (dist + 0.01 * dist.mean(axis=1, keepdims=True) + 1e-12)
        weights /= weights.sum(axis=1, keepdims=True)
        out[start : start + chunk] = np.einsum("nk,nkc->nc", weights, reference_coords[idx])
    return out


def stratified_sample(n: int, size: int, groups: Sequence[str] | None, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` of ``n`` items, each group (category) represented in proportion.

    Every group gets at least one item when ``size`` allows, so small categories stay on the map.
    """
    if n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.sort(rng.choice(n, size, replace=False))
    labels, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(labels))
    quota = np.floor(counts * size / n).astype(np.int64)
    if size >= len(labels):
        quota = np.maximum(quota, 1)
    quota = np.minimum(quota, counts)
    chosen = [rng.choice(np.flatnonzero(inverse == g), q, replace=False) for g, q in enumerate(quota) if q]
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    if len(picked) > size:  # the one-per-group floor overshot: drop from the largest groups' extras
        picked = rng.choice(picked, size, replace=False)
    elif len(picked) < size:
        rest = np.setdiff1d(np.arange(n), picked)
        picked = np.concatenate([picked, rng.choice(rest, size - len(picked), replace=False)])
    return np.sort(picked)


_UMAP_CACHING = threading.Lock()
_umap_caching_on = False


def _umap() -> Any:
    """The ``umap`` package (heavy: imported only when a map is fitted), its numba kernels compiled
    once per installation rather than once per process.

    Why: a fresh process's first map spent ~9.4 s on 2 cores, ~5 s of it numba compiling UMAP's
    kernels (``smooth_knn_dist`` 3.3 s, ``compute_membership_strengths`` 1.1 s, the layout epoch
    0.6 s), which umap-learn does not cache; with numba's on-disk cache turned on for them, a later
    process's first small map took 2.1 s after the import. The cache goes where numba puts it
    (``NUMBA_CACHE_DIR``, else beside the package or in the user's cache folder) and numba checks
    it against the package's source files. A kernel with nowhere to cache it compiles as before.
    """
    global _umap_caching_on
    import umap

    with _UMAP_CACHING:
        if not _umap_caching_on:
            from numba.core.registry import CPUDispatcher

            for module in (umap.umap_, umap.layouts, umap.distances, umap.utils, umap.spectral):
                for kernel in list(vars(module).values()):
                    if isinstance(kernel, CPUDispatcher) and kernel.__module__ == module.__name__:
                        with contextlib.suppress(RuntimeError):  # numba found no writable place for its cache
                            kernel.enable_caching()
            _umap_caching_on = True
    return umap


def _fit_umap(reference: np.ndarray, params: ProjectionParams, sampled: bool) -> np.ndarray:
    """UMAP coordinates of the fitted items, from their exact neighbour graph."""
    umap = _umap()

    n_neighbors = min(params.n_neighbors, len(reference) - 1)
    knn_idx, knn_dist = nearest(reference, reference, n_neighbors, params.metric)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=params.min_dist,
        metric=params.metric,
        random_state=params.random_state,
        n_jobs=1,  # a fixed seed runs single-threaded anyway; saying so silences the warning
        n_epochs=SAMPLED_EPOCHS if sampled else None,
        init="spectral" if len(reference) > params.n_neighbors + 2 else "random",
        precomputed_knn=(knn_idx, knn_dist),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no search index: transform unavailable" - we place points ourselves
        return np.asarray(reducer.fit_transform(reference), dtype=np.float32)


def _load(path: Path, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """A cached map of ``n`` vectors of width ``d``, or None (a damaged one is reported and removed)."""
    specs = {
        "coords": Spec((n, 2), finite=False),  # NaN rows: items not placed yet; checked below
        "fitted": Spec(("m",), kinds="iu"),
        "mean": Spec((None,)),  # (d,), or empty when nothing was centred
        "basis": Spec(None),  # (d, k), or empty
    }
    arrays = load_npz(path, specs, what="map cache")
    if arrays is None:
        return None
    coords, fitted, mean, basis = (arrays[name] for name in specs)
    if len(fitted) < 2 or fitted.min() < 0 or fitted.max() >= n or mean.size not in (0, d):
        discard(path, "map cache", f"{len(fitted)} fitted rows out of range for {n} items of width {d}")
        return None
    if basis.size and (basis.ndim != 2 or basis.shape[0] != d):
        discard(path, "map cache", f"basis of shape {basis.shape} for width {d}")
        return None
    missing = np.isnan(coords)
    if np.isinf(coords).any() or (missing.any(axis=1) != missing.all(axis=1)).any() or missing[fitted].any():
        discard(path, "map cache", "coordinates that are infinite, half missing, or missing for fitted items")
        return None
    return coords, fitted, mean, basis


def project(
    vectors: np.ndarray | MapVectors,
    params: ProjectionParams = ProjectionParams(),
    cache_dir: str | Path | None = None,
    groups: Sequence[str] | None = None,
    placed: np.ndarray | None = None,
) -> Projection:
    """Coordinates (n, 2) for ``vectors`` (n, d): from ``cache_dir``, else computed (and cached there).

    ``vectors`` may be a :class:`MapVectors`, gathered only as far as the map needs: its fitted
    items' vectors when the map is cached. ``groups`` (one label per row, e.g. the top category)
    stratifies the fitted sample. ``placed``: the positions of the items to place now (default:
    every item); the others stay NaN until :meth:`Projection.coords_at` asks for them.
    """
    if isinstance(vectors, MapVectors):
        shape, key_of, rows_of = vectors.shape, vectors.key, vectors.rows
    else:
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim != 2:
            raise InputError(f"A map needs a 2-D array of vectors (got {array.ndim} dimensions).")
        shape, key_of, rows_of = array.shape, functools.partial(input_hash, array), array.__getitem__
    n, d = shape
    if n < 4:
        raise InputError(f"A map needs at least 4 items with vectors (got {n}).")
    if groups is not None and len(groups) != n:
        raise InputError(f"One group label per vector is needed (got {len(groups)} for {n}).")
    key = key_of(params, groups)
    path = map_path(cache_dir, key) if cache_dir is not None else None
    cached = _load(path, n, d) if path is not None else None
    if cached is not None:
        coords, fitted, mean, basis = cached
        space = SearchSpace(params.metric, mean, basis) if basis.size else SearchSpace(params.metric)
        projection = Projection(coords, key, fitted, space, space(rows_of(fitted)), params.n_neighbors)
    else:
        projection = _fit(rows_of, n, key, params, groups)
    missing = projection.unplaced(placed)
    if len(missing):
        from recsys.threads import use_threads

        with use_threads("batch"):  # a whole-catalogue job, even in a process otherwise answering queries
            projection.place_items(missing, rows_of)
    if path is not None and (cached is None or len(missing)):
        space = projection.space
        empty = np.zeros(0, dtype=np.float32)
        mean = space.mean if space.mean is not None else empty
        basis = space.basis if space.basis is not None else empty
        save_npz(path, what="map cache", coords=projection.coords, fitted=projection.fitted, mean=mean, basis=basis)
    return projection


def _fit(
    rows_of: Callable[[np.ndarray], np.ndarray],
    n: int,
    key: str,
    params: ProjectionParams,
    groups: Sequence[str] | None,
) -> Projection:
    """A map of ``n`` items with only its fitted sample placed (UMAP on their exact neighbour graph)."""
    from recsys.threads import use_threads

    with use_threads("batch"):
        fitted = stratified_sample(n, params.fit_size, groups, params.random_state)
        vectors = rows_of(fitted)
        prepared = _prepare(vectors, params.metric)
        coords = np.full((n, 2), np.nan, dtype=np.float32)
        coords[fitted] = _fit_umap(prepared, params, sampled=len(fitted) < n)
        space = SearchSpace.fit(prepared, params.metric) if len(fitted) < n else SearchSpace(params.metric)
        return Projection(coords, key, fitted, space, space(vectors), params.n_neighbors)


def _active(engine: RecommendationEngine, weights: Mapping[str, float] | None) -> list[str]:
    mods = list(engine.item_modalities)
    if weights is None:
        return mods
    return [m for m in mods if weights.get(m, 1.0) > 0]


#: Items whose map vectors are gathered and normalised at once. Copies of the whole catalogue's vectors
#: reached 9.3 GB for a fused map of 1M items (two 384-d spaces); blocks that stay in the CPU's caches
#: also run faster: a fused map of 100k items (384-d and 1280-d, float16) took 4.4 s in blocks of
#: 65,536 items, 1.4 s in blocks of 4,096 and 0.9 s in blocks of 1,024 (2 cores).
GATHER_ROWS = 1_024


class MapVectors:
    """The vectors a map of ``engine``'s ``source`` (a modality or ``"fused"``) is drawn from,
    gathered only when needed, and that map's cache key (:meth:`key`).

    ``fused`` mirrors early fusion: per space (modalities of equal dimension share one after
    alignment) the weighted sum of normalised vectors, spaces concatenated, then normalised. Every
    step works row by row, so the items are gathered :data:`GATHER_ROWS` at a time.

    Why: finding a map in the disk cache meant gathering every item's vectors and hashing them, on
    each new process's first visit: at 1M items (a fused 768-d map) 13.4 s to gather and 9.9 s per
    hash, twice. An engine that names what its item matrices were built from
    (:attr:`recsys.recommend.engine.RecommendationEngine.matrices_key`) keys its maps by that name, so a
    cached map needs only the vectors of the items UMAP was fitted on.
    """

    def __init__(self, engine: RecommendationEngine, source: str, weights: Mapping[str, float] | None = None) -> None:
        if source == FUSED:
            mods = _active(engine, weights)
            if not mods:
                raise InputError("Every modality weight is 0: raise at least one to draw the fused map.")
        elif source not in engine.item_modalities:
            raise InputError(f"No item has a {source!r} vector; choose one of {engine.item_modalities}.")
        else:
            mods = [source]
        self.engine, self.source = engine, source
        # (vectors, mask, weight) per modality; a single source is unweighted
        self._sources = []
        for m in mods:
            vecs, mask = engine.item_vectors(m)
            weight = 1.0 if weights is None or source != FUSED else float(weights.get(m, 1.0))
            self._sources.append((m, vecs, np.asarray(mask, dtype=bool), weight))
        present = self._sources[0][2]
        for _, _, mask, _ in self._sources[1:]:
            present = present | mask
        #: the catalogue rows of the items on the map, in the order of the vectors
        self.indices = np.flatnonzero(present)
        self._widths = sorted({np.shape(vecs)[1] for _, vecs, _, _ in self._sources})
        self._all: np.ndarray | None = None
        self._key: tuple[ProjectionParams, Sequence[str] | None, str] | None = None  # the last key worked out

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indices), sum(self._widths)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions`` (into :attr:`indices`), gathered :data:`GATHER_ROWS` at a time."""
        idx = self.indices[np.asarray(positions, dtype=np.int64)]
        out = np.empty((len(idx), self.shape[1]), dtype=np.float32)
        for start in range(0, len(idx), GATHER_ROWS):
            out[start : start + GATHER_ROWS] = self._block(idx[start : start + GATHER_ROWS])
        return out

    def all(self) -> np.ndarray:
        """Every item's vector (gathered once)."""
        if self._all is None:
            self._all = self.rows(np.arange(len(self.indices)))
        return self._all

    def _block(self, rows: np.ndarray) -> np.ndarray:
        if self.source != FUSED:
            _, vecs, _, _ = self._sources[0]
            return unit_vectors(rows_float32(vecs, rows), in_place=True)
        groups: dict[int, np.ndarray] = {}
        for _, vecs, mask, w in self._sources:
            part = unit_vectors(rows_float32(vecs, rows), in_place=True)
            part *= (mask[rows] * np.float32(w))[:, None]
            d = part.shape[1]
            groups[d] = groups.get(d, 0) + part
        return unit_vectors(np.concatenate([unit_vectors(groups[d]) for d in self._widths], axis=1))

    def key(self, params: ProjectionParams, groups: Sequence[str] | None = None) -> str:
        """The map's cache key: from the engine's name for its item matrices where it has one
        (the source, its modalities' weights and the items on the map besides), else
        :func:`input_hash` of the vectors themselves."""
        if self._key is not None and self._key[0] == params and self._key[1] is groups:
            return self._key[2]
        named = getattr(self.engine, "matrices_key", None)
        key = self._named_key(named, params, groups) if named else input_hash(self.all(), params, groups)
        self._key = (params, groups, key)
        return key

    def _named_key(self, named: str, params: ProjectionParams, groups: Sequence[str] | None) -> str:
        meta = {
            "format": CACHE_FORMAT,
            "matrices": named,
            "source": self.source,
            "weights": [[m, w] for m, _, _, w in self._sources],
            "shape": self.shape,
            **asdict(params),
        }
        h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
        h.update(self.indices)
        if groups is not None:
            h.update("\x1f".join(map(str, groups)).encode())
        return h.hexdigest()[:24]


def catalogue_vectors(
    engine: RecommendationEngine, source: str, weights: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every vector of :class:`MapVectors` ``(engine, source, weights)`` and the catalogue indices they belong to."""
    vectors = MapVectors(engine, source, weights)
    return vectors.all(), vectors.indices


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
    return {m: unit_vectors(np.asarray(v, dtype=np.float32).ravel()) for m, v in native.items()}


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
        return unit_vectors(np.sum(same, axis=0)) if same else None
    dims = sorted({np.asarray(engine.item_vectors(m)[0]).shape[1] for m in _active(engine, weights)})
    parts = []
    for d in dims:
        same = [w(m) * v for m, v in qvecs.items() if v.shape[0] == d and w(m) > 0]
        parts.append(unit_vectors(np.sum(same, axis=0)) if same else np.zeros(d, dtype=np.float32))
    out = np.concatenate(parts)
    return unit_vectors(out) if np.any(out) else None


def map_key(source: str, weights: Mapping[str, float] | None, params: ProjectionParams) -> tuple:
    """What a map of one engine depends on besides the engine: the source, the weights (which only
    the fused map uses) and the map's parameters."""
    used = tuple(sorted((m, float(w)) for m, w in (weights or {}).items())) if source == FUSED else ()
    return source, used, params


class MapMemo:
    """The maps last drawn of each engine, by :func:`map_key`, so that a page's rerun reuses them.

    Why: finding a map's cache entry means gathering the items' vectors (a float32 copy of every
    item's vectors of the source) and hashing them, on every rerun of the page (each click): ~0.5 s
    at 100k items, seconds and several GB of copies at 1M. An entry holds only a weak reference to
    its engine and answers for that same engine object alone, so a rebuilt engine gets new maps.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[weakref.ref, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, engine: object, key: tuple) -> Any | None:
        """What :meth:`put` kept for ``engine`` (this very object) and ``key``, else None."""
        with self._lock:
            entry = self._entries.get((id(engine), key))
            if entry is None or entry[0]() is not engine:
                return None
            self._entries.move_to_end((id(engine), key))
            return entry[1]

    def put(self, engine: object, key: tuple, value: Any) -> None:
        """Keep ``value``, dropping the least recently used entries beyond ``size``."""
        with self._lock:
            self._entries[(id(engine), key)] = (weakref.ref(engine), value)
            self._entries.move_to_end((id(engine), key))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
