"""``python -m recsys evaluate``: compare recommenders on an interaction dataset under one protocol."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate recommenders on an interaction dataset",
        description="Fit every requested model on one protocol's split and print a model x metric table.",
    )
    p.add_argument("--dataset", required=True, help="dataset folder (MMRec or RecBole atomic files)")
    p.add_argument("--format", choices=("mmrec", "recbole"), default="mmrec", help="dataset layout")
    p.add_argument("--name", default=None, help="dataset name when the folder holds several .inter files")
    p.add_argument("--protocol", choices=("given", "random", "temporal", "cold-items"), default="given")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated registry names (default: every available model; 'content' expands "
        "to one model per modality; 'list' prints the registry)",
    )
    p.add_argument("--ks", default="10,20,50", help="comma-separated cut-offs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", default=None, help="write the results JSON here")
    p.set_defaults(func=run)


def _parse_models(text: str | None, modalities: list[str]) -> list[str] | None:
    if text is None:
        return None
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if name == "content":
            names += [f"content:{m}" for m in modalities]
        elif name:
            names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    from recsys.datasets import load_dataset
    from recsys.errors import RecsysError
    from recsys.lab.evaluate import evaluate, save_results
    from recsys.lab.registry import MODELS, is_available
    from recsys.paths import check_output_file

    if args.models == "list":
        for name, spec in MODELS.items():
            state = "" if spec.per_modality or is_available(name) else "  [not installed]"
            print(f"{name + (':<modality>' if spec.per_modality else ''):24s} {spec.description}{state}")
        return 0
    try:
        ks = tuple(int(k) for k in args.ks.split(",") if k.strip())
    except ValueError as exc:
        raise RecsysError(f"--ks must be comma-separated integers, got {args.ks!r}.") from exc
    if args.json_out:  # checked before any model is fitted
        check_output_file(args.json_out, "Results file --json")
    dataset = load_dataset(args.dataset, args.format, args.name)
    models = _parse_models(args.models, dataset.modalities)
    results = evaluate(
        dataset,
        args.protocol,
        models,
        ks=ks,
        seed=args.seed,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    for segment in results.segments:
        print(results.table(segment))
        print()
    if args.json_out:
        path = save_results(args.json_out, [results])
        print(f"wrote {path}", file=sys.stderr)
    return 0
