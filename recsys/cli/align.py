"""``align`` subcommand: train projection heads that map images and sounds into the text space."""

from __future__ import annotations

import argparse
from pathlib import Path

ALIGN_MODALITIES = ("image", "audio")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align",
        help="train cross-modal aligners (image/audio -> text space) on a catalogue",
        description="Train projection heads on a catalogue's (image or sound, description) pairs and save "
        "them (plus a label-bridge ensemble for image classifiers) as small files.",
    )
    p.add_argument("--catalogue", required=True, help="catalogue folder whose pairs train the heads")
    p.add_argument("--modality", choices=(*ALIGN_MODALITIES, "all"), default="all")
    p.add_argument(
        "--extra-pairs",
        action="append",
        default=[],
        metavar="DIR",
        help="another catalogue folder whose pairs are added to training (repeatable)",
    )
    p.add_argument("--out", default=None, help="output folder (default: data/aligners in the repository)")
    p.add_argument("--name", default=None, help="file-name prefix (default: the catalogue folder's name)")
    p.add_argument("--text-encoder", default=None)
    p.add_argument("--image-encoder", default=None)
    p.add_argument("--audio-encoder", default=None)
    p.add_argument("--hidden", type=int, default=None, help="hidden width (0 = linear head)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--bridge-weight", type=float, default=None, help="label-bridge share in the image ensemble")
    p.add_argument("--cache-dir", default=None, help="feature cache (default $RECSYS_CACHE_DIR or ~/.cache/recsys)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=run_align)


def run_align(args: argparse.Namespace) -> int:
    import dataclasses

    from recsys.align import ALIGNERS_DIR
    from recsys.alignment.training import DEFAULT_BRIDGE_WEIGHT, DEFAULT_CONFIGS, train_catalogue_aligners
    from recsys.cache import default_cache_dir
    from recsys.catalogue import load_catalogue
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder
    from recsys.errors import InputError
    from recsys.paths import check_output_dir
    from recsys.progress import progress_lines
    from recsys.threads import use_threads

    # Where the heads and features go is checked before hours of encoding and training.
    out_dir = check_output_dir(args.out, "Output folder --out") if args.out else ALIGNERS_DIR
    if args.cache_dir:
        check_output_dir(args.cache_dir, "Cache folder --cache-dir")
    checks = args.cache_dir or default_cache_dir()  # media checks are remembered beside the features
    catalogue = load_catalogue(args.catalogue, cache_dir=checks)
    extras = [load_catalogue(d, cache_dir=checks) for d in args.extra_pairs]
    wanted = ALIGN_MODALITIES if args.modality == "all" else (args.modality,)
    modalities = [m for m in wanted if catalogue.has_modality(m).any()]
    if not modalities:
        raise InputError(f"The catalogue at {args.catalogue} has no {' or '.join(wanted)} items to align.")
    text_encoder = create_encoder(args.text_encoder or DEFAULT_ENCODERS["text"], device=args.device)
    encoders = {
        m: create_encoder(getattr(args, f"{m}_encoder") or DEFAULT_ENCODERS[m], device=args.device) for m in modalities
    }
    prefix = args.name or Path(args.catalogue).resolve().name
    overrides = {k: getattr(args, k) for k in ("hidden", "epochs", "seed") if getattr(args, k) is not None}
    written = []
    with use_threads("batch"), progress_lines():  # encoding the pairs; heads train on one thread
        for m in modalities:
            config = dataclasses.replace(DEFAULT_CONFIGS[m], **overrides)
            written += train_catalogue_aligners(
                catalogue,
                [m],
                encoders=encoders,
                text_encoder=text_encoder,
                out_dir=out_dir,
                prefix=prefix,
                extra_catalogues=extras,
                config=config,
                cache_dir=args.cache_dir,
                bridge_weight=DEFAULT_BRIDGE_WEIGHT if args.bridge_weight is None else args.bridge_weight,
                progress=_progress(),
            )
    for w in written:
        t = w.result.aligner.meta["training"]
        print(
            f"{w.modality}: {t['n_pairs']} pairs, contrastive loss {w.result.losses[0]:.3f} -> "
            f"{w.result.losses[-1]:.3f}; saved {w.path} (configure {w.modality}_aligner = that path, "
            f"or 'default' for the shipped demo heads)"
        )
    return 0


def _progress():
    from recsys.progress import ProgressLog, fan_out, terminal_progress

    return fan_out(terminal_progress(), ProgressLog())  # its lines show on stderr under progress_lines()
