"""The lab's graph models (LightGCN, FREEDOM, LATTICE) on many interactions: seconds per training epoch.

Each of these propagates embeddings over the whole user-item graph for every mini-batch (as the
papers and their reference code do), so an epoch costs (interactions / batch) sparse products
over every edge, forward and backward. This times a few epochs of each model's own ``fit`` on
synthetic interactions (users with a popularity-skewed list of items; two 64-d feature modalities
for the multimodal models), each setting in a fresh process on the lab's training threads, with
the graphs built three ways:

- ``coo``: torch sparse COO tensors, torch's backward (the code before, kept here);
- ``csr``: torch sparse CSR tensors, torch's backward;
- ``graph``: :class:`recsys.lab.propagation.SparseGraph` (the lab's code): CSR, its transpose kept
  for the backward.

    .venv/bin/python benchmarks/graph_training.py
    .venv/bin/python benchmarks/graph_training.py --users 50000 --items 100000 --models lightgcn --graphs graph
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from process_memory import peak_rss_gb  # noqa: E402  (beside this script)

from recsys.lab.base import TrainData  # noqa: E402
from recsys.lab.models import freedom, lattice, lightgcn  # noqa: E402
from recsys.threads import use_threads  # noqa: E402

MODELS = {"lightgcn": lightgcn.LightGCN, "freedom": freedom.Freedom, "lattice": lattice.Lattice}


def torch_tensor(layout: str) -> Callable[..., object]:
    """Graphs as plain torch sparse tensors of ``layout`` (``coo`` or ``csr``), built as the lab built them before."""

    def build(matrix: sp.spmatrix, device: object = "cpu") -> object:
        import torch

        coo = matrix.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float32))
        tensor = torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=False).coalesce()
        return (tensor if layout == "coo" else tensor.to_sparse_csr()).to(device)

    return build


def synthetic_data(n_users: int, n_items: int, per_user: int, seed: int = 0) -> TrainData:
    """Each user's items drawn with Zipf-like popularity (a few items in many lists, most in few)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()

    def drawn(count: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(n_users), count)
        cols = rng.choice(n_items, rows.size, p=popularity)
        m = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
        m.data[:] = 1.0
        return m

    features = {name: rng.standard_normal((n_items, 64), dtype=np.float32) for name in ("image", "text")}
    return TrainData(drawn(per_user), drawn(max(1, per_user // 10)), features, seed)


def one_run(model: str, n_users: int, n_items: int, per_user: int, epochs: int, graphs: str) -> dict[str, float]:
    """In this process: ``epochs`` epochs of one model's fit (validation at the last), seconds and peak RSS."""
    use_threads("train")
    if graphs != "graph":
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for module in (lightgcn, freedom, lattice):
            module.SparseGraph = torch_tensor(graphs)
    data = synthetic_data(n_users, n_items, per_user)
    recommender = MODELS[model](epochs=epochs, eval_every=epochs)
    start = time.perf_counter()
    recommender.fit(data)
    return {
        "seconds": time.perf_counter() - start,
        "peak_gb": peak_rss_gb(),
        "interactions": int(data.train.nnz),
        "valid_recall": float(recommender.result.best_valid_recall or 0.0),
    }


def child_json(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lightgcn,freedom,lattice")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--per-user", type=int, default=25, help="training interactions per user (before duplicates)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--graphs", default="coo,csr,graph", help="which builds of the graphs to time")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, users, items, per_user, epochs, graphs = args.child
        print(json.dumps(one_run(model, int(users), int(items), int(per_user), int(epochs), graphs)))
        return 0
    print(f"{args.users:,} users x {args.items:,} items, {args.epochs} epochs per fit, each in its own process")
    head = f"{'model':>9} {'graphs':>6} {'interactions':>13} {'s / epoch':>10} {'fit s':>8} {'peak RSS GB':>12}"
    print(f"{head} {'valid R@20':>11}")
    for model in args.models.split(","):
        for graphs in args.graphs.split(","):
            out = child_json(
                "--child", model, str(args.users), str(args.items), str(args.per_user), str(args.epochs), graphs
            )
            cells = f"{out['seconds'] / args.epochs:>10.1f} {out['seconds']:>8.1f} {out['peak_gb']:>12.2f}"
            print(f"{model:>9} {graphs:>6} {out['interactions']:>13,} {cells} {out['valid_recall']:>11.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
