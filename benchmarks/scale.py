"""Scale: fused search on 10k-1M items through the engine, beside exact search; encoding; the map.
10M items (82 GB of exact float32 vectors) do not fit this machine: each figure is extrapolated
there on a power law through the two largest sizes measured.

    .venv/bin/python benchmarks/scale.py                          # 10k, 100k, 1M + encoding + map
    .venv/bin/python benchmarks/scale.py --sizes 10000 100000 --no-encoding --no-map
    bash scripts/milvus_server.sh run sh -c '.venv/bin/python benchmarks/scale.py --sizes 100000 \
        --no-encoding --no-map --store "$RECSYS_TEST_MILVUS_URI"'     # the engine on a Milvus server

Per size, synthetic items (vectors drawn from a mixture fitted to the demo catalogue's real
embeddings, see :mod:`recsys.store.synthetic`; a category tree) fill three fields as the real
pipeline does: ``text`` (384-d), ``image`` (1280-d native) and ``image@shared`` (384-d). The
engine's vectors sit in memory-mapped files: float32 for the exact reference, and for serving in
the precision the product's engine keeps them (float16 past 20k items,
:func:`recsys.recommend.engine.item_dtype`); the embedded vector store (default options) is built from
the same chunks. Then held-out items serve as fused text+image queries with
weights (text 1, image 0.5), each with a top-level category filter, with a leaf category filter
(the tree's last level) and without a filter, answered by

- the engine on the store (candidates per pair, exact re-scoring): p50 / p95 latency over
  ``--passes`` (3) passes of the queries, the nine cases taking turns in each, recall@10 against
  exact, and the memory of a fresh process (its files read once into the OS page cache
  first and the served vectors' pages mapped into it, as on a server that has been up) that opens
  the store and answers the queries
  (peak RSS, which counts the memory-mapped vectors it touched, and resident anonymous memory);
- the engine's exact path (numpy over every float32 vector): the same queries, the reference ranking.

With ``--store URI`` the engine searches a Milvus store (a server, or Milvus Lite) built from the
same vectors, with the embedded store's joint projection, instead of the embedded one.

The encoding and map figures come from ``benchmarks/encoding.py`` and ``benchmarks/map.py``, run
in the same invocation so every figure is from one machine state.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from process_memory import anon_rss_mb, peak_rss_mb  # noqa: E402  (beside this script)

from recsys.catalogue import Catalogue, Item  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.recommend.catalogue_store import UPSERT_CHUNK  # noqa: E402
from recsys.recommend.engine import ModalityIndex, RecommendationEngine, item_dtype  # noqa: E402
from recsys.recommend.query import QueryVectors  # noqa: E402
from recsys.store import open_store  # noqa: E402
from recsys.store.ann import wait_for_category_lists  # noqa: E402
from recsys.store.joint import JOINT_FIELD, JointProjection  # noqa: E402
from recsys.store.segments import random_access  # noqa: E402
from recsys.store.synthetic import FieldStats, fit_field_stats, random_field_stats, synthetic_collection  # noqa: E402
from recsys.threads import use_threads  # noqa: E402

FIELDS = {"text": 384, "image": 1280, "image@shared": 384}
WEIGHTS = {"text": 1.0, "image": 0.5}
STRATEGIES = ("early", "late", "rrf")
#: Every query is answered with its top-level category filter, with its leaf category filter (a
#: category of the tree's last level, as a shop's "shoes/trainers") and without any filter.
FILTERS = ("category", "leaf", "none")
CASES = tuple(f"{s}|{f}" for f in FILTERS for s in STRATEGIES)


def filtered(queries: list[tuple], case: str) -> list[tuple]:
    """The queries as ``case`` asks them: (query, filter) with its top-level category, its leaf
    category or no filter."""
    kind = case.split("|")[1]
    return [(q, {"category": top, "leaf": leaf}.get(kind)) for q, top, leaf in queries]


def demo_stats(components: int) -> dict[str, FieldStats]:
    """Mixtures fitted to the demo catalogue's real vectors (cached embeddings; built if missing)."""
    from recsys.pipeline import load_engine

    engine = load_engine(ROOT / "data" / "tuxpaint")
    image = engine.indexes["image"]
    real = {
        "text": engine.indexes["text"].native,
        "image": image.native[image.present],
        "image@shared": image.shared[image.present],
    }
    return {f: fit_field_stats(v, n_components=components, seed=1) for f, v in real.items()}


