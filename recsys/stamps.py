"""Values remembered per file for as long as its stat stamp (size, mtime, ctime, inode) is unchanged.

Why: what a large catalogue's media files yield (a check's verdict, a content hash) costs opening
and reading every file on every start, minutes at 1M items, where a ``stat`` costs ~2 us. ctime
is in the stamp because no tool can set it: a file replaced by one of equal size with its mtime
copied over still counts as changed; the inode number, because a symlink pointed at another file
made in the same clock tick could match the rest. A value remembered within ``racy_ns`` of its file's last
change is not kept (as git treats "racily clean" index entries): a file written again within the
same timestamp tick, at the same size, would otherwise keep a stale value.

One file per use and catalogue folder under ``<cache dir>/<folder>/`` holds the entries the last
run used, so a removed file's entry goes with it. It is written atomically and only when an entry
changed, and read through :mod:`recsys.cachefile` (CRC of every member, dtypes, shapes); a damaged
one is reported in one warning line, removed and rebuilt.
"""

from __future__ import annotations

import array
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.cachefile import Spec, discard, load_npz, save_npz

_SEP = "\0"  # no name or value that is kept holds a NUL byte (one that does is recomputed each time)
_SPECS = {
    "format": Spec((1,), kinds="iu"),
    "keys": Spec((None,), kinds="u"),  # UTF-8 "kind:name" strings joined by NUL
    "stats": Spec(("n", None), kinds="iu"),  # size, mtime_ns, ctime_ns, inode (3 columns in caches before inodes)
    "problems": Spec((None,), kinds="u"),  # UTF-8 values joined by NUL (the member's name predates other uses)
}

#: What a value depends on besides the file's name: (size, mtime_ns, ctime_ns, inode).
Stamp = tuple[int, int, int, int]
STAMP_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
#: The stamp of no file, in arrays of stamps (no file has a negative size).
NO_STAMP: Stamp = (-1, -1, -1, -1)


#: The inode is unsigned and may use all 64 bits (network file systems): kept as a signed 64-bit value.
_INODE_BITS = 2**63 - 1


def stamp(info: os.stat_result) -> Stamp:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino & _INODE_BITS)


class StampRows:
    """Stamps of many files, added one at a time and read as one ``(n, 4)`` array (what
    :meth:`StampMemo.lookup_many` takes); kept flat: a tuple per file cost ~100 MB more at 1M files."""

    def __init__(self) -> None:
        self._flat = array.array("q")

    def add(self, file_stamp: Stamp | None) -> None:
        """The next file's stamp; None for a file that has none (a row of :data:`NO_STAMP`)."""
        self._flat.extend(file_stamp or NO_STAMP)

    def rows(self) -> np.ndarray:
        return np.frombuffer(self._flat, dtype=np.int64).reshape(-1, len(STAMP_FIELDS))


def changed_lately(stamps: np.ndarray, racy_ns: int) -> bool:
    """Whether a file of ``stamps`` (rows of :data:`Stamp`; :data:`NO_STAMP` for none) changed within
    ``racy_ns`` of now: its stamp cannot vouch for it yet."""
    stamps = np.asarray(stamps, dtype=np.int64).reshape(-1, len(STAMP_FIELDS))
    present = stamps[:, 0] >= 0
    return bool(present.any()) and _changed_within(int(stamps[present][:, 1:3].max()), racy_ns)


def _changed_within(last_change_ns: int, racy_ns: int) -> bool:
    return bool(racy_ns) and time.time_ns() - last_change_ns < racy_ns


def memo_file(cache_dir: str | os.PathLike[str], folder: str, root: Path, tag: str = "") -> Path:
    """Where one use's values for catalogue folder ``root`` (already resolved) are kept."""
    key = hashlib.sha256(os.fsencode(root)).hexdigest()[:24]
    return Path(cache_dir) / folder / f"{root.name[:40] or 'root'}{tag}-{key}.npz"


