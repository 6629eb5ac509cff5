"""One start for many queries: ``recommend --queries FILE`` against one ``recommend`` run per query.

Every CLI run loads the catalogue, maps the engine's matrices and opens the vector store before it
answers; on a large catalogue that start dwarfs a query. This times, in the same session, a few
single-query runs and one run over a query file of ``--n`` queries (the texts of items drawn from
the catalogue, strategies early / late / rrf in turn), and checks that both give the same top
results for the queries they share.

    .venv/bin/python benchmarks/query_file.py --catalogue data/tuxpaint
    .venv/bin/python benchmarks/query_file.py --catalogue /tmp/start/catalogue-100000 --cache-dir /tmp/start/cache
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(args: list[str], cache_dir: str | None) -> tuple[float, str]:
    env = dict(os.environ, **({"RECSYS_CACHE_DIR": cache_dir} if cache_dir else {}))
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "recsys", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"recommend failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - began, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", default=str(ROOT / "data" / "tuxpaint"))
    parser.add_argument("--cache-dir", default=None, help="the catalogue's cache (default: RECSYS_CACHE_DIR)")
    parser.add_argument("--n", type=int, default=200, help="queries in the file")
    parser.add_argument("--single", type=int, default=3, help="single-query runs to time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from recsys.catalogue import load_catalogue

    items = load_catalogue(args.catalogue).items
    rng = random.Random(args.seed)
    texts = [item.text for item in rng.sample(items, min(args.n, len(items))) if item.text]
    strategies = ("early", "late", "rrf")
    queries = [{"id": f"q{i}", "text": t, "strategy": strategies[i % 3], "k": 10} for i, t in enumerate(texts)]
    base = ["recommend", "--catalogue", args.catalogue]
    run([*base, "--text", "warm-up"], args.cache_dir)  # the first start may index or save a snapshot

    single: list[tuple[float, list[str]]] = []
    for q in queries[: args.single]:
        seconds, out = run([*base, "--text", q["text"], "--strategy", q["strategy"], "--json"], args.cache_dir)
        single.append((seconds, [r["id"] for r in json.loads(out)]))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        fh.write("".join(json.dumps(q) + "\n" for q in queries))
    try:
        batch_s, out = run([*base, "--queries", fh.name], args.cache_dir)
    finally:
        os.unlink(fh.name)
    records = [json.loads(line) for line in out.splitlines()]
    same = all([r["id"] for r in records[i]["results"]] == top for i, (_, top) in enumerate(single))
    per_single = sum(s for s, _ in single) / len(single)
    print(f"catalogue {args.catalogue}: {len(items):,} items, {len(queries)} queries")
    print(f"{'run':34s} {'wall s':>8s} {'s / query':>10s}")
    print(f"{'one recommend run per query':34s} {per_single:8.2f} {per_single:10.3f}   (mean of {len(single)} runs)")
    print(f"{'one run over the query file':34s} {batch_s:8.2f} {batch_s / len(queries):10.3f}")
    print(f"same top 10 for the {len(single)} shared queries: {same}; errors: {sum('error' in r for r in records)}")


if __name__ == "__main__":
    main()