def build(n: int, work: Path, stats: dict[str, FieldStats], n_categories: int) -> dict[str, float]:
    """Write the engine's memory-mapped vectors, then build the embedded store from them. Returns
    build figures."""
    arrays = {f: np.lib.format.open_memmap(work / f"{f}.npy", "w+", np.float32, (n, d)) for f, d in FIELDS.items()}
    ids, cats = [], []
    for chunk in synthetic_collection(n, FIELDS, n_categories, seed=7, stats=stats, chunk_size=50_000):
        a = len(ids)
        for f in FIELDS:
            arrays[f][a : a + len(chunk.ids)] = chunk.vectors[f]
        ids += chunk.ids
        cats += chunk.categories
    for arr in arrays.values():
        arr.flush()
    (work / "items.json").write_text(json.dumps({"ids": ids, "categories": cats}))
    vectors_mb = sum(disk_mb(work / f"{f}.npy") for f in FIELDS)
    return {**build_store(str(work / "store"), work, local=True), "vectors_disk_mb": vectors_mb}


def build_store(uri: str, work: Path, local: bool) -> dict[str, float]:
    """Build the store at ``uri`` from the vectors in ``work`` as the product does
    (:func:`recsys.recommend.catalogue_store.attach_store`): a joint projection fitted on a sample, every
    field plus the joint one upserted in chunks. A Milvus store takes the embedded one's joint
    projection (the engine has one), and a collection of its name is dropped first."""
    arrays = {f: np.load(work / f"{f}.npy", mmap_mode="r") for f in FIELDS}
    meta = json.loads((work / "items.json").read_text())
    ids, cats, n = meta["ids"], meta["categories"], len(meta["ids"])
    started = time.perf_counter()
    if local:
        joint = JointProjection.fit(arrays)
        joint.save(work / "joint.npz")
    else:
        joint = JointProjection.load(work / "joint.npz")
        with contextlib.suppress(RecsysError):  # RecsysError: no such collection yet
            old = open_store(uri)
            old.drop()
            old.close()
    store = open_store(uri, {**FIELDS, JOINT_FIELD: joint.dims})
    for a in range(0, n, UPSERT_CHUNK):  # sync_store's chunks: an index's size follows the steps it grew by
        rows = np.arange(a, min(n, a + UPSERT_CHUNK))
        chunk = {f: np.asarray(arrays[f][rows]) for f in FIELDS}
        store.upsert(ids[a : a + len(rows)], cats[a : a + len(rows)], {**chunk, JOINT_FIELD: joint.items(chunk)})
    store.flush()
    store_s = time.perf_counter() - started
    store.close()
    return {"store_build_s": store_s, "store_disk_mb": disk_mb(Path(uri)) if local else float("nan")}


def store_uri(target: str, work: Path, n: int) -> str:
    """The store the engine searches: the embedded one in ``work``, or ``target`` (a Milvus URI) with
    a collection of its own per size unless it names one."""
    if not target:
        return str(work / "store")
    return target if "collection=" in target else f"{target}{'&' if '?' in target else '?'}collection=recsys_scale_{n}"


def served_vectors(work: Path, n: int) -> dict[str, Path]:
    """The vector files the serving engine maps: the vectors in the precision the product's engine
    keeps for ``n`` items (:func:`recsys.recommend.engine.item_dtype`, float16 past 20k items), written
    once from the float32 reference files in chunks; float32 ones are the reference files."""
    dtype = np.dtype(item_dtype(n))
    out = {}
    for f in FIELDS:
        source = work / f"{f}.npy"
        if dtype == np.float32:
            out[f] = source
            continue
        out[f] = target = work / f"{f}.{dtype.name}.npy"
        if not target.is_file():
            full = np.load(source, mmap_mode="r")
            tmp = target.with_suffix(".tmp.npy")
            half = np.lib.format.open_memmap(tmp, "w+", dtype, full.shape)
            for a in range(0, len(full), 50_000):
                half[a : a + 50_000] = full[a : a + 50_000]
            half.flush()
            del half
            os.replace(tmp, target)
    return out


