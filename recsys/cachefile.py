"""Reading back arrays the product cached: exactly what the caller expects, or treated as missing.

Caches are derived data, so a truncated, bit-flipped, foreign or wrong-sized file must neither
stop the product nor feed it wrong numbers: it is reported in one warning line, removed, and the
caller recomputes it. Every cache reader goes through :func:`load_npz` so that all of them check
the same things:

- the zip members are read whole, so zip's CRC-32 of every member is verified (``np.load`` stops
  reading at the array's end and misses, e.g., a flipped shape that makes the array shorter);
- every expected array is there, of the expected dtype kind and shape (named axes must agree
  between arrays; fixed widths such as an encoder's dimension must match exactly);
- float arrays are real and finite.

A path that is not a regular file (a folder, a FIFO) is reported and left alone: it is not ours
to delete, and opening a FIFO would block.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys import atomic
from recsys.paths import file_problem

log = logging.getLogger(__name__)

#: One axis of an expected shape: an exact length, a name whose length every array must share, or None (any).
Axis = int | str | None


@dataclass(frozen=True)
class Spec:
    """What one array of a cache file must look like. ``kinds``: accepted numpy dtype kinds
    (``"f"`` float, ``"U"`` text, ``"b"`` bool, ``"iu"`` integers)."""

    shape: tuple[Axis, ...] | None  # None: any number of axes
    kinds: str = "f"
    optional: bool = False
    finite: bool = True  # float values must be finite (reads every value)


class Mismatch(Exception):
    """A cache file that is not what its reader expects (internal: readers turn it into a rebuild)."""


def check_arrays(arrays: Mapping[str, np.ndarray], specs: Mapping[str, Spec]) -> None:
    """Raise :class:`Mismatch` naming the first array that does not meet its spec."""
    named: dict[str, int] = {}
    for name, spec in specs.items():
        if name not in arrays:
            if spec.optional:
                continue
            raise Mismatch(f"no array '{name}'")
        arr = arrays[name]
        if arr.dtype.kind not in spec.kinds:
            raise Mismatch(f"'{name}' has dtype {arr.dtype}, expected kind {spec.kinds!r}")
        if spec.shape is not None and arr.ndim != len(spec.shape):
            raise Mismatch(f"'{name}' has shape {arr.shape}, expected {len(spec.shape)} axes")
        for length, want in zip(arr.shape, spec.shape or (), strict=False):
            if isinstance(want, str):
                want = named.setdefault(want, length)
            if want is not None and length != want:
                raise Mismatch(f"'{name}' has shape {arr.shape}, expected {_shape(spec.shape, named)}")
        if spec.finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise Mismatch(f"'{name}' holds NaN or infinite values")


def _shape(shape: tuple[Axis, ...], named: Mapping[str, int]) -> str:
    return "(" + ", ".join(str(named.get(a, a)) if isinstance(a, str) else str(a) for a in shape) + ")"


@contextlib.contextmanager
def _parsing() -> Iterator[None]:
    """Whatever a damaged file makes zipfile, numpy's header parser or its tokenizer raise (a dozen
    types, from ``BadZipFile`` to ``TokenError``) becomes :class:`Mismatch`; ``OSError`` stays itself."""
    try:
        yield
    except (Mismatch, OSError):
        raise
    except Exception as exc:
        raise Mismatch(f"{type(exc).__name__}: {exc}") from None


def read_npz(path: Path, specs: Mapping[str, Spec]) -> dict[str, np.ndarray]:
    """The arrays of ``path`` named by ``specs``, every member read whole (CRC-checked) and checked.

    Raises :class:`Mismatch` for anything unexpected and ``OSError`` when the file cannot be read.
    """
    problem = file_problem(path)
    if problem is not None:
        raise Mismatch(f"it {problem}")
    with _parsing(), zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        arrays: dict[str, np.ndarray] = {}
        for name in specs:
            info = members.get(f"{name}.npy")
            if info is None:
                continue
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > os.path.getsize(path):
                raise Mismatch(f"'{name}' is compressed or larger than the file")
            raw = io.BytesIO(archive.read(info))
            arrays[name] = np.lib.format.read_array(raw, allow_pickle=False)
            if raw.tell() != len(raw.getbuffer()):
                raise Mismatch(f"'{name}' has {len(raw.getbuffer()) - raw.tell()} bytes beyond its array")
    check_arrays(arrays, specs)
    return arrays


def open_npy(path: Path, spec: Spec) -> np.ndarray:
    """A read-only memory map of a checked ``.npy`` file (header, size, dtype and shape; the values
    are not read, so not checked for finiteness). Raises :class:`Mismatch` or ``OSError``."""
    problem = file_problem(path)
    if problem is not None:
        raise Mismatch(f"it {problem}")
    with _parsing():
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise Mismatch("not a C-ordered array")
    check_arrays({"array": array}, {"array": dataclasses.replace(spec, finite=False)})
    return array


def discard(path: Path, what: str, reason: str) -> None:
    """One warning line, and remove ``path`` if it is a regular file, so that it is rebuilt."""
    removable = file_problem(path) is None and not path.is_symlink()
    log.warning("rebuilding %s: %s is unusable (%s)", what, path, reason)
    if removable:
        try:
            path.unlink()
        except OSError as exc:  # e.g. a read-only cache: it stays ignored and is recomputed each time
            log.warning("cannot remove %s (%s)", path, exc)


def load_npz(path: str | os.PathLike[str], specs: Mapping[str, Spec], *, what: str) -> dict[str, np.ndarray] | None:
    """The checked arrays of a cache file; None when there is none, or (reported, removed) when it is
    unusable. ``what`` names the cache in the message, e.g. ``"feature cache image/x@1"``."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        return read_npz(path, specs)
    except Mismatch as exc:
        discard(path, what, str(exc))
    except OSError as exc:  # not a damaged file but an unreadable one (permissions, I/O): keep it
        log.warning("rebuilding %s: cannot read %s (%s)", what, path, exc.strerror or exc)
    return None


def file_crc32(path: str | os.PathLike[str]) -> int:
    """CRC-32 of a file's bytes, for cache files with no checksum of their own (FAISS indexes)."""
    crc = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc


def save_npz(path: str | os.PathLike[str], *, what: str, **arrays: np.ndarray) -> bool:
    """Write a cache file atomically; a cache that cannot be written (read-only, full, a folder in the
    way) only costs speed, so it is reported in one warning line and False returned, never raised."""
    try:
        atomic.write_npz(path, **arrays)
    except OSError as exc:
        log.warning("cannot write %s to %s (%s); it is kept in memory only", what, path, exc.strerror or exc)
        return False
    return True
