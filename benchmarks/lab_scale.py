"""The lab over a catalogue of many items, seconds and peak memory of each setting in its own process:

- the scoring pass (``recsys.lab.evaluate.score_split``), blocks of users sized by
  ``SCORE_BLOCK_BYTES`` against 512 users a block;
- with ``--features DIM``, the feature-based models' preparation of item features
  (``recsys.lab.training.normalise_features``: centre, PCA to ``--pca`` dims, unit rows) over
  random float32 features, a block of rows at a time against the whole matrix in float64 (the
  code before, kept here);
- with ``--itemknn``, ItemKNN's fit on popularity-skewed interactions (25 a user, 2.5 users an item):
  the item-item cosines and each item's 100 neighbours, chosen among the stored entries (the lab's
  code) against densified blocks of rows (the code before, kept here).

Synthetic interactions (20 training, 2 validation and 3 test items per user, drawn at random)
and a 16-d dot-product model stand in for a dataset and a fitted model: what is measured is the
pass every model's scores go through (permuted for tie-breaking, seen items masked, each segment's
top-K and metrics). Each setting runs in a fresh process, so its peak RSS is its own.

    .venv/bin/python benchmarks/lab_scale.py
    .venv/bin/python benchmarks/lab_scale.py --items 1000000 --users 2000 --fixed-blocks
    .venv/bin/python benchmarks/lab_scale.py --items 1000000 --features 768 --pca 0 64
    .venv/bin/python benchmarks/lab_scale.py --items 50000 200000 --itemknn
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from process_memory import peak_rss_gb  # noqa: E402  (beside this script)

from recsys.lab import training  # noqa: E402
from recsys.lab.base import TrainData  # noqa: E402
from recsys.lab.evaluate import score_split  # noqa: E402
from recsys.lab.protocols import Split  # noqa: E402
from recsys.threads import use_threads  # noqa: E402


class DotModel:
    """Scores as a fitted factor model would: user factors times item factors."""

    name = "dot"

    def __init__(self, n_users: int, n_items: int, rng: np.random.Generator) -> None:
        self.users = rng.standard_normal((n_users, 16)).astype(np.float32)
        self.items = rng.standard_normal((n_items, 16)).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.users[users] @ self.items.T


def synthetic_split(n_users: int, n_items: int, rng: np.random.Generator) -> Split:
    def drawn(per_user: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(n_users), per_user)
        cols = rng.integers(0, n_items, rows.size)
        m = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
        m.data[:] = 1
        return m

    return Split("given", "synthetic", TrainData(drawn(20), drawn(2)), drawn(3), np.ones(n_items, bool))


def one_run(n_items: int, n_users: int, fixed_blocks: bool) -> dict[str, float]:
    """In this process: the scoring pass, its seconds and the process's peak RSS."""
    use_threads("train")
    if fixed_blocks:  # every block 512 users, whatever their scores' size
        training.SCORE_BLOCK_BYTES = 2**62
    rng = np.random.default_rng(0)
    split = synthetic_split(n_users, n_items, rng)
    model = DotModel(n_users, n_items, rng)
    start = time.perf_counter()
    metrics, _, _ = score_split(model, split, (10, 20), None)
    return {
        "seconds": time.perf_counter() - start,
        "peak_gb": peak_rss_gb(),
        "users_per_block": training.block_rows(n_items, 512),
        "coverage@10": metrics["all"]["coverage@10"],
    }


def whole_matrix(features: dict[str, np.ndarray], max_dim: int | None, seed: int = 0) -> list[np.ndarray]:
    """``normalise_features`` before: the whole matrix in float64, PCA by a full SVD."""
    out = []
    for name in sorted(features):
        x = np.asarray(features[name], dtype=np.float64)
        x = x - x.mean(axis=0, keepdims=True)
        if max_dim is not None and x.shape[1] > max_dim:
            from sklearn.decomposition import PCA

            x = PCA(n_components=max_dim, svd_solver="full", random_state=seed).fit_transform(x)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        out.append((x / np.maximum(norms, 1e-12)).astype(np.float32))
    return out


def features_run(n_items: int, dim: int, pca: int, before: bool) -> dict[str, float]:
    """In this process: one modality's features prepared, its seconds and the process's peak RSS."""
    use_threads("train")
    rng = np.random.default_rng(0)
    features = {"f": rng.standard_normal((n_items, dim), dtype=np.float32)}
    start = time.perf_counter()
    max_dim = pca or None
    out = whole_matrix(features, max_dim) if before else training.normalise_features(features, n_items, max_dim)[1]
    return {
        "seconds": time.perf_counter() - start,
        "peak_gb": peak_rss_gb(),
        "input_gb": features["f"].nbytes / 1e9,
        "width": out[0].shape[1],
    }