def engine_for(work: Path, served: bool = False) -> RecommendationEngine:
    """The production engine over the memory-mapped vectors (no encoders: queries come as vectors):
    the float32 reference vectors, or with ``served`` those the product's engine would keep."""
    meta = json.loads((work / "items.json").read_text())
    items = [Item(i, i, "", c, None, None) for i, c in zip(meta["ids"], meta["categories"], strict=True)]
    catalogue = Catalogue(work, items, [], fingerprint="synthetic")
    files = served_vectors(work, len(items)) if served else {f: work / f"{f}.npy" for f in FIELDS}
    vec = {f: random_access(np.load(path, mmap_mode="r")) for f, path in files.items()}
    present = np.ones(len(items), dtype=bool)
    indexes = {
        "text": ModalityIndex("text", None, vec["text"], present, "text", shared=vec["text"]),
        "image": ModalityIndex("image", None, vec["image"], present, "image", shared=vec["image@shared"]),
    }
    return RecommendationEngine(catalogue, None, indexes, search="exact")


def make_queries(n_queries: int, stats: dict[str, FieldStats], categories: list[str], seed: int = 99) -> list[tuple]:
    """Held-out items (another seed) as text+image queries, each with a top-level category and a
    leaf category to filter by, both drawn at random, independent of the query (the hard case):
    (query, top-level category, leaf category). Store options are tuned on other seeds (validation
    queries), never on the benchmark's."""
    chunk = next(synthetic_collection(n_queries, FIELDS, 50, seed=seed, stats=stats, chunk_size=n_queries))
    tops = sorted({c.split("/")[0] for c in categories})
    leaves = sorted(set(categories))
    rng, leaf_rng = np.random.default_rng(seed + 3), np.random.default_rng(seed + 5)
    out = []
    for i in range(n_queries):
        q = QueryVectors(
            native={"text": chunk.vectors["text"][i], "image": chunk.vectors["image"][i]},
            shared={"text": chunk.vectors["text"][i], "image": chunk.vectors["image@shared"][i]},
        )
        out.append((q, str(rng.choice(tops)), str(leaf_rng.choice(leaves))))
    return out


def answer(engine: RecommendationEngine, queries: list[tuple], strategy: str, k: int) -> tuple[list, list]:
    ids, times = [], []
    for q, category in queries:
        started = time.perf_counter()
        res = engine.recommend_vectors(q, weights=WEIGHTS, strategy=strategy, k=k, category=category)
        times.append(time.perf_counter() - started)
        ids.append([r.item.id for r in res])
    return ids, times


MADV_POPULATE_READ = 22  # Linux >= 5.14; Python's mmap module does not name it


