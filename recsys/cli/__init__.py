"""``python -m recsys``: one argparse front end, one module per subcommand.

Each module in this package exposes ``register(subparsers)`` and sets ``func`` on its parser;
modules are discovered, so adding a subcommand touches no shared file. User errors
(:class:`recsys.errors.RecsysError`) print one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from recsys.errors import RecsysError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recsys", description="Multimodal recommender system.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RecsysError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever the message holds
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
