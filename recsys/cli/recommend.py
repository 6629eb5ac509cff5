"""``recommend`` and ``index`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from recsys.errors import InputError
from recsys.fusion import parse_weights


def _add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalogue", required=True, help="catalogue folder (holding catalogue.csv or .parquet)")
    parser.add_argument("--config", help="TOML file with pipeline settings (see README)")
    parser.add_argument(
        "--cache-dir", help="where embeddings are cached (default $RECSYS_CACHE_DIR or ~/.cache/recsys)"
    )
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--store", help="vector store: a folder (embedded, default under the cache dir) or a Milvus URI (see README)"
    )
    parser.add_argument(
        "--search",
        choices=("auto", "exact", "ann"),
        help="exact scoring of every item, or candidates from the vector store (auto: past 20,000 items)",
    )
    parser.add_argument(
        "--batch-size", type=int, help="items per forward pass when indexing (default: 32 on the CPU, 256 on CUDA)"
    )
    parser.add_argument(
        "--precision", metavar="fp32|bf16|fp16", help="bf16 / fp16: autocast when indexing on CUDA (default: fp32)"
    )
    parser.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="encode on a Ray cluster: auto (the running one, else a local one) or host:6379 / ray://host:10001",
    )


def _config(args: argparse.Namespace) -> Any:
    from recsys.pipeline import PipelineConfig

    return PipelineConfig.layered(
        args.catalogue,
        args.config,
        cache_dir=args.cache_dir,
        device=args.device,
        store=args.store,
        search=args.search,
        batch_size=args.batch_size,
        precision=args.precision,
        ray=args.ray,
    )


def _progress() -> Any:
    from recsys.progress import terminal_progress

    return terminal_progress()


def _load_catalogue(args: argparse.Namespace, config: Any) -> Any:
    """The catalogue, its skipped rows reported one line each on stderr: a result that silently
    lacks rows would look complete (issue 12)."""
    from recsys.catalogue import load_catalogue

    catalogue = load_catalogue(args.catalogue, cache_dir=config.cache_folder())
    for bad in catalogue.bad_rows:
        print(f"warning: skipped row {bad.line} ({bad.id or 'no id'}): {bad.reason}", file=sys.stderr)
    return catalogue


def run_index(args: argparse.Namespace) -> int:
    from recsys.pipeline import build_engine

    config = _config(args)
    catalogue = _load_catalogue(args, config)
    from recsys.progress import progress_lines

    with progress_lines():  # output redirected to a log: plain lines with rate and ETA
        engine = build_engine(catalogue, config, _progress())
    counts = ", ".join(f"{m}: {int(ix.present.sum())}" for m, ix in engine.indexes.items())
    print(f"indexed {len(catalogue)} items ({counts})")
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    from recsys import media
    from recsys.paths import check_input_file
    from recsys.pipeline import build_engine
    from recsys.recommend.query import Query

    # Everything the user typed is checked before the catalogue is read or a model loaded.
    weights = parse_weights(args.weights)
    if args.queries is not None:
        return _run_query_file(args, weights)
    query = Query(
        text=args.text,
        image=media.load_image(check_input_file(args.image, "Image file")) if args.image else None,
        audio=media.load_audio(check_input_file(args.audio, "Audio file")) if args.audio else None,
        likes=tuple(args.like or ()),
        dislikes=tuple(args.dislike or ()),
    )
    if query.is_empty():
        raise InputError("empty query: give --text, --image, --audio, --like or --dislike")
    config = _config(args)
    catalogue = _load_catalogue(args, config)
    engine = build_engine(catalogue, config, _progress())  # leaves torch in the query thread role
    results = engine.recommend(
        query,
        weights=weights,
        strategy=args.strategy,
        k=args.k,
        category=args.category,
        similarity=args.similarity,
    )
    note = engine.audio_note(query.audio)
    if note is not None:  # on stderr, so that --json output stays machine-readable
        print(note.message, file=sys.stderr)
    if args.json:
        from recsys.export import result_rows

        print(json.dumps(result_rows(results), indent=2))
        return 0
    print(format_table(results))
    return 0


def _run_query_file(args: argparse.Namespace, weights: dict[str, float]) -> int:
    """``--queries FILE``: one start, a JSON record per line on stdout; exit status 1 when a line
    got an error record instead of results."""
    from recsys import query_file
    from recsys.pipeline import build_engine

    given = [flag for flag in ("text", "image", "audio", "like", "dislike") if getattr(args, flag)]
    if given:
        raise InputError(f"give either --queries or a query (--{given[0]}), not both")
    lines = query_file.read_query_file(args.queries)
    problem = query_file.first_problem(lines)
    if problem is not None:
        raise InputError(problem)
    for bad in lines:
        if isinstance(bad, query_file.BadLine):
            print(f"warning: query line {bad.line}: {bad.reason}", file=sys.stderr)
    config = _config(args)
    engine = build_engine(_load_catalogue(args, config), config, _progress())
    defaults = {"weights": weights, "strategy": args.strategy, "k": args.k, "category": args.category,
                "similarity": args.similarity}  # fmt: skip
    failed = query_file.answer(engine, lines, defaults, sys.stdout)
    if failed:
        print(f"warning: {failed} of {len(lines)} queries got an error record, not results", file=sys.stderr)
    return 1 if failed else 0


def format_table(results: list[Any]) -> str:
    """A plain-text table: rank, id, title, category, score and the contribution of each pair."""
    pairs = sorted({p for r in results for p in r.contributions})
    header = ["#", "id", "title", "category", "score", *pairs]
    rows = [
        [
            str(r.rank),
            r.item.id,
            r.item.title[:40],
            r.item.category,
            f"{r.score:.4f}",
            *(f"{r.contributions.get(p, 0.0):.4f}" for p in pairs),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="compute and cache the catalogue's embeddings")
    _add_pipeline_args(index)
    index.set_defaults(func=run_index)

    rec = subparsers.add_parser("recommend", help="rank catalogue items for a multimodal query")
    _add_pipeline_args(rec)
    rec.add_argument("--text", help="text query")
    rec.add_argument("--image", help="image file to query with")
    rec.add_argument("--audio", help="audio file to query with")
    rec.add_argument("--like", nargs="+", action="extend", metavar="ID", help="catalogue ids to steer towards")
    rec.add_argument("--dislike", nargs="+", action="extend", metavar="ID", help="catalogue ids to steer away from")
    rec.add_argument("--weights", help="per-modality weights, e.g. text=1,image=0.5,audio=0 (0 disables)")
    rec.add_argument("--strategy", default="early", choices=["early", "late", "rrf"], help="fusion strategy")
    rec.add_argument(
        "--similarity",
        default="cosine",
        choices=["cosine", "euclidean", "pearson"],
        help="how vectors are compared (euclidean: 1 - distance/2, same order as cosine; pearson: centred cosine)",
    )
    rec.add_argument("--category", help="only items in this category (or below it)")
    rec.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    rec.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rec.add_argument(
        "--queries",
        metavar="FILE",
        help="answer every query of a JSON Lines file (- for stdin) in one start: one JSON record per line on "
        "stdout; settings a line leaves out come from the options above (see README)",
    )
    rec.set_defaults(func=run_recommend)
