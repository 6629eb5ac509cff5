"""Loading a large interaction dataset (``recsys.datasets.load_dataset``): seconds and peak RSS.

Writes a synthetic MMRec ``.inter`` (user, item, rating, split label) and the same interactions as
a RecBole ``.inter`` (raw string tokens), then loads each in a fresh process, read by pandas' C
parser (the loaders' way for well-formed files) and line by line (the strict reader, which every
file went through before and which still reads the others).

    .venv/bin/python benchmarks/dataset_load.py
    .venv/bin/python benchmarks/dataset_load.py --rows 20000000 --workdir /tmp/datasets
    .venv/bin/python benchmarks/dataset_load.py --features 1024 --readers fast

``--features DIM`` also writes an item feature file (``image.npy``: one float32 row of DIM values
per item) beside the MMRec dataset, which a load reads and checks; ``--item-text`` writes a RecBole
``.item`` file (a title of 4 words and a genre per item), from which a load builds TF-IDF text
features; ``--readers fast`` loads only through the C parser.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from process_memory import peak_rss_gb  # noqa: E402  (beside this script)

from recsys.datasets import load_dataset  # noqa: E402


def write_datasets(folder: Path, rows: int, seed: int = 0, features: int = 0, item_text: bool = False) -> None:
    """``mmrec/mmrec.inter`` and ``recbole/recbole.inter``: the same drawn interactions, a block at a
    time; with ``features``, ``mmrec/image.npy``, every item's row of that many float32 values; with
    ``item_text``, ``recbole/recbole.item``, every item's title and genre."""
    n_users, n_items = max(2, rows // 25), max(2, rows // 15)
    if item_text:
        (folder / "recbole").mkdir(parents=True, exist_ok=True)
        text_rng = np.random.default_rng(seed + 2)
        words = np.array([f"w{k}" for k in range(5000)])
        titles = text_rng.choice(words, (n_items, 4))
        with open(folder / "recbole" / "recbole.item", "w", encoding="utf-8") as out:
            out.write("item_id:token\ttitle:token_seq\tgenre:token\n")
            out.write("\n".join(f"item{i}\t{' '.join(titles[i])}\tg{i % 20}" for i in range(n_items)) + "\n")
    if features:
        (folder / "mmrec").mkdir(parents=True, exist_ok=True)
        feats = np.lib.format.open_memmap(folder / "mmrec" / "image.npy", "w+", np.float32, (n_items, features))
        block_rng = np.random.default_rng(seed + 1)
        for start in range(0, n_items, 65_536):
            feats[start : start + 65_536] = block_rng.standard_normal((min(65_536, n_items - start), features))
        feats.flush()
        del feats
    headers = {"mmrec": "userID\titemID\trating\tx_label", "recbole": "user_id:token\titem_id:token\trating:float"}
    for fmt, header in headers.items():
        (folder / fmt).mkdir(parents=True, exist_ok=True)
        with open(folder / fmt / f"{fmt}.inter", "w", encoding="utf-8") as out:
            out.write(header + "\n")
            block_rng = np.random.default_rng(seed)
            for start in range(0, rows, 1_000_000):
                n = min(1_000_000, rows - start)
                users, items = block_rng.integers(0, n_users, n), block_rng.integers(0, n_items, n)
                ratings = block_rng.integers(1, 6, n)
                labels = block_rng.choice(3, n, p=[0.8, 0.1, 0.1])
                if fmt == "mmrec":
                    lines = (f"{u}\t{i}\t{r}\t{s}" for u, i, r, s in zip(users, items, ratings, labels, strict=True))
                else:
                    lines = (f"user{u}\titem{i}\t{r}" for u, i, r in zip(users, items, ratings, strict=True))
                out.write("\n".join(lines) + "\n")


def one_load(folder: Path, fmt: str, strict: bool) -> dict[str, float]:
    start = time.perf_counter()
    if strict:
        with mock.patch("recsys.datasets._read_regular_table", return_value=None):
            ds = load_dataset(folder, fmt)
    else:
        ds = load_dataset(folder, fmt)
    return {
        "seconds": time.perf_counter() - start,
        "peak_gb": peak_rss_gb(),
        "interactions": int(ds.n_interactions),
        "users": int(ds.n_users),
        "items": int(ds.n_items),
        "checksum": float(ds.users.sum() * 31 + ds.items.sum() + (ds.ratings.sum() if ds.ratings is not None else 0)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workdir", help="where to write the datasets (default: a temporary folder)")
    parser.add_argument("--features", type=int, default=0, help="width of an item feature file beside MMRec's")
    parser.add_argument("--item-text", action="store_true", help="a RecBole .item file of titles and genres")
    parser.add_argument("--readers", choices=("both", "fast"), default="both", help="fast: the C parser only")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, fmt, strict = args.child
        print(json.dumps(one_load(Path(folder), fmt, strict == "1")))
        return 0
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        start = time.perf_counter()
        write_datasets(Path(tmp), args.rows, features=args.features, item_text=args.item_text)
        extras = [f"{args.features}-d item features"] if args.features else []
        extras += ["item text"] if args.item_text else []
        shown = f" (and {', '.join(extras)})" if extras else ""
        took = time.perf_counter() - start
        print(f"{args.rows:,} interactions{shown} written in {took:.1f} s; each load a fresh process")
        print(f"{'format':>8} {'reader':>12} {'seconds':>8} {'peak RSS GB':>12} {'users':>9} {'items':>9} {'same':>5}")
        for fmt in ("mmrec", "recbole"):
            sums = []
            for strict in (True, False) if args.readers == "both" else (False,):
                cmd = [sys.executable, __file__, "--child", str(Path(tmp) / fmt), fmt, "1" if strict else "0"]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                out = json.loads(done.stdout.splitlines()[-1])
                sums.append(out["checksum"])
                reader = "line by line" if strict else "C parser"
                cells = f"{out['seconds']:>8.1f} {out['peak_gb']:>12.2f} {out['users']:>9,} {out['items']:>9,}"
                print(f"{fmt:>8} {reader:>12} {cells} {'yes' if sums[0] == sums[-1] else 'NO':>5}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