def map_pages(array: np.ndarray) -> None:
    """Map every page of a memory-mapped array into this process from the page cache, as a server
    that has been up has done by touching them: a fresh process otherwise takes a page fault on
    each candidate row it first re-scores (about a thousand a query at 1M items)."""
    mm = getattr(array, "_mmap", None)
    if mm is not None:
        try:
            mm.madvise(MADV_POPULATE_READ)
            return
        except (OSError, ValueError):  # an older kernel: touch one value per page instead
            pass
    flat = array.reshape(-1)
    float(np.asarray(flat[:: max(1, 4096 // array.itemsize)]).sum())


#: Seed of the warm-up queries: neither the benchmark's (99) nor the validation queries store options
#: were tuned on (77).
WARMUP_SEED = 2026


def serve(
    work: str, uri: str, n_queries: int, stats_file: str, k: int, candidates: int, warmup: int, passes: int, conn
) -> None:
    """In a fresh process: open the store, answer the queries on it ``passes`` times, report latency
    (over every pass) and peak RAM."""
    use_threads("query")
    before = peak_rss_mb()
    engine = engine_for(Path(work), served=True)
    mapped = time.perf_counter()
    arrays = {id(a): a for ix in engine.indexes.values() for a in (ix.native, ix.shared) if a is not None}
    for array in arrays.values():
        map_pages(array)
    mapped = time.perf_counter() - mapped
    stats = _load_stats(stats_file)
    queries = make_queries(n_queries, stats, [it.category for it in engine.catalogue.items])
    opened = time.perf_counter()
    engine.store, engine.search, engine.candidates = open_store(uri), "ann", candidates
    opened = time.perf_counter() - opened
    opened_anon = anon_rss_mb()
    engine.joint = JointProjection.load(Path(work) / "joint.npz")
    out = {}
    # Warm, as a server that has answered queries for a while: page in the index and the vectors a
    # search touches, build each category's row bitmap and rank sample once, and let the allocator's
    # heaps grow to what queries need. A fresh process takes a page fault on each new page of a
    # growing heap, ~16 us each in this host's VM: 600-800 of them made the odd query 10-16 ms.
    categories = [it.category for it in engine.catalogue.items]
    warm = make_queries(warmup, stats, categories, seed=WARMUP_SEED) if warmup > 0 else []
    first_per_category = list({category: query for query in reversed(queries) for category in query[1:]}.values())
    for settle in (False, True):
        for case in CASES:
            answer(engine, filtered(warm + queries[:5] + first_per_category, case), case.split("|")[0], k)
        if not settle:
            # as a server up a while has them: the warm-up asked for them. The fast-scan codes take
            # ~45 s of one core at 1M items (~1 s once saved beside the index files by an earlier
            # run), and the first queries after them ran slow (a filtered
            # query's p95 16-23 ms in the first pass, 7.4-13.8 in the next two): warm up again.
            wait_for_category_lists()
    # Each pass answers every case's queries, the cases taking turns: a slow spell of a shared host
    # falls on every case alike instead of on whichever ran in it, and the percentiles rest on
    # `passes` times as many answers (the ranking is the same each pass: the first one's is kept).
    for _ in range(passes):
        for case in CASES:
            ids, times = answer(engine, filtered(queries, case), case.split("|")[0], k)
            out.setdefault(case, (ids, []))[1].extend(times)
    conn.send({"results": out, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before, "anon_mb": anon_rss_mb(),
               "mapped_s": mapped, "opened_s": opened, "opened_anon_mb": opened_anon})  # fmt: skip


def page_in(work: Path, vectors: list[Path], local_store: bool = True) -> tuple[float, float]:
    """Read every file of the store and the served vectors once, so the fresh serving process finds
    them in the OS page cache as a server that has been up would (a cold cache after other jobs made
    a 1M-item search 10-20x slower: every candidate row was a disk read). Returns (MB, seconds)."""
    started, total = time.perf_counter(), 0
    buffer = bytearray(16 * 2**20)
    store_files = [p for p in (work / "store").rglob("*") if p.is_file() and p.suffix != ".json"] if local_store else []
    store_files.sort()
    for path in [*store_files, *vectors]:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buffer):
                total += n
    return total / 2**20, time.perf_counter() - started


def exact(work: Path, n_queries: int, stats: dict[str, FieldStats], k: int, cases: list[str]) -> dict[str, tuple]:
    use_threads("query")
    engine = engine_for(work)
    queries = make_queries(n_queries, stats, [it.category for it in engine.catalogue.items])
    return {case: answer(engine, filtered(queries, case), case.split("|")[0], k) for case in cases}


def exact_reference(work: Path, args: argparse.Namespace, stats: dict[str, FieldStats]) -> dict[str, tuple]:
    """The exact answers (and their timings); with --keep, saved beside the kept store and reused
    while the queries are the same (the exhaustive path takes minutes at 1M items)."""
    saved = work / f"exact-{args.queries}-{args.k}.json"
    truth = {}
    if args.keep and saved.is_file():
        truth = {case: tuple(v) for case, v in json.loads(saved.read_text()).items() if case in CASES}
    missing = [case for case in CASES if case not in truth]  # cases added since it was saved
    if missing:
        truth.update(exact(work, args.queries, stats, args.k, missing))
        if args.keep:
            saved.write_text(json.dumps(truth))
    return truth


def disk_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _save_stats(stats: dict[str, FieldStats], path: Path) -> None:
    arrays = {f"{f}|{name}": getattr(st, name) for f, st in stats.items() for name in FieldStats.__dataclass_fields__}
    np.savez(path, **arrays)


def _load_stats(path: str) -> dict[str, FieldStats]:
    with np.load(path) as data:
        parts: dict[str, dict] = {}
        for key in data.files:
            f, name = key.split("|")
            parts.setdefault(f, {})[name] = data[key]
    return {f: FieldStats(**p) for f, p in parts.items()}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def recall(got: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(g) & set(t)) / max(1, len(t)) for g, t in zip(got, truth, strict=True)]))