@dataclass
class StampMemo:
    """The remembered values of one use and folder, and the ones this run used or added.

    Held as columns (names, an ``(n, 4)`` array of stamps, values) and looked up many files at a
    time (:meth:`lookup_many`): at 1M files, one dict entry and stamp tuple per file took 3-4 s to
    load and as much again to look up, on every start of a large catalogue.
    """

    path: Path
    what: str
    format: int
    racy_ns: int = 0
    _names: list[str] = field(default_factory=list)  # "kind:name" of each remembered value
    _stats: np.ndarray = field(default_factory=lambda: np.zeros((0, len(STAMP_FIELDS)), dtype=np.int64))
    _values: list[str] = field(default_factory=list)
    _used: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # remembered values this run used
    _added: dict[str, tuple[Stamp, str]] = field(default_factory=dict)  # values computed this run
    _rows: dict[str, int] | None = field(default=None, repr=False)  # name -> its row, built on first lookup

    @classmethod
    def load(cls, path: Path, what: str, format: int, racy_ns: int = 0) -> StampMemo:
        """The memo at ``path``: empty when there is none, when it is of another ``format``, or when
        it is damaged (then reported in one warning line and removed)."""
        memo = cls(path, what, format, racy_ns)
        arrays = load_npz(path, _SPECS, what=what)
        if arrays is None or int(arrays["format"][0]) != format:
            return memo
        stats = arrays["stats"]
        if stats.shape[1] != len(STAMP_FIELDS):
            discard(path, what, f"stamps of {stats.shape[1]} fields, not {len(STAMP_FIELDS)}")
            return memo
        names = _split(arrays["keys"], len(stats))
        values = _split(arrays["problems"], len(stats))
        if names is None or values is None:
            discard(path, what, f"{len(stats)} entries but the names or values do not match them")
            return memo
        memo._names, memo._stats, memo._values = names, stats.astype(np.int64), values
        memo._used = np.zeros(len(names), dtype=bool)
        return memo

    def lookup_many(self, files: Sequence[tuple[str, str]], stamps: np.ndarray) -> list[str | None]:
        """The remembered value of each ``(kind, name)`` whose file is unchanged (its stamp: that row
        of ``stamps``), else None; in one pass."""
        if self._rows is None:
            self._rows = dict(zip(self._names, range(len(self._names)), strict=True))
        position = self._rows.get
        rows = np.fromiter((position(f"{kind}:{name}", -1) for kind, name in files), dtype=np.int64, count=len(files))
        hit = rows >= 0
        given = np.asarray(stamps, dtype=np.int64).reshape(len(files), len(STAMP_FIELDS))
        hit[hit] = (self._stats[rows[hit]] == given[hit]).all(axis=1)
        self._used[rows[hit]] = True
        values = self._values
        return [values[r] if h else None for r, h in zip(rows.tolist(), hit.tolist(), strict=True)]

    def remember(self, kind: str, name: str, file_stamp: Sequence[int], value: str) -> None:
        """Keep a value computed now (``file_stamp``: a :data:`Stamp`, or a row of :class:`StampRows`),
        unless its file changed too recently to trust the stamp."""
        if _SEP in name or _SEP in value:
            return
        size, mtime_ns, ctime_ns, inode = (int(v) for v in file_stamp)
        if _changed_within(max(mtime_ns, ctime_ns), self.racy_ns):  # one file: no array for it
            return
        self._added[f"{kind}:{name}"] = ((size, mtime_ns, ctime_ns, inode), value)

    def save(self) -> None:
        """Write the values this run used, when they differ from the file's (a warm run writes nothing)."""
        if self._rows is None and self._names:
            self._rows = dict(zip(self._names, range(len(self._names)), strict=True))
        rows = self._rows or {}
        added = {}
        for name, (st, value) in self._added.items():  # a value computed again as remembered is a use
            row = rows.get(name)
            if row is not None and self._values[row] == value and tuple(self._stats[row].tolist()) == st:
                self._used[row] = True
            else:
                added[name] = (st, value)
        kept = np.flatnonzero(self._used)
        if added:
            kept = np.array([r for r in kept.tolist() if self._names[r] not in added], dtype=np.int64)
        elif len(kept) == len(self._names):
            return
        names = [self._names[r] for r in kept.tolist()] + list(added)
        more = np.array([st for st, _ in added.values()], dtype=np.int64).reshape(-1, len(STAMP_FIELDS))
        stats = np.concatenate([self._stats[kept], more])
        values = [self._values[r] for r in kept.tolist()] + [value for _, value in added.values()]
        save_npz(
            self.path,
            what=self.what,
            format=np.array([self.format], dtype=np.int64),
            keys=_join(names),
            stats=stats,
            problems=_join(values),
        )
        self._names, self._stats, self._values = names, stats, values
        self._used, self._added, self._rows = np.ones(len(names), dtype=bool), {}, None


def _join(texts: list[str]) -> np.ndarray:
    return np.frombuffer(_SEP.join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)


def _split(blob: np.ndarray, count: int) -> list[str] | None:
    """The ``count`` strings :func:`_join` packed, or None when the bytes are not that (a damaged file)."""
    try:
        text = blob.tobytes().decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    parts = text.split(_SEP) if count else ([] if not text else None)
    return parts if parts is not None and len(parts) == count else None


_LIST_SPECS = {
    "format": Spec((1,), kinds="iu"),
    "digest": Spec((32,), kinds="u"),  # SHA-256 of the inputs the values were computed from
    "values": Spec((None,), kinds="u"),  # UTF-8 values joined by NUL ("" for none)
    "count": Spec((1,), kinds="iu"),
}


@dataclass
class ListMemo:
    """The values computed for a whole list of inputs (a catalogue's items), kept while a digest of
    every input is unchanged.

    Why: a 1M-item start looked up each media file's remembered hash one by one (:class:`StampMemo`:
    loading its entries, each file's name and lookup) in ~7 s, and hashed each item's text in
    ~1.5 s. One digest over all the inputs (names and stamps, or texts) and one file read answer an
    unchanged catalogue in a fraction of that; anything changed, the caller computes as before. The
    caller never keeps values whose files changed too recently to trust their stamps (as
    :meth:`StampMemo.remember`).
    """

    path: Path
    what: str
    format: int

    def recall(self, digest: bytes, count: int) -> list[str | None] | None:
        """The ``count`` values kept for inputs of ``digest``, or None (none kept, other inputs, or a
        damaged file, which is reported and removed)."""
        arrays = load_npz(self.path, _LIST_SPECS, what=self.what)
        if arrays is None or int(arrays["format"][0]) != self.format or int(arrays["count"][0]) != count:
            return None
        if arrays["digest"].tobytes() != digest:
            return None
        values = _split(arrays["values"], count)
        if values is None:
            discard(self.path, self.what, f"{count} entries but the values do not match them")
            return None
        return [value or None for value in values]

    def keep(self, digest: bytes, values: Sequence[str | None]) -> None:
        """Write ``values`` for inputs of ``digest`` (atomically; a value holding NUL is never kept)."""
        texts = [value or "" for value in values]
        if any(_SEP in text for text in texts):
            return
        save_npz(
            self.path,
            what=self.what,
            format=np.array([self.format], dtype=np.int64),
            digest=np.frombuffer(digest, dtype=np.uint8),
            values=_join(texts),
            count=np.array([len(texts)], dtype=np.int64),
        )


def list_digest(*parts: bytes) -> bytes:
    """SHA-256 over ``parts``, each prefixed by its length (so no two different lists of parts agree)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.digest()
