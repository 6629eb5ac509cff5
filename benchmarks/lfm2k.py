"""The fusion lab's whole table on Last.fm-2k (MMRec layout), under two protocols.

1. ``given``: the dataset's own x_label split, full ranking over all 1,425 artists (another
   dataset without a split gets its default protocol, ``random``);
2. ``cold-items``: 20% of the artists leave training entirely and are the only candidates.

Every available model runs (the torch models join once their modules exist) in the train thread
role (:mod:`recsys.threads`), with epoch lines (rate, ETA) on stderr, once per seed (``--seeds N``,
seeds ``--seed`` .. ``--seed + N - 1``). With ``--search SECONDS``, each model first searches its
registered search space on the first seed's split (training part and validation only, within
that many seconds per model and protocol; :mod:`recsys.lab.search`) and every seed then runs the
setting it chose. Prints, per protocol, each model's mean and 95% t-interval
over the seeds for every reported metric (with warm/cold segments where they apply), its mean fit
time, a paired per-user test against the best model (:mod:`recsys.lab.stats`) and the
hyper-parameters each model used or chose on validation, and whether fusing modalities earns its
place (:mod:`recsys.lab.fusiongain`: each multimodal model against the best single modality, and
against itself on that modality alone when ``<model>@<modality>`` runs too); then the sanity checks (our BPR against
implicit's at matched hyper-parameters on the first protocol, first seed) and the timing, and writes
``artifacts/lfm2k_results.json`` (every seed's run, the summaries, library versions and the commit)
for the Fusion lab page.

    .venv/bin/python benchmarks/lfm2k.py [--models a,b] [--seeds 3] [--seed 0] [--mask-valid] [--refit]
        [--search SECONDS] [--no-reference-check] [--out artifacts/lfm2k_results.json]

The dataset is found at ``$RECSYS_SHARED_DIR/datasets/lfm2k`` (default ``<repo>/../shared``);
``--dataset DIR [--format recbole]`` runs the same table, defaults and search on another one.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a fresh clone, without installing
    sys.path.insert(0, str(ROOT))

from recsys.datasets import FORMATS, load_dataset  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.lab.evaluate import save_results  # noqa: E402
from recsys.lab.fusiongain import fusion_gain  # noqa: E402
from recsys.lab.progress import EpochLog  # noqa: E402
from recsys.lab.protocols import default_protocol  # noqa: E402
from recsys.lab.registry import MODELS, default_models, is_available  # noqa: E402
from recsys.lab.report import provenance_line, sanity_checks  # noqa: E402
from recsys.lab.search import check_budget, report_search  # noqa: E402
from recsys.lab.stats import evaluate_seeds, seed_range  # noqa: E402
from recsys.paths import check_output_file  # noqa: E402
from recsys.progress import progress_lines  # noqa: E402
from recsys.threads import available_cores, thread_count  # noqa: E402


def shared_dir() -> Path:
    return Path(os.environ.get("RECSYS_SHARED_DIR", ROOT.parent / "shared"))


#: Environment variables that change what a run computes or how fast; recorded with its command.
RECORDED_ENV = ("RECSYS_TRAIN_THREADS", "OMP_NUM_THREADS", "RECSYS_DEVICE")


def command_line(argv: list[str]) -> str:
    """The shell command that regenerates this run, from the repository root (env settings first)."""
    env = [f"{k}={os.environ[k]}" for k in RECORDED_ENV if k in os.environ]
    return shlex.join([*env, "python", "benchmarks/lfm2k.py", *argv])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=None, help="dataset folder (default: <shared>/datasets/lfm2k)")
    parser.add_argument("--format", default="mmrec", choices=FORMATS, help="the --dataset folder's layout")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: all available)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds per model (default 3)")
    parser.add_argument("--mask-valid", action="store_true", help="also exclude validation items at test time")
    parser.add_argument("--refit", action="store_true", help="refit every model on train+validation")
    parser.add_argument(
        "--search",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="search each model's hyper-parameters on the first seed's validation split, this many seconds "
        "per model and protocol (0: registered defaults)",
    )
    parser.add_argument("--no-reference-check", action="store_true", help="skip the matched BPR sanity pair")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "lfm2k_results.json"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    folder = Path(args.dataset) if args.dataset else shared_dir() / "datasets" / "lfm2k"
    try:
        check_output_file(args.out, "Results file --out")
        seeds = seed_range(args.seed, args.seeds)
        check_budget(args.search)
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        dataset = load_dataset(folder, args.format, None if args.dataset else "lfm2k")
    except RecsysError as exc:
        print(f"error: {exc} (set RECSYS_SHARED_DIR or pass --dataset)", file=sys.stderr)
        return 2
    print(f"dataset: {dataset.summary()}")
    models = args.models.split(",") if args.models else default_models(dataset.modalities)
    missing = [n for n, s in MODELS.items() if not s.per_modality and not is_available(n)]
    if missing and not args.models:
        print(f"not installed in this checkout (skipped): {', '.join(missing)}")
    print(f"models: {', '.join(models)}; seeds: {', '.join(map(str, seeds))}\n", flush=True)

    runs, summaries, first_seed, fusion = [], [], [], []
    for i, protocol in enumerate((default_protocol(dataset), "cold-items")):
        t0 = time.perf_counter()
        searched = None
        if args.search:
            searched = report_search(dataset, protocol, models, seeds[0], args.search)
            print(flush=True)
        with progress_lines():
            seeded, summary = evaluate_seeds(
                dataset,
                protocol,
                models,
                seeds,
                progress=lambda m: print("  " + m, flush=True),
                mask_valid=args.mask_valid,
                refit=args.refit,
                reference_check=i == 0 and not args.no_reference_check,
                on_progress=EpochLog(),
                searched=searched,
            )
        runs += seeded
        first_seed.append(seeded[0])
        summaries.append(summary)
        print(f"\n{protocol}: {time.perf_counter() - t0:.1f}s")
        for segment in seeded[0].segments:
            print(summary.table(segment))
            print()
        print("hyper-parameters (used or chosen on validation; a list where the seeds differ):")
        for line in summary.settings_lines():
            print("  " + line)
        gain = fusion_gain(summary, dataset.modalities, seeded)
        if gain is not None:
            fusion.append(gain)
            print("\ndoes fusion earn its place (each multimodal model against the best single modality):")
            for line in gain.lines():
                print("  " + line)
        print(flush=True)
    meta = {
        "command": command_line(argv),
        "seeds": seeds,
        "models": models,
        "protocols": [s.protocol for s in summaries],
        "total_seconds": round(time.perf_counter() - start, 1),
        "cores": available_cores(),
        "train_threads": thread_count("train"),
        "search_seconds": args.search,
    }
    path = save_results(args.out, runs, summaries, meta, fusion)
    print(f"sanity checks (Recall@20, seed {seeds[0]}):")
    for line in sanity_checks(first_seed):
        print("  " + line)
    for warning in dict.fromkeys(w for run in runs for w in run.warnings):
        print(f"warning: {warning}")
    print(f"\nwrote {path} ({provenance_line(runs[0])})")
    print(
        f"total time: {time.perf_counter() - start:.1f}s on {available_cores()} CPU core(s), "
        f"{thread_count('train')} training thread(s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
