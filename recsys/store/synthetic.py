"""Synthetic catalogues for store tests and benchmarks: clustered unit vectors with a category tree.

Uniform random vectors make every ANN index look perfect or hopeless; real embeddings sit in
clusters with a few directions of spread each. So vectors here come from a Gaussian mixture in
low-rank form (per component: a mean, ``rank`` principal directions, isotropic noise), either
drawn at random or fitted to a real catalogue's vectors (:func:`fit_field_stats`). Items come
in chunks, each seeded by (seed, chunk number), so 10M items never sit in RAM at once and any
chunk can be regenerated alone. Category sizes follow a Zipf law (broad and selective filters
both occur) and correlate with the mixture component, as real categories do.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldStats:
    """A Gaussian mixture: ``x = means[c] + factors[c] @ z + noise[c] * e`` with z, e standard normal."""

    weights: np.ndarray  # (C,) component probabilities
    means: np.ndarray  # (C, d)
    factors: np.ndarray  # (C, d, r) principal directions scaled by their standard deviation
    noise: np.ndarray  # (C,) isotropic standard deviation of what the factors leave

    @property
    def dim(self) -> int:
        return self.means.shape[1]


@dataclass(frozen=True)
class SyntheticChunk:
    ids: list[str]
    categories: list[str]
    vectors: dict[str, np.ndarray]  # field -> (n, dim) float32 unit rows, zero where the item lacks it


def random_field_stats(dim: int, n_clusters: int = 256, rank: int = 16, seed: int = 0) -> FieldStats:
    """Unit-norm cluster means, low-rank spread and noise sized so that items of one cluster have
    cosine ~0.3-0.6 to each other and ~0 to other clusters (typical of sentence/image embeddings)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    spread = rng.uniform(0.5, 1.0, size=n_clusters).astype(np.float32)
    factors = rng.standard_normal((n_clusters, dim, rank)).astype(np.float32)
    factors *= (spread / np.sqrt(dim * rank))[:, None, None] * np.sqrt(0.8).astype(np.float32)
    noise = spread * np.float32(np.sqrt(0.6 / dim))
    weights = rng.dirichlet(np.full(n_clusters, 2.0))
    return FieldStats(weights, means, factors, noise.astype(np.float32))


def fit_field_stats(vectors: np.ndarray, n_components: int = 8, rank: int = 8, seed: int = 0) -> FieldStats:
    """Fit a small mixture to real vectors (rows of one field): k-means for the components, then
    per component its mean, top-``rank`` principal directions and the residual variance."""
    from sklearn.cluster import KMeans

    x = np.asarray(vectors, dtype=np.float32)
    x = x[np.any(x != 0, axis=1)]
    n_components = max(1, min(n_components, x.shape[0] // 2))
    labels = KMeans(n_components, n_init=3, random_state=seed).fit_predict(x)
    d = x.shape[1]
    weights, means, factors, noise = [], [], [], []
    for c in range(n_components):
        part = x[labels == c]
        mu = part.mean(axis=0)
        centred = part - mu
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        var = s**2 / max(1, part.shape[0] - 1)
        r = min(rank, vt.shape[0])
        f = np.zeros((d, rank), dtype=np.float32)
        f[:, :r] = (vt[:r].T * np.sqrt(var[:r])).astype(np.float32)
        resid = max(float(var[r:].sum()) / max(1, d - r), 1e-8)
        weights.append(part.shape[0])
        means.append(mu)
        factors.append(f)
        noise.append(np.sqrt(resid))
    w = np.asarray(weights, dtype=np.float64)
    return FieldStats(w / w.sum(), np.stack(means), np.stack(factors), np.asarray(noise, dtype=np.float32))


def category_names(n_categories: int) -> list[str]:
    """Leaves of a two-level tree: ``c03/s0042`` (about sqrt(n) top-level categories)."""
    n_top = max(1, round(np.sqrt(n_categories)))
    return [f"c{leaf % n_top:02d}/s{leaf:04d}" for leaf in range(n_categories)]


def synthetic_collection(
    n: int,
    fields: Mapping[str, int],
    n_categories: int = 50,
    seed: int = 0,
    stats: Mapping[str, FieldStats] | None = None,
    *,
    chunk_size: int = 50_000,
    n_clusters: int = 256,
    missing: Mapping[str, float] | None = None,
    id_prefix: str = "item",
) -> Iterator[SyntheticChunk]:
    """Yield ``n`` items in chunks of ``chunk_size``: ids ``item00000042``, a leaf category, and a unit
    vector per field (a zero row for the share ``missing[field]`` of items lacking it)."""
    field_stats = {
        f: (stats or {}).get(f) or random_field_stats(d, n_clusters, seed=zlib.crc32(f"{seed}/{f}".encode()))
        for f, d in fields.items()
    }
    for f, d in fields.items():
        if field_stats[f].dim != d:
            raise ValueError(f"stats for field '{f}' have dim {field_stats[f].dim}, not {d}")
    names = category_names(n_categories)
    setup = np.random.default_rng([seed, 0xC47])
    zipf = 1.0 / np.arange(1, n_categories + 1) ** 0.9
    zipf = setup.permutation(zipf / zipf.sum())
    lead = next(iter(field_stats.values()))
    home_leaf = setup.integers(0, n_categories, size=lead.weights.shape[0])
    width = len(str(max(n - 1, 1)))
    for number, a in enumerate(range(0, n, chunk_size)):
        b = min(n, a + chunk_size)
        m = b - a
        rng = np.random.default_rng([seed, number])
        comp = rng.choice(lead.weights.shape[0], size=m, p=lead.weights)
        leaf = np.where(rng.random(m) < 0.7, home_leaf[comp], rng.choice(n_categories, size=m, p=zipf))
        vectors = {}
        for f, st in field_stats.items():
            c = comp % st.weights.shape[0] if st is not lead else comp
            x = _draw(st, c, rng)
            share = (missing or {}).get(f, 0.0)
            if share:
                x[rng.random(m) < share] = 0
            vectors[f] = x
        yield SyntheticChunk(
            [f"{id_prefix}{i:0{width}d}" for i in range(a, b)],
            [names[leaf_i] for leaf_i in leaf.tolist()],
            vectors,
        )


def synthetic_arrays(n: int, fields: Mapping[str, int], **kwargs: object) -> SyntheticChunk:
    """All ``n`` items as one chunk (small collections: tests, queries)."""
    parts = list(synthetic_collection(n, fields, chunk_size=max(n, 1), **kwargs))  # type: ignore[arg-type]
    return parts[0]


def _draw(st: FieldStats, comp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    m, d, r = comp.shape[0], st.dim, st.factors.shape[2]
    x = rng.standard_normal((m, d), dtype=np.float32)
    x *= st.noise[comp][:, None]
    x += st.means[comp]
    z = rng.standard_normal((m, r), dtype=np.float32)
    for c in np.unique(comp).tolist():
        rows = np.flatnonzero(comp == c)
        x[rows] += z[rows] @ st.factors[c].T
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x