def dense_block_prune(sim: sp.csr_matrix, k: int, block: int = 1024) -> sp.csr_matrix:
    """ItemKNN's neighbours before: each block of rows densified and partitioned over every item."""
    n = sim.shape[0]
    if k >= n:
        return sim.tocsr()
    block = training.block_rows(n, block)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        dense = sim[start : start + block].toarray()
        idx = np.argpartition(-dense, k - 1, axis=1)[:, :k]
        v = np.take_along_axis(dense, idx, axis=1)
        r = np.repeat(np.arange(start, start + dense.shape[0]), k)
        keep = v.ravel() > 0
        rows.append(r[keep])
        cols.append(idx.ravel()[keep])
        vals.append(v.ravel()[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=sim.shape)


def itemknn_run(n_items: int, before: bool) -> dict[str, float]:
    """In this process: one ItemKNN fit, its seconds, the pruning's and the process's peak RSS."""
    from graph_training import synthetic_data

    from recsys.lab.models import itemknn

    use_threads("train")
    data = synthetic_data(n_users=n_items // 2, n_items=n_items, per_user=25)
    pruned = {}
    prune = dense_block_prune if before else itemknn.prune_top_k

    def timed(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
        start = time.perf_counter()
        out = prune(sim, k)
        pruned.update(seconds=time.perf_counter() - start, similarities=sim.nnz, kept=out.nnz)
        return out

    itemknn.prune_top_k = timed
    start = time.perf_counter()
    itemknn.ItemKNN().fit(data)
    return {
        "seconds": time.perf_counter() - start,
        "prune_seconds": pruned["seconds"],
        "similarities": pruned["similarities"],
        "kept": pruned["kept"],
        "peak_gb": peak_rss_gb(),
    }


def child_json(*args: str) -> dict[str, float] | None:
    """The figures a child run of this script printed; None when the system killed it (out of memory)."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode < 0:
        return None
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def before_and_after(row: str, codes: tuple[str, str], child: list[str], cells: Callable[[dict], str]) -> None:
    """Two child runs, the code before then the lab's (``child`` plus "1" / "0"), a printed row each."""
    for before, code in zip((True, False), codes, strict=True):
        out = child_json(*child, "1" if before else "0")
        figures = "killed by the system (out of memory)" if out is None else cells(out)
        print(f"{row} {code:>15} {figures}", flush=True)


def main_features(args: argparse.Namespace) -> None:
    print(f"normalise_features of one modality, {args.features}-d float32, each run in its own process")
    print(f"{'items':>10} {'pca':>5} {'code':>15} {'seconds':>8} {'peak RSS GB':>12} {'input GB':>9}")
    for n_items in args.items:
        for pca in args.pca:
            before_and_after(
                f"{n_items:>10,} {pca or '-':>5}",
                ("whole (before)", "blocks"),
                ["--features-child", str(n_items), str(args.features), str(pca)],
                lambda out: f"{out['seconds']:>8.1f} {out['peak_gb']:>12.2f} {out['input_gb']:>9.2f}",
            )


def main_itemknn(args: argparse.Namespace) -> None:
    print("ItemKNN fit (k 100), each run in its own process; 'kept' counts the neighbours chosen")
    head = f"{'items':>10} {'neighbours':>15} {'fit s':>8} {'prune s':>8} {'similarities':>13} {'kept':>11}"
    print(f"{head} {'peak GB':>8}")
    for n_items in args.items:
        before_and_after(
            f"{n_items:>10,}",
            ("dense (before)", "stored entries"),
            ["--itemknn-child", str(n_items)],
            lambda out: f"{out['seconds']:>8.1f} {out['prune_seconds']:>8.1f} {out['similarities']:>13,} "
            f"{out['kept']:>11,} {out['peak_gb']:>8.2f}",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--users", type=int, default=1200, help="test users (all of them have test items)")
    parser.add_argument("--fixed-blocks", action="store_true", help="also run with 512 users a block")
    parser.add_argument("--features", type=int, help="time normalise_features over features this wide instead")
    parser.add_argument("--pca", type=int, nargs="+", default=[0, 64], help="with --features: PCA dims (0: none)")
    parser.add_argument("--itemknn", action="store_true", help="time ItemKNN's fit over --items items instead")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--itemknn-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--features-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n_items, n_users, fixed = int(args.child[0]), int(args.child[1]), args.child[2] == "1"
        print(json.dumps(one_run(n_items, n_users, fixed)))
        return 0
    if args.features_child:
        n_items, dim, pca, before = args.features_child
        print(json.dumps(features_run(int(n_items), int(dim), int(pca), before == "1")))
        return 0
    if args.itemknn_child:
        print(json.dumps(itemknn_run(int(args.itemknn_child[0]), args.itemknn_child[1] == "1")))
        return 0
    if args.features:
        main_features(args)
        return 0
    if args.itemknn:
        main_itemknn(args)
        return 0
    print(f"{args.users:,} test users; seconds and peak RSS of the scoring pass, each run in its own process")
    print(f"{'items':>10} {'blocks':>22} {'seconds':>8} {'peak RSS GB':>12} {'coverage@10':>12}")
    for n_items in args.items:
        for fixed in (False, True) if args.fixed_blocks else (False,):
            out = child_json("--child", str(n_items), str(args.users), "1" if fixed else "0")
            if out is None:
                print(f"{n_items:>10,} {'(fixed)' if fixed else '(by bytes)':>22} killed by the system (out of memory)")
                continue
            blocks = f"{out['users_per_block']} users" + (" (fixed)" if fixed else " (by bytes)")
            cells = f"{out['seconds']:>8.1f} {out['peak_gb']:>12.2f} {out['coverage@10']:>12.6f}"
            print(f"{n_items:>10,} {blocks:>22} {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
