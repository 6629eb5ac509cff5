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

import hashlib
import os
import time
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


def stamp(info: os.stat_result) -> Stamp:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def memo_file(cache_dir: str | os.PathLike[str], folder: str, root: Path, tag: str = "") -> Path:
    """Where one use's values for catalogue folder ``root`` (already resolved) are kept."""
    key = hashlib.sha256(os.fsencode(root)).hexdigest()[:24]
    return Path(cache_dir) / folder / f"{root.name[:40] or 'root'}{tag}-{key}.npz"


@dataclass
class StampMemo:
    """The remembered values of one use and folder, and the ones this run used or added."""

    path: Path
    what: str
    format: int
    racy_ns: int = 0
    _known: dict[str, tuple[Stamp, str]] = field(default_factory=dict)
    _used: dict[str, tuple[Stamp, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, what: str, format: int, racy_ns: int = 0) -> StampMemo:
        """The memo at ``path``: empty when there is none, when it is of another ``format``, or when
        it is damaged (then reported in one warning line and removed)."""
        memo = cls(path, what, format, racy_ns)
        arrays = load_npz(path, _SPECS, what=what)
        if arrays is None or int(arrays["format"][0]) != format:
            return memo
        if arrays["stats"].shape[1] != len(STAMP_FIELDS):
            discard(path, what, f"stamps of {arrays['stats'].shape[1]} fields, not {len(STAMP_FIELDS)}")
            return memo
        stats = arrays["stats"].astype(np.int64).tolist()
        keys = _split(arrays["keys"], len(stats))
        values = _split(arrays["problems"], len(stats))
        if keys is None or values is None:
            discard(path, what, f"{len(stats)} entries but the names or values do not match them")
            return memo
        memo._known = {key: (tuple(st), value) for key, st, value in zip(keys, stats, values, strict=True)}
        return memo

    def lookup(self, kind: str, name: str, file_stamp: Stamp) -> str | None:
        """The remembered value for an unchanged file, else None."""
        key = f"{kind}:{name}"
        hit = self._known.get(key)
        if hit is None or hit[0] != file_stamp:
            return None
        self._used[key] = hit
        return hit[1]

    def remember(self, kind: str, name: str, file_stamp: Stamp, value: str) -> None:
        """Keep a value computed now, unless its file changed too recently to trust the stamp."""
        if _SEP in name or _SEP in value:
            return
        if self.racy_ns and time.time_ns() - max(file_stamp[1], file_stamp[2]) < self.racy_ns:
            return
        self._used[f"{kind}:{name}"] = (file_stamp, value)

    def save(self) -> None:
        """Write the values this run used, when they differ from the file's (a warm run writes nothing)."""
        if self._used == self._known:
            return
        keys = list(self._used)
        save_npz(
            self.path,
            what=self.what,
            format=np.array([self.format], dtype=np.int64),
            keys=_join(keys),
            stats=np.array([st for st, _ in self._used.values()], dtype=np.int64).reshape(len(keys), len(STAMP_FIELDS)),
            problems=_join([value for _, value in self._used.values()]),
        )
        self._known = dict(self._used)


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
