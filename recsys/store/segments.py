"""On-disk layout of the local store: immutable segments named by a manifest.

Every upsert or delete writes a new segment (its rows' ids, categories, versions, per-field
presence, the rows it retires, and one ``.npy`` per field, memory-mapped on open), then swaps
``manifest.json`` to name it. Each file is written atomically and nothing a manifest names is
ever rewritten, so a process killed at any point leaves the old manifest naming complete old
files, or the new one naming complete new files. Files no manifest names are leftovers of an
interrupted write and are removed on the next commit.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.atomic import atomic_path, write_json, write_npz
from recsys.cachefile import Mismatch, Spec, open_npy, read_npz
from recsys.paths import file_problem
from recsys.store.base import UnusableStoreError
from recsys.store.derived import NAME as derived_name

FORMAT = "recsys-local-store/1"
MANIFEST = "manifest.json"
CHUNK = 65_536
# What this module may delete in a store directory: its own segment / index files and the
# temporary files of interrupted atomic writes of them. Anything else there is left alone.
_OURS = re.compile(r"^\.?(seg-\d+\.|index-\d+-\d+\.faiss|manifest\.json\.)")
# Names a manifest may give its files (nothing else: a manifest never points outside its folder).
_SEGMENT = re.compile(r"seg-\d+")
_INDEX = re.compile(r"index-\d+-\d+\.faiss")


@dataclass
class Segment:
    """One immutable batch of rows: [start, start + n) plus the rows it retired."""

    name: str
    start: int
    n: int
    vector_fields: list[str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # field -> read-only memmap

    def entry(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "rows": self.n, "vectors": self.vector_fields}


def vector_file(root: Path, name: str, field_pos: int) -> Path:
    return root / f"{name}.f{field_pos}.npy"


def meta_file(root: Path, name: str) -> Path:
    return root / f"{name}.meta.npz"


def write_segment(
    root: Path,
    name: str,
    start: int,
    fields: Mapping[str, int],
    ids: Sequence[str],
    categories: Sequence[str],
    versions: Sequence[str],
    has: Mapping[str, np.ndarray],
    retired: np.ndarray,
    fill: Callable[[str, int, int], np.ndarray],
    dtype: str,
) -> Segment:
    """Write one segment; ``fill(field, a, b)`` yields rows a..b of a field's vectors (float32)."""
    n = len(ids)
    order = list(fields)
    with_vectors = [f for f in order if n and has[f].any()]
    for f in with_vectors:
        with atomic_path(vector_file(root, name, order.index(f))) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n, fields[f]))
            for a in range(0, n, CHUNK):
                b = min(n, a + CHUNK)
                out[a:b] = fill(f, a, b)
            out.flush()
            del out
    write_npz(
        meta_file(root, name),
        ids=_strings(ids),
        categories=_strings(categories),
        versions=_strings(versions),
        has=np.stack([np.asarray(has[f], dtype=bool) for f in order], axis=1).reshape(n, len(order)),
        retired=np.asarray(retired, dtype=np.int64),
    )
    return Segment(name, start, n, with_vectors)


def read_meta(root: Path, seg: Segment, n_fields: int) -> dict[str, np.ndarray]:
    """The row metadata of ``seg``, checked against it; :class:`UnusableStoreError` when damaged."""
    text = Spec((seg.n,), kinds="U")
    specs = {
        "ids": text,
        "categories": text,
        "versions": text,
        "has": Spec((seg.n, n_fields), kinds="b"),
        "retired": Spec((None,), kinds="iu"),
    }
    path = meta_file(root, seg.name)
    try:
        return read_npz(path, specs)
    except (Mismatch, OSError) as exc:
        raise _damaged(root, path, exc) from None


def open_vectors(root: Path, seg: Segment, fields: Mapping[str, int]) -> None:
    """Memory-map the vectors of ``seg``, checking each file's dtype and shape against the manifest."""
    order = list(fields)
    vectors = {}
    for f in seg.vector_fields:
        path = vector_file(root, seg.name, order.index(f))
        try:
            vectors[f] = random_access(open_npy(path, Spec((seg.n, fields[f]))))
        except (Mismatch, OSError) as exc:
            raise _damaged(root, path, exc) from None
    seg.vectors = vectors