def power_law(n1: float, v1: float, n2: float, v2: float, target: float) -> tuple[float, float]:
    """(value at ``target``, exponent) of the power law through (n1, v1) and (n2, v2)."""
    if min(n1, n2, v1, v2) <= 0 or n1 == n2:
        return float("nan"), float("nan")
    exponent = float(np.log(v2 / v1) / np.log(n2 / n1))
    return v2 * (target / n2) ** exponent, exponent


def print_extrapolation(rows: dict[int, dict[str, float]], target: int) -> None:
    """Each figure at ``target`` items on a power law through the two largest sizes measured (the
    smallest ones are searched exactly and dominated by fixed costs), with its exponent."""
    if len(rows) < 2 or target <= max(rows):
        return
    n1, n2 = sorted(rows)[-2:]
    print(f"\nextrapolated to {target:,} items (power law through {n1:,} and {n2:,}; exponent in brackets):")
    for name, v2 in rows[n2].items():
        value, exponent = power_law(n1, rows[n1][name], n2, v2, target)
        print(f"  {name:<22} {value:>12,.1f}  ({exponent:+.2f})")


def run_search(args: argparse.Namespace) -> None:
    if args.stats == "demo":
        stats = demo_stats(args.components)
    else:
        stats = {f: random_field_stats(d, seed=i) for i, (f, d) in enumerate(FIELDS.items())}
    print(f"search: fields {FIELDS} + a joint field, weights {WEIGHTS}, k={args.k}, {args.queries} queries each "
          f"with a top-level category filter, a leaf category filter and without, timed over {args.passes} "
          f"passes (the cases taking turns), {args.candidates} candidates per pair (rrf), vectors: {args.stats} "
          "statistics")  # fmt: skip
    header = (f"{'items':>9} {'strategy':>8} {'filter':>8} {'store p50':>9} {'p95 ms':>7} {'exact p50':>9} "
              f"{'p95 ms':>7} {'recall@10':>9} {'build s':>8} {'store MB':>8} {'peak RSS MB':>11} "
              f"{'anon MB':>8}")  # fmt: skip
    print(header)
    ctx = multiprocessing.get_context("spawn")
    measured: dict[int, dict[str, float]] = {}
    for n in args.sizes:
        kept = Path(args.workdir or tempfile.gettempdir()) / f"scale-{n}-kept"
        reuse = args.keep and (kept / "built.json").is_file()
        if args.keep and not reuse:
            shutil.rmtree(kept, ignore_errors=True)  # an interrupted build is started again
            kept.mkdir(parents=True)
        work = kept if args.keep else Path(tempfile.mkdtemp(prefix=f"scale-{n}-", dir=args.workdir))
        stats_file = work / "stats.npz"
        try:
            if reuse:
                built = json.loads((work / "built.json").read_text())
                stats = _load_stats(str(stats_file))
                print(f"{'':>9} reusing the store built in {work} ({built['store_build_s']:.0f} s)", flush=True)
            else:
                built = build(n, work, stats, args.categories)
                _save_stats(stats, stats_file)
                (work / "built.json").write_text(json.dumps(built))
            uri = store_uri(args.store, work, n)
            if args.store:
                on = build_store(uri, work, local=False)
                print(f"{'':>9} built the store at {uri} in {on['store_build_s']:.0f} s", flush=True)
                built = {**built, **on}
            served = served_vectors(work, n)
            paged_mb, paged_s = page_in(work, list(served.values()), not args.store)
            print(f"{'':>9} paged in {paged_mb:,.0f} MB of store and served vectors in {paged_s:.1f} s", flush=True)
            parent, child = ctx.Pipe()
            job = (str(work), uri, args.queries, str(stats_file), args.k, args.candidates, args.warmup, args.passes,
                   child)  # fmt: skip
            proc = ctx.Process(target=serve, args=job)
            proc.start()
            answered = parent.recv()
            proc.join()
            truth = exact_reference(work, args, stats)
            for case in CASES:
                got, t_store = answered["results"][case]
                want, t_exact = truth[case]
                print(f"{n:>9,} {case.replace('|', ' '):>17} {pct(t_store, 50):>9.2f} {pct(t_store, 95):>7.2f} "
                      f"{pct(t_exact, 50):>9.1f} {pct(t_exact, 95):>7.1f} {recall(got, want):>9.3f} "
                      f"{built['store_build_s']:>8.1f} {built['store_disk_mb']:>8.0f} {answered['peak_rss_mb']:>11.0f} "
                      f"{answered['anon_mb']:>8.0f}", flush=True)  # fmt: skip
            served_mb = sum(disk_mb(p) for p in served.values())
            print(f"{'':>9} engine vectors on disk: float32 reference {built['vectors_disk_mb']:.0f} MB, served "
                  f"({np.dtype(item_dtype(n)).name}) {served_mb:.0f} MB, mapped into the serving process in "
                  f"{answered['mapped_s']:.1f} s; store opened in {answered['opened_s']:.2f} s (anonymous memory "
                  f"{answered['opened_anon_mb']:.0f} MB after it)", flush=True)  # fmt: skip
            measured[n] = {
                "store build s": built["store_build_s"],
                "store MB": built["store_disk_mb"],
                "exact vectors MB": built["vectors_disk_mb"],
                "served vectors MB": served_mb,
                "anon MB": answered["anon_mb"],
                **{f"{c.replace('|', ' ')} p{q} ms": pct(answered["results"][c][1], q)
                   for c in CASES for q in (50, 95)},  # fmt: skip
            }
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    print_extrapolation(measured, args.extrapolate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200, help="queries of another seed answered before timing")
    parser.add_argument("--passes", type=int, default=3, help="times each case's queries are answered and timed")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=100, help="candidates per (query, item) modality pair")
    parser.add_argument("--categories", type=int, default=400, help="leaf categories of the synthetic tree")
    parser.add_argument("--stats", choices=("demo", "random"), default="demo")
    parser.add_argument("--components", type=int, default=32, help="mixture components fitted to the demo vectors")
    parser.add_argument("--workdir", default=None, help="where the stores are built (default: the temp dir)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each size's store in WORKDIR/scale-N-kept and reuse it on the next run")  # fmt: skip
    parser.add_argument("--extrapolate", type=int, default=10_000_000,
                        help="also print each figure at this many items, from the two largest sizes")  # fmt: skip
    parser.add_argument("--store", default="",
                        help="search a Milvus store (http://HOST:19530, milvus-lite://FILE.db) built from the "
                             "same vectors (collection recsys_scale_N unless the URI names one), not the embedded one")
    parser.add_argument("--no-encoding", action="store_true")
    parser.add_argument("--no-map", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPU cores; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    run_search(args)
    for flag, script, extra in (
        # 1.5k items per encoder: with a few hundred, starting the decode worker process is a tenth
        # of an image pass on 2 cores (EfficientNet-Lite0 0.83x its raw forward at 128 items, 1.01 at 1,536)
        (args.no_encoding, "encoding.py", ["--n", "512", "--copies", "3"]),
        (args.no_map, "map.py", ["--sizes", "100000", "--warm-up"]),
    ):
        if not flag:
            print(f"\n== benchmarks/{script} {' '.join(extra)}", flush=True)
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *extra], check=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
