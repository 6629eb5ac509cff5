"""``python -m recsys evaluate``: compare recommenders on an interaction dataset under one protocol.

Everything a user can get wrong (cut-offs, seed, output path, model names) is checked before the
dataset is split or any model fitted, so a mistake costs seconds, not the whole run.
"""

from __future__ import annotations

import argparse
import sys

PROTOCOL_CHOICES = ("given", "random", "temporal", "leave-one-out", "cold-items")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate recommenders on an interaction dataset",
        description="Fit every requested model on one protocol's split and print a model x metric table.",
    )
    p.add_argument("--dataset", default=None, help="dataset folder (MMRec or RecBole atomic files)")
    p.add_argument("--format", choices=("mmrec", "recbole"), default="mmrec", help="dataset layout")
    p.add_argument("--name", default=None, help="dataset name when the folder holds several .inter files")
    p.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        default=None,
        help="how to split (default: 'given' when the dataset has its own split, else 'random')",
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated registry names (default: every available model; 'content' expands "
        "to one model per modality; 'list' prints the registry)",
    )
    p.add_argument("--ks", default="10,20,50", help="comma-separated cut-offs")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="run every model with this many seeds (--seed onwards) and report mean, 95%% t-interval "
        "and a paired per-user test against the best model",
    )
    p.add_argument(
        "--mask-valid",
        action="store_true",
        help="exclude validation items from the test ranking too, as RecBole does",
    )
    p.add_argument("--refit", action="store_true", help="refit every model on train+validation before testing")
    p.add_argument("--min-rating", type=float, default=None, help="keep interactions rated at least this")
    p.add_argument("--k-core", type=int, default=None, help="keep users and items with at least K interactions")
    p.add_argument(
        "--reference-check",
        action="store_true",
        help="also fit our BPR and implicit's BPR at matched hyper-parameters (sanity check)",
    )
    p.add_argument(
        "--search",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first tune each model on validation only (this many seconds per model; 0: registered defaults)",
    )
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


def _parse_ks(text: str) -> list[int]:
    from recsys.errors import RecsysError
    from recsys.lab.evaluate import check_ks

    try:
        ks = [int(k) for k in text.split(",") if k.strip()]
    except ValueError as exc:
        raise RecsysError(f"--ks must be comma-separated integers, got {text!r}.") from exc
    if not ks:
        raise RecsysError(f"--ks needs at least one cut-off, e.g. --ks 10,20,50 (got {text!r}).")
    return check_ks(ks)


def _print_registry() -> None:
    from recsys.lab.registry import MODELS, is_available

    for name, spec in MODELS.items():
        state = "" if spec.per_modality or is_available(name) else "  [not installed]"
        note = "  (needs 2+ modalities)" if spec.fuses_modalities else ""
        print(f"{name + (':<modality>' if spec.per_modality else ''):24s} {spec.description}{note}{state}")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from recsys.datasets import load_dataset
    from recsys.errors import RecsysError
    from recsys.lab.evaluate import ranking_description, save_results
    from recsys.lab.filters import Filters
    from recsys.lab.progress import EpochLog
    from recsys.lab.protocols import default_protocol
    from recsys.paths import check_output_file
    from recsys.progress import progress_lines

    if args.models == "list":
        _print_registry()
        return 0
    if not args.dataset:
        raise RecsysError("--dataset is required (a folder of MMRec or RecBole files); --models list needs none.")
    ks = _parse_ks(args.ks)
    from recsys.lab.search import check_budget, report_search
    from recsys.lab.stats import evaluate_seeds, seed_range

    seeds = seed_range(args.seed, args.seeds)
    budget = check_budget(args.search)
    filters = Filters(args.min_rating, args.k_core)
    if args.json_out:
        check_output_file(args.json_out, "Results file --json")
    dataset = load_dataset(args.dataset, args.format, args.name)
    models = _parse_models(args.models, dataset.modalities)
    protocol = args.protocol or default_protocol(dataset)
    why = ""
    if not args.protocol:
        why = " (default: the dataset's own split)" if protocol == "given" else " (default: the dataset has no split)"
    print(f"protocol: {protocol}{why}; {ranking_description(args.mask_valid, args.refit)}", file=sys.stderr)
    searched = None
    if budget:
        searched = report_search(dataset, protocol, models, seeds[0], budget, filters=filters, say=_to_stderr)
    with progress_lines():
        runs, summary = evaluate_seeds(
            dataset,
            protocol,
            models,
            seeds,
            ks=ks,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
            mask_valid=args.mask_valid,
            refit=args.refit,
            filters=filters,
            reference_check=args.reference_check,
            on_progress=EpochLog(),
            searched=searched,
        )
    results = runs[0]
    for warning in dict.fromkeys(w for run in runs for w in run.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    for segment in results.segments:
        print(results.table(segment) if len(runs) == 1 else summary.table(segment))
        print()
    if len(runs) > 1:
        print("hyper-parameters (used or chosen on validation; a list where the seeds differ):")
        for line in summary.settings_lines():
            print("  " + line)
    from recsys.lab.fusiongain import fusion_gain

    gain = fusion_gain(summary, dataset.modalities, runs)
    if gain is not None:
        print("does fusion earn its place (each multimodal model against the best single modality):")
        for line in gain.lines():
            print("  " + line)
    if results.reference:
        from recsys.lab.report import reference_lines

        for line in reference_lines(results):
            print(line)
    if args.json_out:
        fusion = [gain] if gain is not None else []
        path = save_results(args.json_out, runs, [summary] if len(runs) > 1 else [], fusion=fusion)
        print(f"wrote {path}", file=sys.stderr)
    return 0
