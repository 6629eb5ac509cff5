"""``align`` subcommand: train projection heads that map images and sounds into the text space."""

from __future__ import annotations

import argparse

ALIGN_MODALITIES = ("image", "audio")


class _CatalogueAction(argparse.Action):
    """``--catalogue DIR`` (repeatable) opens a training source list entry: ``(DIR, [source names])``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        specs = list(getattr(namespace, self.dest, None) or [])
        specs.append((values, []))
        setattr(namespace, self.dest, specs)


class _SourceAction(argparse.Action):
    """``--source NAME`` narrows the catalogue named just before it to the items of that source."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        specs = getattr(namespace, "catalogues", None)
        if not specs:
            parser.error("--source NAME must follow the --catalogue DIR whose items it selects")
        specs[-1][1].append(values)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align",
        help="train cross-modal aligners (image/audio -> text space) on a catalogue",
        description="Train projection heads on a catalogue's (image or sound, description) pairs and save "
        "them (plus a label-bridge ensemble for image classifiers) as small files.",
    )
    p.add_argument(
        "--catalogue",
        dest="catalogues",
        action=_CatalogueAction,
        required=True,
        metavar="DIR",
        help="catalogue folder whose pairs train the heads (repeatable: the heads train on the union)",
    )
    p.add_argument(
        "--source",
        action=_SourceAction,
        metavar="NAME",
        help="only the items of the preceding --catalogue whose 'source' column names NAME as a word, e.g. "
        "openclipart, iconify or an icon set (repeatable; each adds a source)",
    )
    p.add_argument(
        "--text",
        choices=TEXT_FIELDS,
        default="description",
        help="the text side of a training pair (title suits icon sets whose descriptions are all alike)",
    )
    p.add_argument("--modality", choices=(*ALIGN_MODALITIES, "all"), default="all")
    p.add_argument(
        "--extra-pairs",
        action="append",
        default=[],
        metavar="DIR",
        help="another catalogue folder whose pairs are added to training (repeatable); unlike --catalogue, it "
        "does not name the heads and --catalogue-repeat does not weigh it",
    )
    p.add_argument(
        "--catalogue-repeat",
        type=int,
        default=1,
        metavar="N",
        help="weigh each --catalogue pair N times against the --extra-pairs ones (default 1)",
    )
    p.add_argument("--out", default=None, help="output folder (default: data/aligners in the repository)")
    p.add_argument("--name", default=None, help="file-name prefix (default: the sources' names joined by '+')")
    p.add_argument("--text-encoder", default=None)
    p.add_argument("--image-encoder", default=None)
    p.add_argument("--audio-encoder", default=None)
    p.add_argument("--hidden", type=int, default=None, help="hidden width (0 = linear head)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--bridge-weight",
        type=float,
        default=None,
        help="label-bridge share in the ensemble of an encoder with named classes (default per modality: "
        "recsys.alignment.training.DEFAULT_BRIDGE_WEIGHTS)",
    )
    p.add_argument("--cache-dir", default=None, help="feature cache (default $RECSYS_CACHE_DIR or ~/.cache/recsys)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=run_align)


from recsys.alignment.sources import TEXT_FIELDS  # noqa: E402  (light: no numpy, no torch)


def run_align(args: argparse.Namespace) -> int:
    import dataclasses

    from recsys.alignment.factory import ALIGNERS_DIR
    from recsys.alignment.sources import load_sources
    from recsys.alignment.training import DEFAULT_CONFIGS, train_catalogue_aligners
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder
    from recsys.encoding.cache import default_cache_dir
    from recsys.errors import InputError
    from recsys.paths import check_output_dir
    from recsys.progress import progress_lines
    from recsys.threads import use_threads

    # Where the heads and features go is checked before hours of encoding and training.
    out_dir = check_output_dir(args.out, "Output folder --out") if args.out else ALIGNERS_DIR
    if args.cache_dir:
        check_output_dir(args.cache_dir, "Cache folder --cache-dir")
    if args.catalogue_repeat < 1:
        raise InputError(f"--catalogue-repeat must be at least 1, not {args.catalogue_repeat}.")
    checks = args.cache_dir or default_cache_dir()  # media checks are remembered beside the features
    own = load_sources(args.catalogues, cache_dir=checks)
    extra = load_sources([(d, []) for d in args.extra_pairs], cache_dir=checks) if args.extra_pairs else []
    sources = [*own, *extra]
    names = [s.name for s in sources]
    clashing = sorted({n for n in names if names.count(n) > 1})
    if clashing:  # training keys pairs (and --catalogue-repeat) by source name
        raise InputError(
            f"Two training sources are both named {', '.join(repr(n) for n in clashing)} (a folder given twice, "
            "or two folders with the same name); give each source once, or rename one folder."
        )
    wanted = ALIGN_MODALITIES if args.modality == "all" else (args.modality,)
    modalities = [m for m in wanted if any(s.catalogue.has_modality(m).any() for s in sources)]
    if not modalities:
        names = ", ".join(s.name for s in sources)
        raise InputError(f"The sources {names} have no {' or '.join(wanted)} items to align.")
    text_encoder = create_encoder(args.text_encoder or DEFAULT_ENCODERS["text"], device=args.device)
    encoders = {
        m: create_encoder(getattr(args, f"{m}_encoder") or DEFAULT_ENCODERS[m], device=args.device) for m in modalities
    }
    prefix = args.name or "+".join(dict.fromkeys(s.name for s in own))  # extra pairs add data, not a name
    overrides = {k: getattr(args, k) for k in ("hidden", "epochs", "seed") if getattr(args, k) is not None}
    written = []
    with use_threads("batch"), progress_lines():  # encoding the pairs; heads train on one thread
        for m in modalities:
            config = dataclasses.replace(DEFAULT_CONFIGS[m], **overrides)
            written += train_catalogue_aligners(
                sources,
                [m],
                encoders=encoders,
                text_encoder=text_encoder,
                out_dir=out_dir,
                prefix=prefix,
                config=config,
                text_field=args.text,
                cache_dir=args.cache_dir,
                bridge_weight=args.bridge_weight,
                progress=_progress(),
                repeats={s.name: args.catalogue_repeat for s in own},
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
