"""Validation-only search for one lab model: every setting's validation Recall@20, and the choice.

A thin command line over :mod:`recsys.lab.search`: fits the model on the training part of a
protocol's split, the registered default first, then the grid given with ``--set`` (default: the
registration's search space; a random sample of it when it is large) in a seeded order, and
prints each setting's Recall@20 on the *validation* interactions (training items excluded). Test
interactions are never read, so defaults chosen from this output are not tuned on test figures.
No new fit starts after ``--budget`` seconds.

    .venv/bin/python benchmarks/lab_grid.py --model freedom --set edge_dropout=0,0.5,0.8 --set lr=0.005,0.01
        [--protocol given] [--seed 0] [--budget 600] [--max-settings 30] [--dataset <folder>]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.lfm2k import shared_dir  # noqa: E402
from recsys.datasets import load_dataset  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.lab.protocols import default_protocol, make_split  # noqa: E402
from recsys.lab.search import MAX_SETTINGS, parse_candidates, search  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--set", action="append", default=[], help="key=v1,v2 (repeat for a grid)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds; no new fit starts after")
    parser.add_argument("--max-settings", type=int, default=MAX_SETTINGS, help="settings beyond the default")
    args = parser.parse_args(argv)
    try:
        space = dict(parse_candidates(s) for s in args.set) if args.set else None
        folder = Path(args.dataset) if args.dataset else shared_dir() / "datasets" / "lfm2k"
        dataset = load_dataset(folder, "mmrec", None if args.dataset else "lfm2k")
        split = make_split(dataset, args.protocol or default_protocol(dataset), seed=args.seed)
        print(f"{args.model} on {dataset.name}, {split.protocol} split, seed {args.seed}: validation Recall@20")
        result = search(
            args.model,
            split.train,
            args.budget,
            space=space,
            seed=args.seed,
            max_settings=args.max_settings,
            on_trial=lambda t: print("  " + t.line(), flush=True),
        )
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(result.trials) < result.planned:
        print(f"budget of {args.budget:.0f}s spent; {result.planned - len(result.trials)} setting(s) not tried")
    print(result.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
