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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.atomic import atomic_path, write_json, write_npz
from recsys.errors import RecsysError

FORMAT = "recsys-local-store/1"
MANIFEST = "manifest.json"
CHUNK = 65_536
# What this module may delete in a store directory: its own segment / index files and the
# temporary files of interrupted atomic writes of them. Anything else there is left alone.
_OURS = re.compile(r"^\.?(seg-\d+\.|index-\d+-\d+\.faiss|manifest\.json\.)")


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


def read_meta(root: Path, seg: Segment) -> dict[str, np.ndarray]:
    with np.load(meta_file(root, seg.name), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def open_vectors(root: Path, seg: Segment, fields: Sequence[str]) -> None:
    seg.vectors = {f: random_access(np.load(vector_file(root, seg.name, fields.index(f)), mmap_mode="r"))
                   for f in seg.vector_fields}  # fmt: skip


def random_access(array: np.ndarray) -> np.ndarray:
    """Tell the kernel a memory map is read by scattered rows (re-scoring candidates): no readahead,
    which would page in ~128 KB around every row and fill memory with rows nobody asked for."""
    mm = getattr(array, "_mmap", None)
    if mm is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(mmap.MADV_RANDOM)
    return array


def read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RecsysError(f"cannot read the store manifest {path}: {e}") from None
    if manifest.get("format") != FORMAT:
        raise RecsysError(f"{path} is not a recsys local store (format {manifest.get('format')!r}, expected {FORMAT})")
    return manifest


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
        if p.name not in keep and _OURS.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=str) if len(values) else np.array([], dtype="<U1")
