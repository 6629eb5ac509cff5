"""How long a start takes on a large catalogue that is already indexed, and its peak memory: the
app, every CLI query and ``load_engine`` load the catalogue and build the engine before answering.

Compares a start that maps the engine snapshot of the last build (``recsys.snapshot``: what every
start after the first one does) with one that derives the item matrices again from the feature
cache (what every start did before, and what the first start after a change still does: here its
snapshot is deleted first). A derived start runs twice: with the features read into RAM, and into
scratch files (``recsys.encoding.cache.feature_array``: what a catalogue does from ~210k items on,
forced here). Each start runs in a fresh process, which loads the catalogue, builds the engine and
answers a query naming one liked item (which needs no encoder's network) and then a text query
(which builds the text encoder's network: the offline networks are built on first use); peak RSS is
that process's, peak anonymous memory (RAM that only the process's end gives back, unlike the
scratch files' page cache) is sampled every 50 ms.

    .venv/bin/python benchmarks/engine_start.py                     # 100,000 synthetic items
    .venv/bin/python benchmarks/engine_start.py --n 20000 --runs 3 --workdir /tmp/start
    .venv/bin/python benchmarks/engine_start.py --catalogue data/tuxpaint --runs 3   # an indexed catalogue

With ``--catalogue`` the starts are of that catalogue, already indexed (under the configured cache
dir), and only mapped starts run: its snapshot is never deleted. With ``--drawn-text`` the titles'
embeddings are drawn into the cache instead of encoded (1M titles: ~1 hour of MiniLM on 2 cores),
so that a 1M catalogue can be indexed and started in minutes; the starts then run as before.

    .venv/bin/python benchmarks/engine_start.py --n 1000000 --drawn-text --workdir /tmp/start1m --runs 1

The catalogue is ``benchmarks/catalogue_load.py``'s synthetic one (N items titled "Item i", their
pictures hard links to 4 small PNGs, so indexing encodes N texts and 4 pictures); with
``--workdir`` it and its cache are kept for the next run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from process_memory import anon_rss_mb, peak_rss_mb  # noqa: E402

#: Each kind of start, and the features' scratch-file threshold it runs with (None: the product's).
KINDS = {
    "snapshot mapped": None,
    "derived, features in RAM": 1 << 62,
    "derived, features in scratch": 0,
}


def peak_anon_sampler() -> dict[str, float]:
    """Samples the process's anonymous RSS every 50 ms on a daemon thread; the dict holds the peak in MB."""
    import threading

    peak = {"mb": 0.0}

    def sample() -> None:
        while True:
            peak["mb"] = max(peak["mb"], anon_rss_mb())  # NaN (no /proc) leaves it
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    return peak


def child(catalogue: str, cache: str | None, scratch_min_bytes: int | None) -> None:
    """One start: load, build, one query; prints seconds per step and the peak RSS as JSON."""
    anon = peak_anon_sampler()
    start = time.perf_counter()
    import recsys.encoding.cache
    from recsys.catalogue import load_catalogue
    from recsys.pipeline import PipelineConfig, build_engine
    from recsys.recommend.query import Query

    if scratch_min_bytes is not None:
        recsys.encoding.cache.SCRATCH_MIN_BYTES = scratch_min_bytes
    imported = time.perf_counter()
    config = PipelineConfig.layered(catalogue, **({} if cache is None else {"cache_dir": cache}))
    loaded = load_catalogue(catalogue, cache_dir=config.cache_folder())  # as load_engine does
    catalogue_s = time.perf_counter() - imported
    built = time.perf_counter()
    engine = build_engine(loaded, config)
    engine_s = time.perf_counter() - built
    asked = time.perf_counter()
    engine.recommend(Query(likes=(loaded.items[0].id,)), k=10)
    likes_s = time.perf_counter() - asked
    asked = time.perf_counter()
    top = engine.recommend(Query(text="a red circle"), k=10)
    query_s = time.perf_counter() - asked
    print(json.dumps({
        "imports": imported - start, "catalogue": catalogue_s, "engine": engine_s, "likes": likes_s, "query": query_s,
        "total": time.perf_counter() - start, "peak_mb": peak_rss_mb(), "anon_mb": anon["mb"],
        "top": [r.item.id for r in top],
    }))  # fmt: skip


def start(catalogue: Path, cache: Path | None, scratch_min_bytes: int | None = None) -> dict:
    scratch = [] if scratch_min_bytes is None else ["--scratch-min-bytes", str(scratch_min_bytes)]
    cached = [] if cache is None else ["--cache-dir", str(cache)]
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(catalogue), *cached, *scratch],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="catalogue items")
    parser.add_argument("--runs", type=int, default=2, help="starts of each kind")
    parser.add_argument("--workdir", default=None, help="keep the catalogue and its cache here")
    parser.add_argument("--catalogue", default=None, help="an indexed catalogue folder instead (mapped starts)")
    parser.add_argument("--drawn-text", action="store_true", help="draw the titles' embeddings instead of encoding")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scratch-min-bytes", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cache_dir, args.scratch_min_bytes)
        return

    import catalogue_load

    from recsys.snapshot import FOLDER

    if args.catalogue:
        work, catalogue, cache, kinds = None, Path(args.catalogue), None, {"snapshot mapped": None}
    else:
        work = Path(args.workdir or tempfile.mkdtemp(prefix="engine-start-"))
        (catalogue, cache), kinds = catalogue_load.indexed_synthetic(work, args.n, args.drawn_text), KINDS
    rows = []
    for run in range(args.runs):
        for kind, scratch_min_bytes in kinds.items():
            if kind != "snapshot mapped":
                shutil.rmtree(cache / FOLDER, ignore_errors=True)
            rows.append((kind, run, start(catalogue, cache, scratch_min_bytes)))
    print(f"{'start':28s} {'run':>3s} {'imports s':>9s} {'catalogue s':>11s} {'engine s':>8s} {'likes s':>7s} "
          f"{'query s':>7s} {'total s':>7s} {'peak RSS MB':>11s} {'peak anon MB':>12s}")  # fmt: skip
    for kind, run, r in rows:
        print(f"{kind:28s} {run:3d} {r['imports']:9.2f} {r['catalogue']:11.2f} {r['engine']:8.2f} {r['likes']:7.2f} "
              f"{r['query']:7.2f} {r['total']:7.2f} {r['peak_mb']:11.0f} {r['anon_mb']:12.0f}")  # fmt: skip
    same = all(r["top"] == rows[0][2]["top"] for _, _, r in rows)
    print(f"same top 10 in every start: {same}")
    if work is not None and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
