"""FAISS indexes derived from a saved index file and kept beside it: its fast-scan codes
(:mod:`recsys.store.fastscan`) and its categories' own lists (:mod:`recsys.store.partition`).

Each is named ``<index file>.<kind>-<its CRC-32 in hex>``: an index file is never rewritten (a
store that changes writes a new one), so what lies beside it stays true of it, and the store drops
it with the index (:func:`recsys.store.segments.remove_unnamed`). A process that made one saves it
so that the next process that opens the index reads it instead of making it again; a file that
cannot be written, or read back, only costs that work again.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from recsys.atomic import write_with
from recsys.cachefile import file_crc32
from recsys.paths import file_problem
from recsys.store.base import error_reason

log = logging.getLogger(__name__)
#: A derived file's name: the index file's, a kind, its CRC-32.
NAME = re.compile(r"(index-\d+-\d+\.faiss)\.([a-z][a-z0-9]*)-([0-9a-f]{8})")


def path_of(index_file: Path, kind: str, crc: int) -> Path:
    """Where the file of ``kind`` derived from ``index_file`` with CRC-32 ``crc`` goes."""
    return index_file.with_name(f"{index_file.name}.{kind}-{crc & 0xFFFFFFFF:08x}")


def carry(earlier: Path, index_file: Path, kinds: str) -> int:
    """Link the files whose kind starts with ``kinds`` saved beside ``earlier`` (a file the index
    saved as ``index_file`` was) to ``index_file``'s names, for what a reader extends by the rows
    added since (:func:`recsys.store.partition.load`); returns how many. A link costs nothing, and
    the store drops the earlier names with their index."""
    carried = 0
    for path in sorted(earlier.parent.glob(f"{glob.escape(earlier.name)}.{kinds}*-*")):
        name = NAME.fullmatch(path.name)
        if name is None or name.group(1) != earlier.name or not name.group(2).startswith(kinds):
            continue
        try:
            os.link(path, index_file.with_name(f"{index_file.name}.{name.group(2)}-{name.group(3)}"))
            carried += 1
        except OSError:  # a file system without links, or carried already: the reader builds them
            continue
    return carried


def save(index_file: Path, kind: str, index, what: str) -> Path | None:  # noqa: ANN001
    """Write the FAISS ``index`` (``what`` it is, for the log) beside ``index_file`` as ``kind``,
    atomically, named by its CRC-32; None (one warning) when it cannot be written (a read-only
    store, a full disk)."""
    import faiss

    try:
        return write_with(
            path_of(index_file, kind, 0),
            lambda tmp: faiss.write_index(index, str(tmp)),
            named=lambda tmp: path_of(index_file, kind, file_crc32(tmp)),
        )
    except (OSError, RuntimeError) as exc:  # faiss raises RuntimeError for a failed write
        log.warning("could not save the %s beside %s (%s); the next process makes them again",
                    what, index_file, error_reason(exc))  # fmt: skip
        return None


def load(index_file: Path, kind: str, check: Callable[[object], None], what: str):  # noqa: ANN201
    """The FAISS index of ``kind`` saved beside ``index_file`` that reads back with the CRC-32 its
    name gives and passes ``check`` (which raises ``ValueError`` for one that does not fit), or None.
    Damaged files are reported and removed; one that is not a regular file is left alone."""
    import faiss

    pattern = f"{glob.escape(index_file.name)}.{kind}-*"
    for path in sorted(index_file.parent.glob(pattern)):
        name = NAME.fullmatch(path.name)
        if name is None or name.group(2) != kind:  # the glob's * may hold anything
            continue
        problem = file_problem(path)
        if problem is not None:  # a FIFO would block the read
            log.warning("making the %s of %s again: %s %s", what, index_file.name, path.name, problem)
            continue
        try:
            if file_crc32(path) != int(name.group(3), 16):
                raise ValueError("its checksum does not match the one in its name")
            index = faiss.read_index(str(path))  # of its own type (downcasting it would leave the owner to be freed)
            check(index)
        except (OSError, RuntimeError, ValueError, MemoryError) as exc:  # MemoryError: a damaged size
            log.warning("making the %s of %s again: %s is unusable (%s)", what, index_file.name, path.name,
                        error_reason(exc))  # fmt: skip
            if not isinstance(exc, OSError):  # damaged for good: the next save takes its place
                path.unlink(missing_ok=True)
            continue
        return index
    return None
