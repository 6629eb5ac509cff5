"""Vector store figures on synthetic clustered collections: build time, RAM, disk, latency, recall.

For each size: the local store with its defaults (exact below ``exact_below`` items, ANN above),
the exact baselines (FAISS flat and a numpy matmul over float32 in RAM), optionally the ANN
alternatives (``--index hnsw,ivf``) and Milvus (Lite, or a server given by ``--milvus URI``).
Latency is per field search (k=100 by default), unfiltered and with a broad (top-level) and a
selective (small leaf) category filter; recall@10 / @100 are against exact search over the same
stored vectors. Ground truth streams the collection in chunks, so the largest size never sits in
RAM twice.

Milvus is measured as a reader sees it: built, flushed (which waits until the server searches
through the HNSW indexes, not its interim index of fresh data), then opened again, so that no
search waits for the builder's own writes (see ``MilvusStore._written``).

    .venv/bin/python benchmarks/store.py --sizes 10000,100000 --fields text=384,image=1280
    .venv/bin/python benchmarks/store.py --sizes 300000 --fields text=384 --no-milvus
    bash scripts/milvus_server.sh run sh -c \
        '.venv/bin/python benchmarks/store.py --no-local --no-exact --milvus "$RECSYS_TEST_MILVUS_URI"'
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from recsys.catalogue.categories import in_category
from recsys.store import open_store
from recsys.store.synthetic import synthetic_arrays, synthetic_collection

SEED = 5
N_CATEGORIES = 200


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def chunks(n: int, fields: dict[str, int]):
    return synthetic_collection(n, fields, N_CATEGORIES, SEED, chunk_size=50_000)


def ground_truth(n, fields, queries, k, filters):
    """Exact top-k ids per field and filter (None = unfiltered), streamed over the chunks."""
    best = {
        (f, c): [(np.full(k, -np.inf, np.float32), np.full(k, -1, np.int64)) for _ in queries[f]]
        for f in fields
        for c in filters
    }
    offset = 0
    for chunk in chunks(n, fields):
        cats = chunk.categories
        for f in fields:
            x = chunk.vectors[f]
            present = np.any(x != 0, axis=1)
            scores = queries[f] @ x.T
            for c in filters:
                ok = present if c is None else present & np.array([in_category(x_, c) for x_ in cats])
                s = np.where(ok[None, :], scores, -np.inf)
                for qi in range(len(queries[f])):
                    old_s, old_i = best[(f, c)][qi]
                    all_s = np.concatenate([old_s, s[qi]])
                    all_i = np.concatenate([old_i, np.arange(offset, offset + len(cats))])
                    top = np.argsort(-all_s, kind="stable")[:k]
                    best[(f, c)][qi] = (all_s[top], all_i[top])
        offset += len(cats)
    width = len(str(max(n - 1, 1)))
    return {
        key: [[f"item{i:0{width}d}" for i in ids[scores > -np.inf]] for scores, ids in v] for key, v in best.items()
    }


def pick_filters(n, fields):
    counts = Counter()
    for chunk in chunks(min(n, 50_000), fields):
        counts.update(chunk.categories)
    leaves = sorted(counts, key=counts.get)
    top = Counter(c.split("/")[0] for c in counts.elements())
    broad = max(top, key=top.get)
    selective = leaves[len(leaves) // 10]
    share = {broad: top[broad] / sum(counts.values()), selective: counts[selective] / sum(counts.values())}
    return broad, selective, share


def measure(store, fields, queries, truth, filters, k):
    """Per field and filter: p50 / p95 latency (ms), recall@10 and recall@k against ``truth``."""
    rows = []
    for f in fields:
        for c in filters:
            times, r10, rk = [], [], []
            for qi, q in enumerate(queries[f]):
                t0 = time.perf_counter()
                hits = store.search(f, q, k, category=c)
                times.append(time.perf_counter() - t0)
                t = truth[(f, c)][qi]
                rk.append(len(set(hits.ids) & set(t)) / max(1, len(t)))
                r10.append(len(set(hits.ids[:10]) & set(t[:10])) / max(1, len(t[:10])))
            rows.append((f, c or "-", pct(times, 50), pct(times, 95), np.mean(r10), np.mean(rk)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--fields", default="text=384,image=1280")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--index", default="hnsw", help="ANN kinds to compare, e.g. hnsw,ivf")
    ap.add_argument("--ef", default="", help="efSearch values to sweep for HNSW, e.g. 64,128,256")
    ap.add_argument("--milvus", default="lite", help="'lite' (a Milvus Lite file) or a server URI")
    ap.add_argument("--milvus-max", type=int, default=100_000, help="largest size run on Milvus")
    ap.add_argument("--no-milvus", action="store_true")
    ap.add_argument("--no-local", action="store_true", help="skip the local store")
    ap.add_argument("--no-exact", action="store_true", help="skip the in-RAM exact baselines")
    ap.add_argument("--dir", default=None, help="where stores are built (default: a temp folder)")
    args = ap.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    fields = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in args.fields.split(",")}
    root = Path(args.dir or tempfile.mkdtemp(prefix="store-bench-"))
    print(
        f"fields {fields}, k={args.k}, {args.queries} queries, {args.threads} threads, {N_CATEGORIES} leaf categories"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        broad, selective, share = pick_filters(n, fields)
        filters = [None, broad, selective]
        queries = {
            f: synthetic_arrays(args.queries, fields, n_categories=N_CATEGORIES, seed=SEED + 1000).vectors[f]
            for f in fields
        }
        t0 = time.perf_counter()
        truth = ground_truth(n, fields, queries, args.k, filters)
        print(
            f"\n== {n:,} items; filters: broad '{broad}' {share[broad]:.1%}, selective '{selective}' "
            f"{share[selective]:.2%} of items; ground truth {time.perf_counter() - t0:.0f} s"
        )
        header = f"{'backend':28} {'field':6} {'filter':10} {'p50 ms':>7} {'p95 ms':>7} {'R@10':>6} {'R@k':>6}"
        configs = [
            (f"local {kind}" + (f" ef={ef}" if ef else ""), {"index": kind, **({"ef_search": int(ef)} if ef else {})})
            for kind in ([] if args.no_local else args.index.split(","))
            for ef in (args.ef.split(",") if args.ef and kind == "hnsw" else [""])
        ]
        if not args.no_exact:
            configs.append(("exact (FAISS flat, RAM)", {"exact_below": 10**12, "dtype": "float32"}))
        built: dict[str, Path] = {}
        for name, options in configs:
            path = root / (f"n{n}-" + "".join(ch for ch in name.split(" ef=")[0] if ch.isalnum()))
            if "ef_search" in options and path in built.values():
                store = open_store(path, **options)
                build_s = rss_d = None
            else:
                shutil.rmtree(path, ignore_errors=True)
                gc.collect()
                rss0 = rss_mb()
                t0 = time.perf_counter()
                store = open_store(path, fields, **options)
                for chunk in chunks(n, fields):
                    store.upsert(chunk.ids, chunk.categories, chunk.vectors)
                store.flush()
                build_s = time.perf_counter() - t0
                rss_d = rss_mb() - rss0
                built[name] = path
            rows = measure(store, fields, queries, truth, filters, args.k)
            kinds = ",".join(sorted(set(store.info()["indexes"].values())))
            extra = f"build {build_s:.1f} s, RSS +{rss_d:.0f} MB, " if build_s is not None else ""
            print(f"{name}: {extra}disk {disk_mb(path):.0f} MB, indexes {kinds}")
            print(header)
            for f, c, p50, p95, r10, r100 in rows:
                print(f"{name:28} {f:6} {c:10} {p50:7.2f} {p95:7.2f} {r10:6.3f} {r100:6.3f}")
            store.close()
            del store
        if not args.no_exact and n <= 200_000:
            print(numpy_exact(n, fields, queries, args.k))
        if not args.no_milvus and n <= args.milvus_max:
            milvus(n, fields, queries, truth, filters, args.k, root, args.milvus)
        shutil.rmtree(root / f"n{n}-milvus.db", ignore_errors=True)


def numpy_exact(n, fields, queries, k):
    lines = []
    for f in fields:
        x = np.concatenate([c.vectors[f] for c in chunks(n, {f: fields[f]})])
        times = []
        for q in queries[f]:
            t0 = time.perf_counter()
            s = x @ q
            top = np.argpartition(-s, k)[:k]
            top[np.argsort(-s[top])]
            times.append(time.perf_counter() - t0)
        lines.append(f"{'exact (numpy matmul, RAM)':28} {f:6} {'-':10} {pct(times, 50):7.2f} {pct(times, 95):7.2f}")
        del x
    return "\n".join(lines)


def milvus(n, fields, queries, truth, filters, k, root, target):
    path = root / f"n{n}-milvus.db"
    if target == "lite":
        shutil.rmtree(path, ignore_errors=True)
        uri, label = f"milvus-lite://{path}", "milvus lite (HNSW)"
    else:
        uri, label = f"{target}?collection=recsys_bench_n{n}", "milvus server (HNSW)"
    t0 = time.perf_counter()
    store = open_store(uri, fields)
    for chunk in chunks(n, fields):
        store.upsert(chunk.ids, chunk.categories, chunk.vectors)
    upsert_s = time.perf_counter() - t0
    store.flush()
    build_s = time.perf_counter() - t0
    version = store._client.get_server_version()
    store.close()
    store = open_store(uri)  # a reader: searches need not wait for the builder's writes
    rows = measure(store, fields, queries, truth, filters, k)
    size = ""
    if target == "lite":
        size = f", disk {disk_mb(path) if path.is_dir() else path.stat().st_size / 2**20:.0f} MB"
    print(
        f"{label} {version}: build {build_s:.1f} s (upsert {upsert_s:.1f} s, flush and index "
        f"{build_s - upsert_s:.1f} s){size}, ef {store.ef_search}, exact below {store.exact_filter_below} filtered rows"
    )
    print(f"{'backend':28} {'field':6} {'filter':10} {'p50 ms':>7} {'p95 ms':>7} {'R@10':>6} {'R@k':>6}")
    for f, c, p50, p95, r10, r100 in rows:
        print(f"{label:28} {f:6} {c:10} {p50:7.2f} {p95:7.2f} {r10:6.3f} {r100:6.3f}")
    if target != "lite":
        store.drop()
    store.close()


if __name__ == "__main__":
    main()
