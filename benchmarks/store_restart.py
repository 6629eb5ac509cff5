"""A large store across restarts and writes: its fast-scan codes and its categories' own lists.

The codes an unfiltered search of a large IVF index picks its candidates with
(:mod:`recsys.store.fastscan`) and the own lists a category's searches walk
(:mod:`recsys.store.partition`) are made in the background when first asked for, and saved beside
the index file they were made from; a write extends copies of them by its own rows. This times,
each step in a fresh process as a restarted server would be, until every field's codes are ready
(searches meanwhile walk the 8-bit codes), then until every top-level category's lists of every
field are (searches meanwhile walk the shared lists):

1. the store's first open, nothing saved: both built (and saved);
2. the next open: both read from beside the index files;
3. a write of ``--rows`` new items, which the store keeps out of its index files (fewer than its
   ``checkpoint_rows``): the codes it dropped extended; the lists, first asked for after the write,
   read and extended by the rows they lack;
4. the open after that write: both read, then extended by the rows the index files lack;
5. an indexing run's write of ``--rows`` more items saved to new index files (``flush``; it never
   searches): the codes saved beside the old files carried over, extended, to the new ones, the
   lists linked beside them;
6. the open after that: the codes read, the lists read and extended.

It works on a copy of the store made of hard links (a store never writes a file in place), so the
store given is left as it was::

    .venv/bin/python benchmarks/store_restart.py /tmp/bench/scale-1000000-kept/store
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.store import fastscan, open_store, partition  # noqa: E402
from recsys.store.ann import wait_for_category_lists  # noqa: E402
from recsys.threads import use_threads  # noqa: E402


def ready(store, rng: np.random.Generator, categories: bool = False) -> float:  # noqa: ANN001
    """Seconds from one search of each field (in each top-level category with ``categories``, else
    unfiltered) until what they asked the background thread for is ready."""
    tops = sorted({name.split("/")[0] for name in store._table.cat_names}) if categories else [None]
    started = time.perf_counter()
    for top in tops:
        for field, dim in store.fields.items():
            store.search(field, rng.standard_normal(dim).astype(np.float32), 10, category=top)
    wait_for_category_lists()
    return time.perf_counter() - started


def step(path: str, rows: int, write: str, conn) -> None:  # noqa: ANN001
    """In a fresh process: open the store, have its codes made, after a write of ``rows`` items
    if ``write`` is "kept" (out of the index files) or, for "saved", write them and save the
    index files as an indexing run does (no search: its codes are those carried over); report the
    seconds and how the codes came about."""
    use_threads("query")
    counts = {"codes built": 0, "read": 0, "extended": 0, "lists built": 0, "lists read": 0}
    made = (("build", "codes built"), ("load", "read"), ("extend", "extended"))
    for module, name, key in [(fastscan, *m) for m in made] + [(partition, "build", "lists built"),
                                                              (partition, "load", "lists read")]:  # fmt: skip
        original = getattr(module, name)

        def counted(*args, original=original, key=key):  # noqa: ANN002, ANN202
            before = args[0].ntotal if key == "extended" else None
            result = original(*args)
            counts[key] += result is not None if before is None else args[0].ntotal != before
            return result

        setattr(module, name, counted)
    rng = np.random.default_rng(0)
    opened = time.perf_counter()
    store = open_store(path, checkpoint_rows=rows if write == "saved" else 10**9)
    opened = time.perf_counter() - opened
    codes = ready(store, rng) if write != "saved" else 0.0
    written = 0.0
    if write:
        vectors = {f: rng.standard_normal((rows, d)).astype(np.float32) for f, d in store.fields.items()}
        counts.update(dict.fromkeys(counts, 0))  # only what the write's codes take
        written = time.perf_counter()
        store.upsert([f"{write}-{i}" for i in range(rows)], [write] * rows, vectors)
        if write == "saved":
            store.flush()
        written = time.perf_counter() - written
        codes = ready(store, rng) if write == "kept" else 0.0
    lists = ready(store, rng, categories=True) if write != "saved" else 0.0
    rows = {f: ix._fast[1].ntotal for f, ix in store._indexes.items() if ix._fast and ix._fast[1] is not None}
    conn.send({"opened_s": opened, "codes_s": codes, "lists_s": lists, "written_s": written, "counts": counts,
               "codes": rows})  # fmt: skip
    os._exit(0)  # no flush: the written rows stay out of the index files, as a small write leaves them


def run_step(ctx, path: Path, rows: int, write: str) -> dict:  # noqa: ANN001
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=step, args=(str(path), rows, write, child))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, help="a local store with large IVF indexes (benchmarks/scale.py --keep)")
    parser.add_argument("--rows", type=int, default=1000, help="items the write adds (default 1000)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the hard-linked copy goes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fast-scan-codes-", dir=args.workdir or args.store.parent))
    copy = work / "store"
    try:
        shutil.copytree(args.store, copy, copy_function=os.link)
        for saved in copy.glob("*.faiss.*-*"):
            saved.unlink()  # what was saved beside the index files: the copy's own, the store given keeps its files
        ctx = multiprocessing.get_context("spawn")
        print(f"{'step':<44} {'open s':>7} {'write s':>8} {'codes ready s':>13} {'lists ready s':>13}  how  "
              "(rows with codes per field)")  # fmt: skip
        steps = (("first open, no codes saved", ""), ("next open", ""),
                 (f"a write of {args.rows:,} items", "kept"), ("open after that write", ""),
                 (f"{args.rows:,} more, saved to new index files", "saved"), ("open after that", ""))  # fmt: skip
        for name, write in steps:
            got = run_step(ctx, copy, args.rows, write)
            how = ", ".join(f"{k} {v}" for k, v in got["counts"].items() if v)
            codes = " / ".join(f"{f} {n:,}" for f, n in got["codes"].items())
            times = f"{got['opened_s']:>7.2f} {got['written_s']:>8.2f} {got['codes_s']:>13.2f} {got['lists_s']:>13.2f}"
            saved = sum(f.stat().st_size for f in copy.glob("*.faiss.*-*")) / 2**20
            print(f"{name:<44} {times}  {how}  ({codes}; {saved:,.0f} MB saved beside the index files)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
