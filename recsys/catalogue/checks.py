"""Remembered media checks of a catalogue, so that loading it again costs one ``stat`` per file.

Validating a catalogue opens every media file (PIL reads each image header, soundfile probes
each clip): 7-19 s for 25k items on 2 cores, about 13 minutes at 1M, on every start. A file whose
size, mtime and ctime are unchanged since it was checked gets the same verdict, so the verdict
(ok, or the problem message exactly as the row would report it) is stored per
``(column, path as written, size, mtime_ns, ctime_ns)``. ctime is in the key because no tool can set
it: a file replaced by one of equal size with its mtime copied over still counts as changed.

One file per catalogue folder (named after its real path) under ``<cache dir>/catalogue-checks/``
holds the entries of the media the manifest referenced at the last load, so a removed row's entry
goes with it. It is written atomically and only when an entry changed, and read through
:mod:`recsys.cachefile` (CRC of every member, dtypes, shapes); a damaged one is reported in one
warning line, removed and rebuilt by checking every file again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.cachefile import Spec, discard, load_npz, save_npz

#: Bumped whenever the checks themselves or the messages change, so that old verdicts are not reused.
FORMAT = 1
FOLDER = "catalogue-checks"
_SEP = "\0"  # no path or message that is cached holds a NUL byte (a path with one never reaches the checks)
_SPECS = {
    "format": Spec((1,), kinds="iu"),
    "keys": Spec((None,), kinds="u"),  # UTF-8 "column:path" strings joined by NUL
    "stats": Spec(("n", 3), kinds="iu"),  # size, mtime_ns, ctime_ns
    "problems": Spec((None,), kinds="u"),  # UTF-8 messages ("" for a file that passed) joined by NUL
}

#: What a verdict depends on besides the file's name: (size, mtime_ns, ctime_ns).
Stamp = tuple[int, int, int]


def stamp(info: os.stat_result) -> Stamp:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def cache_file(cache_dir: str | os.PathLike[str], root: Path) -> Path:
    """Where the verdicts for catalogue folder ``root`` (already resolved) are kept."""
    key = hashlib.sha256(os.fsencode(root)).hexdigest()[:24]
    return Path(cache_dir) / FOLDER / f"{root.name[:40] or 'root'}-{key}.npz"


@dataclass
class CheckCache:
    """The remembered verdicts of one catalogue, and the ones this load used or added."""

    path: Path
    _known: dict[str, tuple[Stamp, str]] = field(default_factory=dict)
    _used: dict[str, tuple[Stamp, str]] = field(default_factory=dict)

    @classmethod
    def open(cls, cache_dir: str | os.PathLike[str], root: Path) -> CheckCache:
        """The cache of ``root`` under ``cache_dir``: empty when there is none, or when it is damaged
        (then reported in one warning line and removed)."""
        cache = cls(cache_file(cache_dir, root))
        what = f"the media check cache of {root}"
        arrays = load_npz(cache.path, _SPECS, what=what)
        if arrays is None or int(arrays["format"][0]) != FORMAT:
            return cache
        stats = arrays["stats"].astype(np.int64).tolist()
        keys = _split(arrays["keys"], len(stats))
        problems = _split(arrays["problems"], len(stats))
        if keys is None or problems is None:
            discard(cache.path, what, f"{len(stats)} entries but the names or messages do not match them")
            return cache
        cache._known = {key: (tuple(st), problem) for key, st, problem in zip(keys, stats, problems, strict=True)}
        return cache

    def lookup(self, column: str, rel: str, file_stamp: Stamp) -> str | None:
        """The remembered verdict ("" when the file passed) of an unchanged file, else None."""
        key = f"{column}:{rel}"
        hit = self._known.get(key)
        if hit is None or hit[0] != file_stamp:
            return None
        self._used[key] = hit
        return hit[1]

    def remember(self, column: str, rel: str, file_stamp: Stamp, problem: str | None) -> None:
        """Keep the verdict of a file checked now (problems with a NUL byte are not kept: re-checked)."""
        verdict = problem or ""
        if _SEP not in rel and _SEP not in verdict:
            self._used[f"{column}:{rel}"] = (file_stamp, verdict)

    def save(self) -> None:
        """Write the verdicts this load used, when they differ from the file's (a warm load writes nothing)."""
        if self._used == self._known:
            return
        keys = list(self._used)
        stamps = [st for st, _ in self._used.values()]
        save_npz(
            self.path,
            what="the media check cache",
            format=np.array([FORMAT], dtype=np.int64),
            keys=_join(keys),
            stats=np.array(stamps, dtype=np.int64).reshape(len(keys), 3),
            problems=_join([problem for _, problem in self._used.values()]),
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
