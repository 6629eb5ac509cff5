"""Every item's nearest items (FREEDOM / LATTICE's kNN item graphs) over many items: seconds of
numpy's chunked product + argpartition (the code before ``recsys.lab.neighbours``), FAISS's exact
search, and the IVF search used past ``EXACT_UP_TO`` items, with the IVF search's recall@k
against the exact neighbours, all in one run on the same vectors.

Vectors are clustered unit rows from ``recsys.store.synthetic`` (random mixture statistics, or
fitted to a real feature matrix with ``--like FILE.npy``). Where a full pass would take too long
(``--full-up-to``), the numpy and exact seconds are estimated from ``--sample`` rows' searches,
scaled to every row (marked ``~``); recall is always measured on the sample.

    .venv/bin/python benchmarks/item_graph.py
    .venv/bin/python benchmarks/item_graph.py --items 100000 1000000 --dims 64
    .venv/bin/python benchmarks/item_graph.py --items 100000 --like ../shared/datasets/lfm2k/vggish.npy --nprobe 16 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.lab import neighbours  # noqa: E402
from recsys.lab.training import block_rows  # noqa: E402
from recsys.store.synthetic import fit_field_stats, synthetic_collection  # noqa: E402
from recsys.threads import thread_count, use_threads  # noqa: E402


def argpartition_rows(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The code before: each chunk of rows' products with every item (2,048 rows, fewer where their
    scores would pass ``SCORE_BLOCK_BYTES``), then ``argpartition``."""
    out = []
    chunk = block_rows(len(x), 2048)
    for start in range(0, len(rows), chunk):
        sims = x[rows[start : start + chunk]] @ x.T
        out.append(np.argpartition(-sims, k - 1, axis=1)[:, :k])
    return np.concatenate(out)


def exact_rows(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index.search(x[rows], k)[1]


def timed(fn, *args) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def vectors(n: int, dim: int, like: Path | None) -> np.ndarray:
    stats = {"f": fit_field_stats(np.load(like), n_components=16)} if like else None
    chunks = synthetic_collection(n, {"f": dim}, seed=7, stats=stats, chunk_size=100_000)
    return np.concatenate([c.vectors["f"] for c in chunks])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 384])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--like", type=Path, help="a .npy feature matrix to draw vectors like (sets the dim)")
    parser.add_argument("--sample", type=int, default=2000, help="rows for recall and for estimates")
    parser.add_argument("--full-up-to", type=int, default=20_000, help="items up to which numpy and exact run whole")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[neighbours.NPROBE], help="IVF lists probed")
    args = parser.parse_args()
    use_threads("train")  # the role lab fits build their graphs in
    dims = [np.load(args.like, mmap_mode="r").shape[1]] if args.like else args.dims
    print(f"k={args.k}, {thread_count('train')} train thread(s), IVF: 4 sqrt(n) lists")
    print(f"{'items':>10} {'dim':>5} {'numpy s':>10} {'exact s':>10} {'nprobe':>7} {'IVF s':>8} {'recall@k':>9}")
    for n in args.items:
        for dim in dims:
            x = vectors(n, dim, args.like)
            sample = np.sort(np.random.default_rng(0).choice(n, min(n, args.sample), replace=False))
            whole = n <= args.full_up_to
            rows = np.arange(n) if whole else sample
            scale = 1.0 if whole else n / len(sample)
            numpy_s, _ = timed(argpartition_rows, x, rows, args.k)
            exact_s, exact = timed(exact_rows, x, rows, args.k)
            mark = "" if whole else "~"
            before = f"{mark + f'{numpy_s * scale:.1f}':>10} {mark + f'{exact_s * scale:.1f}':>10}"
            for nprobe in args.nprobe:
                neighbours.NPROBE = nprobe
                ivf_s, ivf = timed(neighbours.nearest_items, x, args.k, False)
                recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(exact, ivf[rows], strict=True)])
                print(f"{n:>10,} {dim:>5} {before} {nprobe:>7} {ivf_s:>8.1f} {recall:>9.4f}", flush=True)
                before = f"{'':>10} {'':>10}"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
