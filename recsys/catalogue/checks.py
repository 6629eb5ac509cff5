"""Remembered media checks of a catalogue, so that loading it again costs one ``stat`` per file.

Validating a catalogue opens every media file (PIL reads each image header, soundfile probes
each clip): 7-19 s for 25k items on 2 cores, about 13 minutes at 1M, on every start. A file whose
stat stamp is unchanged since it was checked gets the same verdict (:mod:`recsys.stamps`), so the
verdict (ok, or the problem message exactly as the row would report it) is stored per
``(column, path as written)`` with the file's stamp.

One file per catalogue folder (named after its real path) under ``<cache dir>/catalogue-checks/``
holds the entries of the media the manifest referenced at the last load, so a removed row's entry
goes with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from recsys.stamps import NO_STAMP, StampMemo, StampRows, memo_file, stamp

__all__ = ["FOLDER", "FORMAT", "NO_STAMP", "CheckCache", "StampRows", "cache_file", "stamp"]

#: Bumped whenever the checks themselves, the messages or the stamps change, so that old verdicts are
#: not reused (2: stamps hold the inode).
FORMAT = 2
FOLDER = "catalogue-checks"


def cache_file(cache_dir: str | os.PathLike[str], root: Path) -> Path:
    """Where the verdicts for catalogue folder ``root`` (already resolved) are kept."""
    return memo_file(cache_dir, FOLDER, root)


class CheckCache(StampMemo):
    """The remembered verdicts of one catalogue ("" for a file that passed), and the ones this load used or added."""

    @classmethod
    def open(cls, cache_dir: str | os.PathLike[str], root: Path) -> StampMemo:
        """The cache of ``root`` under ``cache_dir``: empty when there is none, or when it is damaged
        (then reported in one warning line and removed)."""
        return cls.load(cache_file(cache_dir, root), f"the media check cache of {root}", FORMAT)

    def remember(self, column: str, rel: str, file_stamp: Sequence[int], problem: str | None) -> None:  # type: ignore[override]
        """Keep the verdict of a file checked now (problems with a NUL byte are not kept: re-checked)."""
        super().remember(column, rel, file_stamp, problem or "")
