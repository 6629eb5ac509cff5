"""Atomic file writes: a reader never sees a half-written cache, catalogue or model file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(target: str | os.PathLike[str], named: Callable[[Path], Path] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only if the block succeeds
    (over ``named(tmp)`` where given: a name that depends on what was written, such as its checksum)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target if named is None else named(tmp))
    finally:
        if tmp.exists():
            tmp.unlink()


def write_with(
    target: str | os.PathLike[str], writer: Callable[[Path], Any], named: Callable[[Path], Path] | None = None
) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target`` (or ``named(tmp_path)``);
    returns where it went."""
    final = Path(target)

    def name(tmp: Path) -> Path:
        nonlocal final
        final = named(tmp)
        return final

    with atomic_path(target, None if named is None else name) as tmp:
        writer(tmp)
    return final


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    return write_with(target, lambda p: p.write_bytes(data))


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_with(target, lambda p: p.write_text(text, encoding="utf-8"))


def json_text(obj: Any, compact: bool = False) -> str:
    """The JSON text ``write_json`` writes (also what a download button offers, so both match);
    ``compact`` drops the indentation (data files whose long number lists would triple in size)."""
    if compact:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True, default=str) + "\n"
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def write_json(target: str | os.PathLike[str], obj: Any, compact: bool = False) -> Path:
    return write_text(target, json_text(obj, compact))


def write_npz(target: str | os.PathLike[str], *, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """``np.savez`` (``compressed``: ``np.savez_compressed``, for files shipped in the repository)."""

    def _save(p: Path) -> None:
        with open(p, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)

    return write_with(target, _save)
