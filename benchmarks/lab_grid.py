"""Validation-only grid search for one lab model: every combination's validation Recall@20.

Fits the model once per combination on the training part of a protocol's split and prints its
Recall@20 on the *validation* interactions (training items excluded); test interactions are never
read, so defaults chosen from this output are not tuned on test figures. Combinations run in
order until ``--budget`` seconds have passed.

    .venv/bin/python benchmarks/lab_grid.py --model freedom --set edge_dropout=0,0.5,0.8 --set lr=0.005,0.01
        [--protocol given] [--seed 0] [--budget 600] [--dataset <folder>]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.lfm2k import shared_dir  # noqa: E402
from recsys.datasets import load_dataset  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.lab.protocols import default_protocol, make_split  # noqa: E402
from recsys.lab.registry import create_model  # noqa: E402
from recsys.lab.training import validation_recall  # noqa: E402
from recsys.threads import use_threads  # noqa: E402


def parse_values(text: str) -> tuple[str, list[object]]:
    """``"lr=0.005,0.01"`` -> ``("lr", [0.005, 0.01])``; values are JSON where they parse, else strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise RecsysError(f"--set takes key=v1,v2,... (got {text!r}).")
    values: list[object] = []
    for item in raw.split(","):
        try:
            values.append(json.loads(item))
        except json.JSONDecodeError:
            values.append(item)
    return key, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--set", action="append", default=[], help="key=v1,v2 (repeat for a grid)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds; no new fit starts after")
    args = parser.parse_args(argv)
    try:
        grid = dict(parse_values(s) for s in args.set)
        folder = Path(args.dataset) if args.dataset else shared_dir() / "datasets" / "lfm2k"
        dataset = load_dataset(folder, "mmrec", None if args.dataset else "lfm2k")
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    split = make_split(dataset, args.protocol or default_protocol(dataset), seed=args.seed)
    train = split.train
    print(f"{args.model} on {dataset.name}, {split.protocol} split, seed {args.seed}: validation Recall@20")
    start = time.perf_counter()
    for combo in itertools.product(*grid.values()):
        if time.perf_counter() - start > args.budget:
            print(f"budget of {args.budget:.0f}s spent; remaining combinations skipped")
            break
        params = dict(zip(grid, combo, strict=True))
        t0 = time.perf_counter()
        model = create_model(args.model, **params)
        with use_threads("train"):
            model.fit(train)
            recall = validation_recall(model.score, train.train, train.valid)
        result = getattr(model, "result", None)
        epoch = f", best epoch {result.best_epoch}" if result is not None else ""
        print(f"  {params}: {recall:.4f} (fit {time.perf_counter() - t0:.0f}s{epoch})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
