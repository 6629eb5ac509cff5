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

from recsys.errors import RecsysError


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    return write_with(target, lambda p: p.write_bytes(data))


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_with(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_npz(target: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    def _save(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)

    return write_with(target, _save)


def check_writable(target: str | os.PathLike[str]) -> Path:
    """Fail now, with a clear :class:`RecsysError`, if ``target`` cannot be written later.

    For commands that compute for minutes and write at the end: a directory, a path under a
    file, or a folder without write permission is reported before any of the work.
    """
    target = Path(target)
    parent = target.parent
    try:
        if target.is_dir():
            raise RecsysError(f"Output path {target} is a folder; give a file name.")
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RecsysError(f"Cannot write {target}: {exc.strerror or exc}.") from exc
    return target
