"""``python -m recsys cache``: what the derived data under the cache dir holds, and removing what
nothing will use again (:mod:`recsys.retention`)."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cache",
        help="list the engine snapshots and vector stores under the cache dir; --prune removes orphans",
        description="List the engine snapshots, embedded vector stores and joint projections under the cache "
        "dir, largest first, with their catalogue folder and last use. A start keeps each catalogue's two most "
        "recently used model sets; --prune also removes entries with no use record (written before records "
        "existed) and entries whose catalogue folder is gone. Cached features are never listed or removed.",
    )
    p.add_argument(
        "--cache-dir", help="the cache dir (default $RECSYS_CACHE_DIR or ~/.cache/recsys)"
    )
    p.add_argument("--prune", action="store_true", help="remove the entries marked 'orphaned'")
    p.set_defaults(func=run_cache)


def run_cache(args: argparse.Namespace) -> int:
    from recsys.encoding.cache import default_cache_dir
    from recsys.retention import entries, prune_orphans
    from recsys.ui.uploads import human_size as _size

    cache_dir = args.cache_dir or default_cache_dir()
    if args.prune:
        removed = prune_orphans(cache_dir)
        for entry in removed:
            print(f"removed {entry.path} ({_size(entry.bytes)})")
        print(f"removed {len(removed)} orphaned entries, {_size(sum(e.bytes for e in removed))}")
        return 0
    found = entries(cache_dir)
    if not found:
        print(f"no engine snapshots or vector stores under {cache_dir}")
        return 0
    for entry in found:
        owner = entry.catalogue or "(no use record: written before records existed)"
        state = "orphaned" if entry.orphaned else "kept"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{_size(entry.bytes):>9}  {used}  {state:8}  {entry.kind or '?':16}  {entry.path.name}  {owner}")
    orphans = [e for e in found if e.orphaned]
    print(f"{len(found)} entries, {_size(sum(e.bytes for e in found))}; {len(orphans)} orphaned "
          f"({_size(sum(e.bytes for e in orphans))}): remove them with --prune")  # fmt: skip
    return 0
