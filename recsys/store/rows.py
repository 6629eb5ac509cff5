"""Row bookkeeping shared by the in-memory and the on-disk store.

Items live in numbered rows that are only ever appended: replacing an item appends a new row and
marks the old one dead, deleting marks it dead. Appending never renumbers, so an ANN index keyed
by row number stays valid across updates (no rebuild), and dead rows are filtered out inside the
search until a compaction renumbers everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from recsys.catalogue.categories import SortedNames, normalize_category
from recsys.errors import InputError
from recsys.ranking import top_k
from recsys.store.base import ids_at

#: A selection letting through at most this share of the table's rows keeps its rows, and the rows
#: of each field among them: counting and listing them then costs the category's size, not the
#: table's (at 1M rows a count of a field's rows through the mask took 1.2 ms, a list of them 1.2 ms,
#: per search).
SMALL_SELECTION_SHARE = 1 / 8
#: Bytes of category selections a table keeps, most recently used first (each holds a mask of the
#: table and its bitmap, ~1.1 MB at 1M rows, plus a small selection's rows); at least
#: :data:`MIN_SELECTIONS_KEPT` are kept. A fused query's searches ask for the same category side by
#: side, and a catalogue's categories recur: at 1M rows, queries over 50 of 400 leaf categories
#: spent 2.6 ms a search making masks and counts again once a cap of 64 emptied the cache.
SELECTIONS_KEPT_BYTES = 256 * 2**20
MIN_SELECTIONS_KEPT = 16


class Selection:
    """The rows a search may return, with what every search over them needs computed once.

    A catalogue-wide mask costs O(rows) to count and to pack into FAISS's bitmap; at a million
    rows that is a millisecond each, per search. A category's selection is cached by the table
    (until the next write), so its counts per field and its packed bitmap are paid for once.
    """

    def __init__(
        self, mask: np.ndarray, has: Mapping[str, np.ndarray], partition: tuple[str, np.ndarray] | None = None
    ) -> None:
        self.mask = mask
        # (top-level category, its rows): an ANN index may walk only that category's own lists
        self.partition = partition
        self._has = has
        self._counts: dict[str, int] = {}
        self._bits: np.ndarray | None = None
        self._memo: dict[object, Any] = {}
        self._same: dict[int, tuple[np.ndarray, bool]] = {}
        self._size: int | None = None
        self._rows: np.ndarray | None = None
        self._rows_with: dict[str, np.ndarray] = {}

    @property
    def size(self) -> int:
        """How many rows the selection lets through (any field)."""
        if self._size is None:
            self._size = int(np.count_nonzero(self.mask))
        return self._size

    @property
    def small(self) -> bool:
        """Whether the selection keeps its rows (:data:`SMALL_SELECTION_SHARE`)."""
        return self.size <= len(self.mask) * SMALL_SELECTION_SHARE

    def rows_with(self, field: str) -> np.ndarray:
        """Rows that have ``field`` and are let through, ascending (read-only): kept for a small
        selection, found anew in the whole mask for a large one."""
        kept = self._rows_with.get(field)
        if kept is not None:
            return kept
        if not self.small:
            return np.flatnonzero(self._has[field] & self.mask)
        if self._rows is None:
            self._rows = np.flatnonzero(self.mask)
        kept = self._rows[self._has[field][self._rows]]
        kept.setflags(write=False)
        self._rows_with[field] = kept
        return kept

    @property
    def nbytes(self) -> int:
        """Memory held by what this selection computed (its mask is counted: a table makes one per category)."""
        held = [self.mask, self._bits, self._rows, *self._rows_with.values()]
        return sum(a.nbytes for a in held if a is not None)

    def same_rows(self, mask: np.ndarray) -> bool:
        """Whether this selection lets exactly ``mask``'s rows through: the mask itself, or an equal
        one (the table makes a category's mask again once its cache has been emptied), compared
        once per mask."""
        if self.mask is mask:
            return True
        known = self._same.get(id(mask))
        if known is None or known[0] is not mask:  # held with its answer: an id alone may be reused
            known = self._same[id(mask)] = (mask, bool(np.array_equal(self.mask, mask)))
        return known[1]

    def memo(self, key: object, compute: Callable[[], Any]) -> Any:
        """A value derived from this selection (e.g. an ANN index's per-list counts), computed once."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def count(self, field: str) -> int:
        if field not in self._counts:
            if self.small:
                self._counts[field] = len(self.rows_with(field))
            else:
                self._counts[field] = int(np.count_nonzero(self._has[field] & self.mask))
        return self._counts[field]

    @property
    def bits(self) -> np.ndarray:
        """The mask as a little-endian bitmap (FAISS ``IDSelectorBitmap``)."""
        if self._bits is None:
            self._bits = np.packbits(self.mask, bitorder="little")
        return self._bits

    def without(self, rows: np.ndarray) -> Selection:
        """This selection less ``rows``, reusing the cached counts and bitmap (a few excluded ids)."""
        rows = np.unique(rows[self.mask[rows]])
        if not rows.size:
            return self
        out = Selection(self.mask.copy(), self._has, self.partition)
        out.mask[rows] = False
        out._size = self.size - rows.size
        if self._rows is not None:
            out._rows = np.setdiff1d(self._rows, rows, assume_unique=True)
        out._counts = {f: self.count(f) - int(np.count_nonzero(self._has[f][rows])) for f in self._has}
        bits = self.bits.copy()
        np.bitwise_and.at(bits, rows >> 3, ~(np.left_shift(1, rows & 7)).astype(np.uint8))
        out._bits = bits
        out._memo = self._memo  # derived per-index statistics: a few excluded rows barely move them
        return out


class RowTable:
    """Ids, categories, versions and per-field presence of every row, plus the live/dead state."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = list(fields)
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.version_of: list[str] = []
        self.cat_names: list[str] = []
        self._cat_code: dict[str, int] = {}
        self._by_name: SortedNames | None = None
        self.cat_codes = np.empty(0, dtype=np.int32)
        self.alive = np.empty(0, dtype=bool)
        self.has = {f: np.empty(0, dtype=bool) for f in self.fields}
        self.n_dead = 0
        self._live_with: dict[str, int] = dict.fromkeys(self.fields, 0)
        # most recently used last; searches run side by side, so the cache is changed under a lock
        self._category_masks: dict[str | None, Selection] = {}
        self._masks_lock = threading.Lock()

    @classmethod
    def bulk(
        cls,
        fields: Iterable[str],
        ids: list[str],
        categories: Sequence[str],
        versions: list[str],
        has: Mapping[str, np.ndarray],
        retired: np.ndarray,
    ) -> RowTable:
        """Rebuild a table in one pass (opening a store): ``retired`` rows are dead, and should an id
        appear in several live rows the last one wins."""
        t = cls(fields)
        n = len(ids)
        t.ids, t.version_of = ids, versions
        named = categories.tolist() if isinstance(categories, np.ndarray) else [str(c) for c in categories]
        code = t._cat_code  # in order of first appearance: a dict, not a sort of 1M strings
        t.cat_codes = np.fromiter((code.setdefault(c, len(code)) for c in named), dtype=np.int32, count=n)
        t.cat_names = list(code)
        t.alive = np.ones(n, dtype=bool)
        t.alive[np.asarray(retired, dtype=np.int64)] = False
        live = np.flatnonzero(t.alive).tolist()
        # a dict keeps the last value given for a key: where an id has several live rows, the last wins
        t.row_of = dict(zip(ids if len(live) == n else [ids[r] for r in live], live, strict=True))
        if len(t.row_of) < len(live):  # the earlier rows of an id named more than once die
            t.alive[:] = False
            t.alive[np.fromiter(t.row_of.values(), dtype=np.int64, count=len(t.row_of))] = True
        t.n_dead = n - len(t.row_of)
        t.has = {f: np.asarray(has[f], dtype=bool) for f in t.fields}
        t._live_with = {f: int(np.count_nonzero(t.has[f] & t.alive)) for f in t.fields}
        return t

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.row_of)

    def live_with(self, field: str) -> int:
        """How many live items have ``field``."""
        return self._live_with[field]

    def append(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        versions: Sequence[str],
        has: Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """Append one row per id (the old row of a replaced id dies); returns the new row numbers."""
        start = self.n_rows
        self.kill(self.rows_of(ids))
        codes = np.fromiter((self._code(c) for c in categories), dtype=np.int32, count=len(ids))
        rows = np.arange(start, start + len(ids))
        self.ids.extend(ids)
        self.version_of.extend(versions)
        self.row_of.update(zip(ids, rows.tolist(), strict=True))
        self.cat_codes = np.concatenate([self.cat_codes, codes])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        for f in self.fields:
            self.has[f] = np.concatenate([self.has[f], np.asarray(has[f], dtype=bool)])
            self._live_with[f] += int(np.count_nonzero(has[f]))
        self._forget_selections()
        return rows

    def kill(self, rows: np.ndarray) -> None:
        """Mark rows dead (already dead rows are skipped)."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))  # an id may be listed twice
        rows = rows[self.alive[rows]]
        if not rows.size:
            return
        self.alive[rows] = False
        self.n_dead += rows.size
        for f in self.fields:
            self._live_with[f] -= int(np.count_nonzero(self.has[f][rows]))
        for r in rows.tolist():
            del self.row_of[self.ids[r]]
        self._forget_selections()

    def ids_of(self, rows: np.ndarray) -> list[str]:
        """The ids of ``rows`` in order (:func:`recsys.store.base.ids_at`)."""
        return ids_at(self.ids, rows)

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Live rows of the known ids among ``ids`` (unknown ids are skipped)."""
        row_of = self.row_of
        return np.array([row_of[i] for i in ids if i in row_of], dtype=np.int64)

    def rows_exactly(self, ids: Sequence[str]) -> np.ndarray:
        """Live rows of ``ids`` in order; an unknown id raises :class:`InputError`."""
        missing = [i for i in ids if i not in self.row_of]
        if missing:
            shown = ", ".join(f"'{i}'" for i in missing[:5])
            raise InputError(f"unknown item id{'s' if len(missing) > 1 else ''} {shown}")
        return np.array([self.row_of[i] for i in ids], dtype=np.int64)

    def selection(self, category: str | None, exclude: Collection[str]) -> Selection | None:
        """The rows a search may return (live, in ``category``, not excluded); ``None`` when every
        row qualifies, so the caller can skip filtering altogether."""
        if category is None and not self.n_dead and not exclude:
            return None
        path = None if category is None else normalize_category(category)
        with self._masks_lock:
            selection = self._category_masks.pop(path, None)
            if selection is not None:
                self._category_masks[path] = selection  # most recently used last
        if selection is None:
            if path is None:
                mask = self.alive
            elif self.cat_names:
                mask = self.alive & self._sorted_names().named(path)[self.cat_codes]
            else:
                mask = np.zeros(self.n_rows, bool)
            top = None if path is None else path.split("/")[0]
            partition = None if top is None else (top, mask if top == path else self.selection(top, ()).mask)
            with self._masks_lock:  # searches asking for a new category side by side keep the first one's
                selection = self._category_masks.setdefault(path, Selection(mask, self.has, partition))
                self._keep_recent_selections()
        if exclude:
            selection = selection.without(self.rows_of(exclude))
        return selection

    def _sorted_names(self) -> SortedNames:
        """The distinct categories in sorted order, made again once new ones have come (names are only
        ever added, so their count tells)."""
        by_name = self._by_name
        if by_name is None or by_name.size != len(self.cat_names):
            by_name = self._by_name = SortedNames(self.cat_names)
        return by_name

    def _keep_recent_selections(self) -> None:
        """Drop the least recently used selections past :data:`SELECTIONS_KEPT_BYTES` (the lock held)."""
        kept = self._category_masks
        held = sum(s.nbytes for s in kept.values())
        while len(kept) > MIN_SELECTIONS_KEPT and held > SELECTIONS_KEPT_BYTES:
            held -= kept.pop(next(iter(kept))).nbytes

    def _forget_selections(self) -> None:
        """A write changes which rows every selection lets through."""
        with self._masks_lock:
            self._category_masks.clear()

    def candidates(self, field: str, selection: Selection | None) -> np.ndarray:
        """Rows that have ``field`` and pass ``selection``."""
        if selection is None:
            return np.flatnonzero(self.has[field] & self.alive)
        return selection.rows_with(field)

    def count(self, field: str, selection: Selection | None) -> int:
        return self._live_with[field] if selection is None else selection.count(field)

    def category_of(self, row: int) -> str:
        return self.cat_names[self.cat_codes[row]]

    def categories_of(self, rows: np.ndarray) -> list[str]:
        return [self.cat_names[c] for c in self.cat_codes[rows].tolist()]

    def versions(self) -> dict[str, str]:
        return {i: self.version_of[r] for i, r in self.row_of.items()}

    def _code(self, category: str) -> int:
        code = self._cat_code.get(category)
        if code is None:
            code = self._cat_code[category] = len(self.cat_names)
            self.cat_names.append(category)
        return code


def exact_top(query: np.ndarray, rows: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k among ``rows`` given their ``vectors`` (one per row): (rows, float32 scores)."""
    scores = (vectors @ query).astype(np.float32, copy=False)
    best = top_k(scores, k)
    return rows[best], scores[best]
