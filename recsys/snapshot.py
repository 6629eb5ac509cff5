"""The engine's item matrices, saved after a build and memory-mapped by the next start.

Why: every start (the app, each CLI query, :func:`recsys.pipeline.load_engine`) used to read every
cached feature back and recompute each modality's matrices: native vectors centred and normalised,
media aligned into the shared space. On 2 cores at 100,000 items that was ~19 of a CLI query's 30 s
and a 5 GB peak, growing with the catalogue. A snapshot keeps those matrices as ``.npy`` files; a
start whose :func:`snapshot_key` matches (same items' contents, models, aligners, precision and
item dtype) maps them read-only, so pages are read as scoring touches them.

Layout: ``<cache dir>/engines/<catalogue>-<hash of folder and models>/<key>/``, one ``.npy`` per
matrix and ``snapshot.json`` naming them. A snapshot folder is written whole under a temporary name
and renamed into place, so a reader finds a complete snapshot or none; a save then removes the
folder's other snapshots (an older key). A snapshot that does not check out is reported in one
line, removed and rebuilt. The files are not checksummed: they are never rewritten in place, and a
checksum would read every page at every start, which is what mapping them avoids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.cachefile import Mismatch, Spec, open_npy
from recsys.paths import remove_path
from recsys.store.segments import random_access

log = logging.getLogger(__name__)

FORMAT = "recsys-engine-snapshot/1"
FOLDER = "engines"
MANIFEST = "snapshot.json"
_TEMPORARY = ".partial-"
#: Age after which a save's temporary folder is a leftover of a killed process (a live save takes seconds).
STALE_PARTIAL_S = 3600


@dataclass(frozen=True)
class Matrices:
    """One item modality's matrices, one row per catalogue item (see :class:`recsys.recommend.engine.ModalityIndex`)."""

    native: np.ndarray
    present: np.ndarray
    centre: np.ndarray | None = None
    shared: np.ndarray | None = None


def snapshot_key(parts: Iterable[str]) -> str:
    """sha256 over everything the matrices are computed from, one part per line."""
    digest = hashlib.sha256(FORMAT.encode())
    for part in parts:
        digest.update(b"\n")
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def keys_part(modality: str, keys: Iterable[str | None]) -> str:
    """One key part for a modality's per-item content keys (in catalogue order; None: no input)."""
    joined = "".join(f"{'-' if key is None else key}," for key in keys)  # one hash update: ~1 s less at 1M items
    return f"{modality} items {hashlib.sha256(joined.encode('ascii', 'replace')).hexdigest()}"


def snapshot_base(cache_dir: str | os.PathLike[str], root: Path, models: str) -> Path:
    """The folder holding the snapshots of catalogue folder ``root`` (resolved) under ``models``."""
    key = hashlib.sha256(f"{root}\n{models}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name).strip("_")[:40] or "catalogue"
    return Path(cache_dir) / FOLDER / f"{slug}-{key}"


def load_snapshot(
    base: Path, key: str, n_items: int, modalities: Iterable[str]
) -> tuple[dict[str, Matrices], dict] | None:
    """(matrices of each of ``modalities``, the extras saved with them) of snapshot ``key``; None when
    there is none, or (reported, removed) when it does not check out."""
    folder = base / key[:32]
    if not os.path.lexists(folder / MANIFEST):
        return None
    try:
        return _read(folder, key, n_items, sorted(modalities))
    except (Mismatch, OSError, ValueError, TypeError, KeyError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        log.warning("rebuilding the engine snapshot %s: it is unusable (%s)", folder, reason)
        _remove(folder)
        return None


def _read(folder: Path, key: str, n_items: int, expected: list[str]) -> tuple[dict[str, Matrices], dict]:
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Mismatch(f"not a {FORMAT} manifest")
    if manifest.get("key") != key or manifest.get("items") != n_items:
        raise Mismatch("it was saved for other items")
    modalities = manifest["modalities"]
    if not isinstance(modalities, dict) or sorted(modalities) != expected:
        raise Mismatch(f"it does not hold the matrices of {', '.join(expected)}")
    out: dict[str, Matrices] = {}
    for modality, widths in modalities.items():
        native_dim, shared_dim = int(widths["native"]), widths.get("shared")
        files = {name: folder / _file_name(modality, name) for name in ("native", "present", "centre", "shared")}
        out[modality] = Matrices(
            native=_mapped(files["native"], Spec((n_items, native_dim))),
            present=np.array(open_npy(files["present"], Spec((n_items,), kinds="b"))),
            centre=(
                np.array(open_npy(files["centre"], Spec((native_dim,)))) if widths.get("centre") else None
            ),
            shared=(
                _mapped(files["shared"], Spec((n_items, int(shared_dim))))
                if shared_dim is not None
                else None
            ),
        )
    extras = manifest.get("extras", {})
    if not isinstance(extras, dict):
        raise Mismatch("its extras are not a mapping")
    return out, extras


def _mapped(path: Path, spec: Spec) -> np.ndarray:
    """A matrix mapped read-only. A float16 one (past 20k items, where the engine gathers candidate
    rows) is read by scattered rows, so readahead is turned off for it; a float32 one is scored whole."""
    array = open_npy(path, spec)
    return random_access(array) if array.dtype == np.float16 else array


def save_snapshot(base: Path, key: str, matrices: Mapping[str, Matrices], extras: Mapping | None = None) -> bool:
    """Write snapshot ``key`` and remove the folder's other snapshots. A cache that cannot be written
    only costs the next start its time, so that is reported in one warning line and False returned."""
    folder = base / key[:32]
    partial = base / f"{_TEMPORARY}{key[:32]}-{secrets.token_hex(4)}"
    try:
        partial.mkdir(parents=True)
        widths: dict[str, dict] = {}
        for modality, mats in matrices.items():
            for name in ("native", "present", "centre", "shared"):
                array = getattr(mats, name)
                if array is not None:
                    np.save(partial / _file_name(modality, name), np.ascontiguousarray(array), allow_pickle=False)
            widths[modality] = {
                "native": int(mats.native.shape[1]),
                "shared": None if mats.shared is None else int(mats.shared.shape[1]),
                "centre": mats.centre is not None,
            }
        n_items = len(next(iter(matrices.values())).present)
        manifest = {"format": FORMAT, "key": key, "items": n_items, "modalities": widths, "extras": dict(extras or {})}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if os.path.lexists(folder):  # another process saved the same key meanwhile: keep theirs
            _remove(partial)
        else:
            os.rename(partial, folder)
    except OSError as exc:
        reason = exc.strerror or exc
        log.warning("cannot save the engine snapshot to %s (%s); the next start rebuilds it", folder, reason)
        _remove(partial)
        return False
    cutoff = time.time() - STALE_PARTIAL_S
    for other in base.iterdir():
        if other.name == folder.name:
            continue
        with contextlib.suppress(OSError):  # another process's save in progress is left alone
            if not other.name.startswith(_TEMPORARY) or other.lstat().st_mtime < cutoff:
                _remove(other)
    return True


def _file_name(modality: str, name: str) -> str:
    return f"{modality}.{name}.npy"


def _remove(path: Path) -> None:
    """Remove a snapshot folder of ours (mapped files stay readable to a process holding them)."""
    with contextlib.suppress(OSError):
        remove_path(path)
