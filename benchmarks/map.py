"""The Explore map on a large catalogue: time to coordinates and to the figure, for synthetic items.

Items are clustered unit vectors in 384-d (a seeded Gaussian mixture, one top category per
cluster). For each size it prints the time to compute the coordinates (no cache: sample, UMAP,
placement of every item), the same for the points the app draws alone (past ``MAX_DRAWN`` items
the page places its sample with the map and the results it draws when it draws them), to read
them back from the disk cache (what a page rerun paid each time before the app kept each
engine's maps: gathering and hashing the vectors), to place one query, and, for the points the
page draws (all up to ``recsys.ui.explore.MAX_DRAWN``, else a sample per category with the
results), to build the plotly figure and the size of its JSON (what the browser receives on
every rerun).

    .venv/bin/python benchmarks/map.py [--sizes 10000 100000] [--clusters 30]

The first size also pays numba's compilation of UMAP (once per process); ``--warm-up`` runs a
small map first so that every size is timed warm, as in a running app.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a fresh clone, without installing
    sys.path.insert(0, str(ROOT))

from recsys.maps import ProjectionParams, project  # noqa: E402
from recsys.threads import available_cores, thread_count  # noqa: E402
from recsys.ui.explore import MAX_DRAWN, drawn_rows, fixed_sample, map_figure  # noqa: E402

DIM = 384


def mixture(n: int, clusters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``clusters`` random centres (spread 0.6 of a centre's length), and labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + rng.normal(scale=0.6 / np.sqrt(DIM), size=(n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def frame_for(coords: np.ndarray, labels: np.ndarray, rank: np.ndarray, rows: np.ndarray):
    """The map's frame (as :func:`recsys.ui.explore.map_frame` builds it) of the items ``rows``."""
    import pandas as pd

    groups = [f"category-{g:02d}" for g in labels]
    return pd.DataFrame(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "id": [f"item-{i}" for i in rows],
            "title": [f"Item number {i}" for i in rows],
            "category": [f"{g}/leaf-{i % 7}" for i, g in zip(rows, groups, strict=True)],
            "group": groups,
            "rank": rank,
        }
    )


def neighbour_agreement(vectors: np.ndarray, coords: np.ndarray, labels: np.ndarray, sample: int = 2000) -> float:
    """Share of sampled items whose nearest map neighbour has the same cluster: a sanity figure, not a target."""
    rng = np.random.default_rng(1)
    rows = rng.choice(len(coords), min(sample, len(coords)), replace=False)
    d = ((coords[rows, None, :] - coords[None, :, :]) ** 2).sum(-1) if len(coords) <= 20000 else None
    if d is None:  # chunk to bound memory on large maps
        nearest = np.array([np.argsort(((coords - coords[r]) ** 2).sum(1))[1] for r in rows])
    else:
        d[np.arange(len(rows)), rows] = np.inf
        nearest = d.argmin(1)
    return float((labels[nearest] == labels[rows]).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--clusters", type=int, default=30)
    parser.add_argument("--warm-up", action="store_true", help="compile UMAP on a small map first")
    parser.add_argument("--fit-size", type=int, default=ProjectionParams().fit_size, help="items UMAP is fitted on")
    args = parser.parse_args(argv)
    params = ProjectionParams(fit_size=args.fit_size)
    print(
        f"{available_cores()} CPU core(s), {thread_count('batch')} batch thread(s); "
        f"UMAP fitted on <= {params.fit_size} items, metric {params.metric}, n_neighbors {params.n_neighbors}"
    )
    with tempfile.TemporaryDirectory() as cache:
        if args.warm_up:
            t0 = time.perf_counter()
            project(mixture(500, 5, seed=9)[0], params, cache_dir=None)
            print(f"warm-up (numba compilation): {time.perf_counter() - t0:.1f} s")
        head = ["items", "coords s", "drawn s", "cached s", "query ms", "drawn", "figure s", "JSON MB", "nn-agree"]
        print(" ".join(f"{h:>9}" for h in head))
        for n in args.sizes:
            vectors, labels = mixture(n, args.clusters)
            groups = [f"category-{g:02d}" for g in labels]
            t0 = time.perf_counter()
            proj = project(vectors, params, cache_dir=cache, groups=groups)
            coords_s = time.perf_counter() - t0
            drawn_s = coords_s
            if n > MAX_DRAWN:  # as the page: its sample placed with the map, then its results (10 here)
                t0 = time.perf_counter()
                drawn = np.flatnonzero(fixed_sample(groups, MAX_DRAWN))
                sampled = project(vectors, params, groups=groups, placed=drawn)
                sampled.coords_at(np.arange(10), vectors.__getitem__)
                drawn_s = time.perf_counter() - t0
                assert np.allclose(sampled.coords[:10], proj.coords[:10], atol=1e-4)
            t0 = time.perf_counter()
            again = project(vectors, params, cache_dir=cache, groups=groups)
            cached_s = time.perf_counter() - t0
            assert np.array_equal(again.coords, proj.coords)
            t0 = time.perf_counter()
            query_xy = proj.transform(vectors[:1])[0]
            query_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            # what the page draws: every point up to MAX_DRAWN, else its sample (results among them)
            rows = np.arange(n) if n <= MAX_DRAWN else drawn_rows(groups, np.arange(10), np.arange(n), MAX_DRAWN)
            ranks = np.full(n, np.nan)
            ranks[:10] = np.arange(1, 11)
            fig = map_figure(frame_for(proj.coords[rows], labels[rows], ranks[rows], rows), query_xy)
            payload = fig.to_json()
            figure_s = time.perf_counter() - t0
            agree = neighbour_agreement(vectors, proj.coords, labels)
            print(
                f"{n:>9} {coords_s:>9.2f} {drawn_s:>9.2f} {cached_s:>9.2f} {query_ms:>9.1f} {len(rows):>9} "
                f"{figure_s:>9.2f} {len(payload) / 1e6:>9.1f} {agree:>9.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
