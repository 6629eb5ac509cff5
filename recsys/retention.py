"""Derived data kept for a catalogue's most recently used model sets only.

Why: the engine snapshot (:mod:`recsys.snapshot`) and the embedded vector store
(:mod:`recsys.recommend.catalogue_store`) are kept per (catalogue folder, model set) under the cache folder,
so that a start never serves another model set's vectors. Every switch (a retrained head, another
encoder or aligner) used to leave the previous set's folders behind for good: at 1M items some
10 GB a set. Each such folder now gets a record beside it (``<name>.use.json``) naming its kind
and catalogue folder, refreshed whenever a start uses it; a start then removes the same
catalogue's folders of that kind beyond the :data:`KEEP` most recently used (two: going back to the
previous set costs nothing). The cached features are not touched: they are keyed by content and
model, and shared between catalogues. Folders without a record (from earlier versions, or not the
product's) are left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from recsys import atomic
from recsys.paths import remove_path

log = logging.getLogger(__name__)

#: Model sets whose derived folders are kept per catalogue folder and kind.
KEEP = 2
SUFFIX = ".use.json"
FORMAT = 1
#: Folders of the cache dir holding derived entries (snapshots; stores and joint projections).
FOLDERS = ("engines", "stores")


@dataclass(frozen=True)
class Entry:
    """One derived folder or file of the cache dir: what its record says (None: no record, as
    entries from versions before records have) and when it was last used."""

    path: Path
    kind: str | None
    catalogue: str | None
    last_used: float
    bytes: int

    @property
    def orphaned(self) -> bool:
        """No record, or its catalogue folder is gone: nothing will use it again."""
        return self.catalogue is None or not os.path.isdir(self.catalogue)


def entries(cache_dir: str | os.PathLike[str]) -> list[Entry]:
    """Every derived entry under ``cache_dir``'s :data:`FOLDERS`, largest first."""
    found = []
    for folder in FOLDERS:
        parent = Path(cache_dir) / folder
        try:
            children = sorted(parent.iterdir())
        except OSError:
            continue
        for path in children:
            if path.name.endswith(SUFFIX) or path.name.startswith("."):
                continue
            record = _record(path)
            owner = _owner(record)
            with contextlib.suppress(OSError):
                used = (record if owner is not None else path).lstat().st_mtime
                kind, catalogue = owner if owner is not None else (None, None)
                found.append(Entry(path, kind, catalogue, used, _size(path)))
    return sorted(found, key=lambda e: (-e.bytes, str(e.path)))


def prune_orphans(cache_dir: str | os.PathLike[str]) -> list[Entry]:
    """Remove the entries nothing will use again (:attr:`Entry.orphaned`) and their records; returns them."""
    removed = []
    for entry in entries(cache_dir):
        if entry.orphaned and _remove(entry.path, entry.kind or "derived data"):
            with contextlib.suppress(OSError):
                _record(entry.path).unlink()
            removed.append(entry)
    return removed


def _size(path: Path) -> int:
    """Bytes of a file or of everything in a folder (links not followed)."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def keep_recent(entry: Path, kind: str, catalogue_root: Path, keep: int = KEEP) -> list[Path]:
    """Record that ``entry`` (a folder or file under the cache folder) was used now for catalogue
    folder ``catalogue_root`` (resolved), then remove the entries of that ``kind`` and catalogue
    beyond the ``keep`` most recently used, ``entry`` counting as the most recent; returns those
    removed. A cache that cannot be written or cleaned costs disk space only, so that is never
    raised."""
    if not _record_use(entry, kind, catalogue_root):
        return []
    return _prune(entry, kind, catalogue_root, keep)


def _record(entry: Path) -> Path:
    return entry.with_name(entry.name + SUFFIX)


def _record_use(entry: Path, kind: str, catalogue_root: Path) -> bool:
    """Write (or touch) ``entry``'s record; its modification time is the entry's last use."""
    record = _record(entry)
    text = atomic.json_text({"format": FORMAT, "kind": kind, "catalogue": str(catalogue_root)})
    try:
        if record.is_file() and not record.is_symlink() and record.read_text(encoding="utf-8") == text:
            os.utime(record)
        else:
            atomic.write_text(record, text)
    except (OSError, UnicodeDecodeError) as exc:
        log.debug("cannot record the use of %s (%s)", entry, exc)
        return False
    return True


def _owner(record: Path) -> tuple[str, str] | None:
    """(kind, catalogue folder) a record names; None for anything else (left alone)."""
    try:
        if record.is_symlink() or not record.is_file() or record.stat().st_size > 64 * 1024:
            return None
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    kind, catalogue = data.get("kind"), data.get("catalogue")
    return (kind, catalogue) if isinstance(kind, str) and isinstance(catalogue, str) else None


def _prune(entry: Path, kind: str, catalogue_root: Path, keep: int) -> list[Path]:
    used: list[tuple[int, str, Path, Path]] = []
    try:
        records = list(entry.parent.glob(f"*{SUFFIX}"))
    except OSError:
        return []
    for record in records:
        other = record.with_name(record.name[: -len(SUFFIX)])
        if other == entry or _owner(record) != (kind, str(catalogue_root)):
            continue
        with contextlib.suppress(OSError):  # removed meanwhile by another start
            used.append((record.stat().st_mtime_ns, other.name, other, record))
    used.sort(reverse=True)
    removed = []
    for _, _, other, record in used[max(keep - 1, 0) :]:
        if _remove(other, kind):
            with contextlib.suppress(OSError):
                record.unlink()
            removed.append(other)
            log.info("removed %s: the %s of an earlier model set of %s", other, kind, catalogue_root)
    return removed


def _remove(path: Path, kind: str) -> bool:
    """Remove a derived folder or file (a symlink itself, never what it points to); False when it stays."""
    try:
        remove_path(path)
    except OSError as exc:
        log.warning("cannot remove %s, the %s of an earlier model set (%s)", path, kind, exc.strerror or exc)
        return False
    return True