def _damaged(root: Path, path: Path, exc: Exception) -> UnusableStoreError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return UnusableStoreError(
        f"the vector store {root} is damaged: {path.name} is unusable ({reason}); delete the folder to rebuild it"
    )


def random_access(array: np.ndarray) -> np.ndarray:
    """Tell the kernel a memory map is read by scattered rows (re-scoring candidates): no readahead,
    which would page in ~128 KB around every row and fill memory with rows nobody asked for."""
    mm = getattr(array, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(mmap.MADV_RANDOM)
    return array


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The checked manifest of the store at ``root``; None when there is none yet."""
    path = root / MANIFEST
    if not os.path.lexists(path):
        return None
    problem = file_problem(path)
    if problem is not None:
        raise UnusableStoreError(f"the store manifest {path} {problem}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UnusableStoreError(f"cannot read the store manifest {path}: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise UnusableStoreError(f"{path} is not a recsys local store (format {found!r}, expected {FORMAT})")
    problem = manifest_problem(manifest)
    if problem is not None:
        raise UnusableStoreError(f"the store manifest {path} is damaged: {problem}; delete the folder to rebuild it")
    return manifest


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def manifest_problem(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with a parsed manifest (types, names, contiguous segment rows), or None."""
    fields = manifest.get("fields")
    pairs = isinstance(fields, list) and all(isinstance(f, list) and len(f) == 2 for f in fields)
    if not pairs or not fields or not all(isinstance(n, str) and _count(d) and d > 0 for n, d in fields):
        return "'fields' is not a list of [name, dimension] pairs"
    names = [n for n, _ in fields]
    if len(set(names)) != len(names):
        return "'fields' repeats a name"
    if not _count(manifest.get("next_seq")) or not isinstance(manifest.get("options", {}), dict):
        return "'next_seq' or 'options' is malformed"
    segments, rows = manifest.get("segments"), 0
    if not isinstance(segments, list):
        return "'segments' is not a list"
    for s in segments:
        ok = isinstance(s, dict) and isinstance(s.get("name"), str) and _SEGMENT.fullmatch(s["name"])
        ok = ok and _count(s.get("start")) and _count(s.get("rows")) and isinstance(s.get("vectors"), list)
        if not ok or not set(s["vectors"]) <= set(names):
            return f"segment entry {str(s)[:80]} is malformed"
        if s["start"] != rows:
            return f"segment {s['name']} starts at row {s['start']}, expected {rows}"
        rows += s["rows"]
    indexes = manifest.get("indexes")
    if not isinstance(indexes, dict):
        return "'indexes' is not a table"
    for f, e in indexes.items():
        ok = f in names and isinstance(e, dict) and isinstance(e.get("file"), str) and _INDEX.fullmatch(e["file"])
        ok = ok and _count(e.get("rows")) and e["rows"] <= rows and isinstance(e.get("spec"), str)
        if not ok or not (e.get("crc32") is None or _count(e["crc32"])):
            return f"the index entry of field {f!r} is malformed"
    return None


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """The commit point: after this returns, the named files are the store."""
    write_json(root / MANIFEST, manifest)


def remove_unnamed(root: Path, manifest: dict[str, Any], fields: Sequence[str]) -> None:
    """Delete our files that ``manifest`` does not name (leftovers of replaced or interrupted writes)."""
    keep = {MANIFEST}
    for s in manifest["segments"]:
        keep.add(meta_file(root, s["name"]).name)
        keep.update(vector_file(root, s["name"], fields.index(f)).name for f in s["vectors"])
    keep.update(e["file"] for e in manifest["indexes"].values())
    for p in root.iterdir():
        derived = derived_name.fullmatch(p.name)  # kept while the manifest names its index
        if derived is not None and derived.group(1) in keep:
            continue
        if p.name not in keep and _OURS.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=str) if len(values) else np.array([], dtype="<U1")
