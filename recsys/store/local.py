"""The embedded default store: a directory of memory-mapped segments plus one FAISS index per field.

No service to run. Below ``exact_below`` live items a field is searched exactly (flat index);
above it an ANN index (IVF with 8-bit codes by default, see :mod:`recsys.store.ann`) finds
candidates that are re-scored with the stored vectors, so scores are exact inner products. The full vectors stay on disk
(float16 by default) and are memory-mapped, not held in RAM twice. Filters run inside the search
(a row bitmap given to FAISS); a filter that leaves few rows is answered exactly over just those
rows, as Milvus and Qdrant do. Updates append segments and add to the live index: nothing is
rebuilt until :meth:`LocalStore.compact`. One process writes a store at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import InputError, RecsysError
from recsys.float16 import rows_float32
from recsys.store import segments as seg
from recsys.store.ann import AnnParams, FieldIndex
from recsys.store.base import (
    Hits,
    UnusableStoreError,
    VectorStore,
    check_effort,
    check_fields,
    check_ids,
    error_reason,
)
from recsys.store.rows import RowTable, Selection, exact_top

FLOAT16_MAX = 65504.0
#: The manifest's entry for :meth:`LocalStore.mark_synced`: the mark and the segments the store
#: had then. Every upsert or delete adds a segment, so any write after the mark ends it, whatever
#: wrote it (an earlier version of this code too); so does a merge of segments or a compaction,
#: which costs the next sync its shortcut only.
SYNC_MARK = "synced"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    """Tuning of the local store (stored in the manifest; any can be overridden when opening)."""

    exact_below: int = 20_000  # live items of a field below which search is exact (flat index)
    # a filter leaving at most this many rows is answered exactly over them (gathering rows from the
    # memory map costs ~4 us a row at 1280-d: 9.7k rows took 42 ms, 50 rows 0.2 ms)
    exact_filter_below: int = 1_000
    rescore: int = 16  # extra ANN candidates re-scored exactly beyond k
    dtype: str = "float16"  # of the stored vectors: "float16" | "float32"
    max_segments: int = 16  # adjacent small segments are merged beyond this
    checkpoint_rows: int = 1_000  # flush() saves an ANN index once this many rows were added since
    autosave_rows: int = 200_000  # ... and an upsert saves it once this many were
    compact_ratio: float = 0.5  # flush() compacts when this share of rows is dead (0: never)
    seed: int = 0
    ann: AnnParams = AnnParams()

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any], given: Mapping[str, Any]) -> LocalOptions:
        own = {f.name for f in dataclasses.fields(cls)} - {"ann"}
        ann_names = {f.name for f in dataclasses.fields(AnnParams)}
        aliases = {"index": "kind"}
        merged = {**stored, **{k: v for k, v in given.items() if v is not None}}
        top: dict[str, Any] = {}
        ann: dict[str, Any] = dict(merged.pop("ann", {}) or {})
        for key, value in merged.items():
            key = aliases.get(key, key)
            if key in own:
                top[key] = value
            elif key in ann_names:
                ann[key] = value
            else:
                known = ", ".join(sorted(own | ann_names | set(aliases)))
                raise InputError(f"unknown local store option '{key}'; known options: {known}")
        if top.get("dtype", "float16") not in ("float16", "float32"):
            raise InputError(f"dtype must be 'float16' or 'float32', got {top['dtype']!r}")
        return cls(**top, ann=AnnParams(**ann))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LocalStore(VectorStore):
    """``local://DIR`` or a plain directory path."""

    def __init__(self, path: str | os.PathLike[str], fields: Mapping[str, int] | None = None, **options: Any) -> None:
        self.path = Path(path)
        manifest = seg.read_manifest(self.path)
        if manifest is None:
            if fields is None:
                raise RecsysError(f"there is no vector store at {self.path}; pass fields={{name: dim}} to create one")
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise UnusableStoreError(
                    f"{self.path} exists and is not an empty folder; choose a new folder for the store"
                )
            self.fields = check_fields(fields)
            self.options = LocalOptions.from_dict({}, options)
            self._manifest: dict[str, Any] = {"segments": [], "indexes": {}, "next_seq": 0}
            self.path.mkdir(parents=True, exist_ok=True)
            self._segments: list[seg.Segment] = []
            self._table = RowTable(self.fields)
            self._commit()
        else:
            stored = {name: int(dim) for name, dim in manifest["fields"]}
            if fields is not None and check_fields(fields) != stored:
                raise UnusableStoreError(
                    f"the store at {self.path} has fields {stored}, not {dict(fields)}; "
                    "open it with its own fields or create a new store"
                )
            self.fields = stored
            try:
                LocalOptions.from_dict(manifest.get("options", {}), {})
            except (InputError, TypeError, ValueError) as exc:
                raise UnusableStoreError(f"the store manifest in {self.path} has damaged options ({exc})") from None
            self.options = LocalOptions.from_dict(manifest.get("options", {}), options)
            self._manifest = manifest
            self._load()
        self._indexes: dict[str, FieldIndex] = {}
        self._saved_upto: dict[str, int] = {}  # field -> rows covered by its saved ANN index file
        self._open_indexes()

    # ------------------------------------------------------------------------ writes

    def upsert(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        versions: Sequence[str] | None = None,
    ) -> None:
        batch = self._check_batch(ids, categories, vectors, versions)
        if self.options.dtype == "float16" and any(np.abs(v).max() > FLOAT16_MAX for v in batch.vectors.values()):
            raise InputError("vector values beyond the float16 range; open the store with dtype='float32'")
        start = self._table.n_rows
        stored = {f: v.astype(self.options.dtype).astype(np.float32) for f, v in batch.vectors.items()}
        segment = seg.write_segment(
            self.path,
            self._next_name(),
            start,
            self.fields,
            batch.ids,
            batch.categories,
            batch.versions,
            batch.has,
            self._table.rows_of(batch.ids),
            lambda f, a, b: stored[f][a:b],
            self.options.dtype,
        )
        self._append_segment(segment)
        seg.open_vectors(self.path, segment, self.fields)
        rows = self._table.append(batch.ids, batch.categories, batch.versions, batch.has)
        for f, index in self._indexes.items():
            if f in stored:
                present = batch.has[f]
                index.add(rows[present], stored[f][present])
        self._after_write()
        self._save_indexes(self.options.autosave_rows)

    def delete(self, ids: Sequence[str]) -> None:
        if isinstance(ids, str):
            ids = [ids]
        rows = np.unique(self._table.rows_of(ids))
        if not rows.size:
            return
        empty = np.zeros(0, dtype=bool)
        segment = seg.write_segment(
            self.path,
            self._next_name(),
            self._table.n_rows,
            self.fields,
            [],
            [],
            [],
            dict.fromkeys(self.fields, empty),
            rows,
            lambda f, a, b: np.zeros((0, self.fields[f]), np.float32),
            self.options.dtype,
        )
        self._append_segment(segment)
        self._table.kill(rows)
        self._after_write()

    def flush(self) -> None:
        """Segments are durable when written; this also saves ANN indexes that grew (so the next
        open need not re-add those rows) and compacts when most rows are dead."""
        t = self._table
        if self.options.compact_ratio and t.n_dead > max(1024, self.options.compact_ratio * t.n_rows):
            self.compact()
        else:
            self._save_indexes(self.options.checkpoint_rows)

    def close(self) -> None:
        if self._segments is None:
            return
        self.flush()
        self._segments = None  # type: ignore[assignment]
        self._indexes = {}

    def compact(self) -> None:
        """Rewrite the live rows as one segment and rebuild the indexes (drops dead rows)."""
        t = self._table
        keep = np.flatnonzero(t.alive)
        ids = t.ids_of(keep)
        cats = t.categories_of(keep)
        versions = [t.version_of[r] for r in keep.tolist()]
        has = {f: t.has[f][keep] for f in self.fields}
        segment = seg.write_segment(
            self.path,
            self._next_name(),
            0,
            self.fields,
            ids,
            cats,
            versions,
            has,
            np.zeros(0, dtype=np.int64),
            lambda f, a, b: self._gather(f, keep[a:b]),
            self.options.dtype,
        )
        seg.open_vectors(self.path, segment, self.fields)
        self._segments = [segment]
        self._table = RowTable.bulk(self.fields, ids, cats, versions, has, np.zeros(0, dtype=np.int64))
        self._manifest["indexes"] = {}
        self._indexes = {}
        self._saved_upto = {}
        self._commit()
        self._open_indexes()

    # ------------------------------------------------------------------------ reads

    def search(
        self,
        field: str,
        query: np.ndarray,
        k: int,
        *,
        category: str | None = None,
        exclude: Collection[str] = (),
        rescore: bool = True,
        effort: float = 1.0,
    ) -> Hits:
        q = self._check_query(field, query, k)
        params = self.options.ann
        if check_effort(effort) != 1.0:
            params = dataclasses.replace(params, nprobe=max(1, round(params.nprobe * effort)))
        t = self._table
        selection = t.selection(category, exclude)
        qualifying = t.count(field, selection)
        want = min(k, qualifying)
        if want == 0:
            return Hits([], np.zeros(0, dtype=np.float32))
        index, rough = self._indexes[field], False
        if index.exact:
            rows, scores = index.search(q, want, selection, 1.0, params)
        elif qualifying <= self.options.exact_filter_below:
            rows, scores = self._exact(field, q, selection, want)
        else:
            rows, scores, rough = self._ann(field, index, q, selection, qualifying, want, rescore, params)
        return Hits(None, scores, rough, rows, names=t.ids)

    def get(self, field: str, ids: Sequence[str]) -> np.ndarray:
        self._dim(field)
        return self._gather(field, self._table.rows_exactly(check_ids(ids, what="get")))

    def versions(self) -> dict[str, str]:
        return self._table.versions()

    def synced_to(self) -> str | None:
        entry = self._manifest.get(SYNC_MARK)
        if not isinstance(entry, dict) or entry.get("segments") != self._segment_names():
            return None
        mark = entry.get("mark")
        return mark if isinstance(mark, str) else None

    def mark_synced(self, mark: str) -> None:
        """Kept in the manifest; a store that cannot be written (a read-only folder) only loses the
        next sync's shortcut: reported in one warning line, never raised."""
        before = self._manifest.get(SYNC_MARK)
        self._manifest[SYNC_MARK] = {"mark": mark, "segments": self._segment_names()}
        try:
            self._commit()
        except BaseException as exc:
            self._manifest[SYNC_MARK] = before
            if not isinstance(exc, OSError):
                raise
            log.warning("cannot keep the sync mark of the vector store %s (%s)", self.path, exc.strerror or exc)

    def _segment_names(self) -> list[str]:
        return [s.name for s in self._segments]

    def row_ids(self) -> list[str]:
        return self._table.ids

    def __len__(self) -> int:
        return len(self._table)

    def info(self) -> dict[str, Any]:
        """Counts and index kinds, for benchmarks and the command line."""
        t = self._table
        return {
            "items": len(t),
            "rows": t.n_rows,
            "dead_rows": t.n_dead,
            "segments": len(self._segments),
            "indexes": {f: i.spec for f, i in self._indexes.items()},
        }

    # ------------------------------------------------------------------------ search paths

    def _exact(
        self, field: str, q: np.ndarray, selection: Selection | None, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = self._table.candidates(field, selection)
        return exact_top(q, rows, self._gather(field, rows), k)

    def _ann(
        self,
        field: str,
        index: FieldIndex,
        q: np.ndarray,
        selection: Selection | None,
        qualifying: int,
        want: int,
        rescore: bool = True,
        params: AnnParams | None = None,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """ANN candidates re-scored with the stored vectors (unless the caller re-scores them: that
        gather was a sixth of a search at 1M items); widened, then exact, when too few come back.
        The flag says the scores are a reduced index's, not re-scored (:attr:`Hits.rough`)."""
        params = params or self.options.ann
        selectivity = qualifying / max(1, self._table.live_with(field))
        fetch = min(qualifying, want + self.options.rescore) if rescore else want
        breadth = 1
        while True:
            rows, scores = index.search(q, fetch, selection, selectivity, params, breadth)
            if len(rows) >= want and not rescore:
                return rows, scores, index.reduced
            if len(rows) >= want:
                return *exact_top(q, rows, self._gather(field, rows), want), False
            if index.at_limit(selectivity, params, breadth):
                return *self._exact(field, q, selection, want), False
            breadth *= 4

    def _gather(self, field: str, rows: np.ndarray) -> np.ndarray:
        """Stored vectors of ``rows`` (any order) as float32; zero rows where a segment has no such field.
        Sorted once, each segment's rows are a slice (a store has up to ``max_segments``), and
        gathered by :func:`~recsys.float16.rows_float32`: 900 rows of a 1M-row store
        in 16 segments, 1280-d, 3.8 ms against 5.8 ms with a mask, a sort and a numpy cast per segment."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((rows.size, self.fields[field]), dtype=np.float32)
        if not rows.size:
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        bounds = np.searchsorted(ordered, [s.start for s in self._segments] + [np.iinfo(np.int64).max])
        for s, a, b in zip(self._segments, bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if a < b and field in s.vectors:
                out[order[a:b]] = rows_float32(s.vectors[field], ordered[a:b] - s.start)
        return out

    # ------------------------------------------------------------------------ indexes

    def _open_indexes(self) -> None:
        """Load saved ANN indexes (adding the rows written since), build flat ones, and build an
        ANN index for any field that outgrew ``exact_below``."""
        t = self._table
        saved = dict(self._manifest["indexes"])
        for f, dim in self.fields.items():
            entry = saved.get(f)
            index = self._saved_index(f, entry) if entry is not None else None
            if index is not None:
                covered = int(entry["rows"])
                self._saved_upto[f] = covered
                tail = np.flatnonzero(t.has[f][covered:] & t.alive[covered:]) + covered
                self._add_rows(index, f, tail)
                self._indexes[f] = index
            else:
                index = FieldIndex.flat(dim)
                self._add_rows(index, f, t.candidates(f, None))
                self._indexes[f] = index
        self._after_write()
        if self._manifest["indexes"] != saved:  # a damaged index was dropped: stop naming its file
            self._commit()

    def _saved_index(self, field: str, entry: Mapping[str, Any]) -> FieldIndex | None:
        """The saved ANN index of ``field``; None (reported, dropped from the manifest, rebuilt from the
        segments) when its file is damaged or is not the index the manifest describes."""
        path = self.path / entry["file"]
        try:
            return FieldIndex.load(path, entry["spec"], self.fields[field], int(entry["rows"]), entry.get("crc32"))
        except Exception as exc:  # faiss raises RuntimeError or asserts on damaged files
            log.warning(
                "rebuilding the %r index of the vector store %s: %s is unusable (%s)",
                field,
                self.path,
                path.name,
                error_reason(exc),
            )
            del self._manifest["indexes"][field]
            return None

    def _after_write(self) -> None:
        for f in self.fields:
            index, live = self._indexes[f], self._table.live_with(f)
            reason = None if index.exact else index.stale(live, self.options.ann)
            if reason is not None:
                log.info("rebuilding the %r index of the vector store %s: %s", f, self.path, reason)
            if (index.exact and live >= self.options.exact_below) or reason is not None:
                self._build_ann(f)
        self._merge_segments()

    def _build_ann(self, field: str) -> None:
        rows = self._table.candidates(field, None)
        rng = np.random.default_rng(self.options.seed)
        sample = np.sort(rng.choice(rows, size=min(rows.size, 100_000), replace=False))
        index = FieldIndex.trained(self.fields[field], self.options.ann, rows.size, self._gather(field, sample))
        self._add_rows(index, field, rows)
        self._indexes[field] = index
        self._saved_upto.pop(field, None)
        self._save_indexes(0, only=field)

    def _add_rows(self, index: FieldIndex, field: str, rows: np.ndarray) -> None:
        for a in range(0, rows.size, seg.CHUNK):
            chunk = rows[a : a + seg.CHUNK]
            index.add(chunk, self._gather(field, chunk))

    def _save_indexes(self, min_new_rows: int, only: str | None = None) -> None:
        """Save ANN indexes that hold at least ``min_new_rows`` rows beyond their saved file."""
        n = self._table.n_rows
        changed = False
        for f, index in self._indexes.items():
            if index.exact or (only is not None and f != only):
                continue
            upto = self._saved_upto.get(f)
            if upto is not None and (n - upto < max(1, min_new_rows)):
                continue
            name = f"index-{list(self.fields).index(f)}-{self._manifest['next_seq']}.faiss"
            self._manifest["next_seq"] += 1
            crc = index.save(self.path / name)
            self._manifest["indexes"][f] = {"file": name, "rows": n, "spec": index.spec, "crc32": crc}
            self._saved_upto[f] = n
            changed = True
        if changed:
            self._commit()

    # ------------------------------------------------------------------------ segments and manifest

    def _load(self) -> None:
        self._segments = [
            seg.Segment(e["name"], int(e["start"]), int(e["rows"]), list(e["vectors"]))
            for e in self._manifest["segments"]
        ]
        metas = [seg.read_meta(self.path, s, len(self.fields)) for s in self._segments]
        order = list(self.fields)
        for s in self._segments:
            seg.open_vectors(self.path, s, self.fields)

        def cat(key: str, dtype: Any) -> np.ndarray:
            parts = [m[key] for m in metas]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        has = cat("has", bool).reshape(-1, len(order))
        self._table = RowTable.bulk(
            order,
            cat("ids", str).tolist(),
            cat("categories", str),
            cat("versions", str).tolist(),
            {f: has[:, j] for j, f in enumerate(order)},
            cat("retired", np.int64),
        )

    def _append_segment(self, segment: seg.Segment) -> None:
        """Commit a written segment; if the commit fails this object stays as it was."""
        self._segments.append(segment)
        try:
            self._commit()
        except BaseException:
            self._segments.pop()
            raise

    def _next_name(self) -> str:
        name = f"seg-{self._manifest['next_seq']:08d}"
        self._manifest["next_seq"] += 1
        return name

    def _commit(self) -> None:
        t = self._table
        self._manifest.update(
            format=seg.FORMAT,
            fields=list(self.fields.items()),
            options=self.options.to_dict(),
            segments=[s.entry() for s in self._segments],
            counts={
                "rows": t.n_rows,
                "items": len(t),
                "fields": {f: t.live_with(f) for f in self.fields},
            },
        )
        seg.write_manifest(self.path, self._manifest)
        seg.remove_unnamed(self.path, self._manifest, list(self.fields))

    def _merge_segments(self) -> None:
        """Merge the smallest adjacent pair until at most ``max_segments`` remain (rows keep their numbers)."""
        while len(self._segments) > max(1, self.options.max_segments):
            sizes = [a.n + b.n for a, b in zip(self._segments, self._segments[1:], strict=False)]
            i = int(np.argmin(sizes))
            a, b = self._segments[i], self._segments[i + 1]
            metas = [seg.read_meta(self.path, s, len(self.fields)) for s in (a, b)]
            rows = np.arange(a.start, b.start + b.n)
            t = self._table
            merged = seg.write_segment(
                self.path,
                self._next_name(),
                a.start,
                self.fields,
                np.concatenate([m["ids"] for m in metas]).tolist(),
                np.concatenate([m["categories"] for m in metas]).tolist(),
                np.concatenate([m["versions"] for m in metas]).tolist(),
                {f: t.has[f][rows] for f in self.fields},
                np.concatenate([m["retired"] for m in metas]),
                lambda f, lo, hi, rows=rows: self._gather(f, rows[lo:hi]),
                self.options.dtype,
            )
            seg.open_vectors(self.path, merged, self.fields)
            self._segments[i : i + 2] = [merged]
            self._commit()
