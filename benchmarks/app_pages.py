"""The app's pages on a large indexed catalogue, each start in a fresh process (Streamlit's AppTest).

Per start: the Recommend page's first run (loading the models and the engine), a text query, the
Explore page's first visit with its default parameters (the maps the work folder's cache holds are
removed before each start, so UMAP is fitted and the drawn items placed; with ``--cached-maps`` only
before the first, so a later start reads the map its predecessor drew) and a rerun of it, then the
Why this item? page for the query's first result. Starts share one numba cache folder (``NUMBA_CACHE_DIR``,
empty at first): the first start is a fresh installation's, which compiles UMAP's numba kernels;
the later ones load them (:func:`recsys.maps._umap`).

    .venv/bin/python benchmarks/app_pages.py                     # 100,000 synthetic items
    .venv/bin/python benchmarks/app_pages.py --n 20000 --starts 3 --workdir /tmp/pages
    .venv/bin/python benchmarks/app_pages.py --n 1000000 --starts 2 --cached-maps --workdir /tmp/start1m

The catalogue is ``benchmarks/catalogue_load.py``'s synthetic one, indexed as
``benchmarks/engine_start.py`` does (with ``--workdir`` the same folder serves both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child() -> None:
    """One start: every page as a person first opens it; prints seconds per step as JSON."""
    from streamlit.testing.v1 import AppTest

    out: dict[str, float] = {}

    def timed(step: str, run) -> None:  # noqa: ANN001 (an AppTest's run)
        began = time.perf_counter()
        run()
        out[step] = time.perf_counter() - began

    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1800)
    timed("engine", home.run)
    home.text_input(key="query-text").set_value("a red circle")
    timed("query", home.run)
    last = home.session_state["last_search"]
    explore = AppTest.from_file(str(ROOT / "pages" / "1_Explore.py"), default_timeout=1800)
    explore.session_state["last_search"] = last
    timed("explore", explore.run)
    timed("explore rerun", explore.run)
    why = AppTest.from_file(str(ROOT / "pages" / "2_Why_this_item.py"), default_timeout=1800)
    why.session_state["last_search"] = last
    timed("why", why.run)
    failed = [page for page in (home, explore, why) if page.exception]
    if failed:
        raise SystemExit(f"a page raised: {[p.exception for p in failed]}")
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="catalogue items")
    parser.add_argument("--starts", type=int, default=2, help="fresh app processes, one after another")
    parser.add_argument("--workdir", default=None, help="keep the catalogue and its cache here")
    parser.add_argument(
        "--cached-maps", action="store_true", help="keep the maps the first start draws for the later ones"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return

    import catalogue_load

    work = Path(args.workdir or tempfile.mkdtemp(prefix="app-pages-"))
    catalogue, cache = catalogue_load.indexed_synthetic(work, args.n)
    steps = ("engine", "query", "explore", "explore rerun", "why")
    print(f"{'start':34s} " + " ".join(f"{s + ' s':>15s}" for s in steps))
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as numba_cache:
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": numba_cache,
            "RECSYS_CATALOGUE": str(catalogue),
            "RECSYS_CACHE_DIR": str(cache),
        }
        for start in range(args.starts):
            if start == 0 or not args.cached_maps:  # the benchmark's own cache: maps drawn again
                shutil.rmtree(cache / "projections", ignore_errors=True)
            done = subprocess.run(
                [sys.executable, __file__, "--child"], check=True, cwd=ROOT, env=env, capture_output=True, text=True
            )
            times = json.loads(done.stdout.strip().splitlines()[-1])
            kind = (
                "first (UMAP's kernels compiled)"
                if start == 0
                else "later (the map cached)"
                if args.cached_maps
                else "later (kernels loaded)"
            )
            print(f"{kind:34s} " + " ".join(f"{times[s]:15.2f}" for s in steps), flush=True)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
