"""The one interface every vector store backend implements, and the input checks they share.

Backends differ in where vectors live (RAM, a directory of memory-mapped segments, Milvus) but
must agree on every observable behaviour; ``tests/store/test_contract.py`` holds them to it. The
checks live here so that a bad input raises the same :class:`InputError` whatever the backend.
"""

from __future__ import annotations

import abc
import operator
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.catalogue import id_problem
from recsys.catalogue.categories import normalize_category
from recsys.errors import InputError, RecsysError

MAX_VERSION_LENGTH = 256


def error_reason(exc: BaseException) -> str:
    """The first line of an error for a log line, without the source location FAISS puts first."""
    return re.sub(r"^Error in .*? at \S+:\d+: ", "", str(exc).strip()).split("\n")[0][:200] or type(exc).__name__


class UnusableStoreError(RecsysError):
    """A store that exists but cannot be used as it is: damaged files, or other fields than asked for.
    The message says what is wrong; a store the product keeps for a catalogue is rebuilt instead."""


class Hits:
    """A search's hits, best first: item ids and float32 inner products.

    ``scores`` of an index over fewer dimensions than the field, not re-scored (``rescore=False``),
    order the hits only roughly (``rough``): a caller ranking by them must score the hits first.
    ``rows`` are the hits' numbers in the store's own row numbering (:meth:`VectorStore.row_ids`),
    where it has one. Such a store may name its hits by that numbering (``names``) instead of
    ``ids``: they are then looked up only when read. The engine maps rows to its catalogue and
    never reads them; at 1M items rrf's lookups of 500 hits a pair, in its search threads, held the
    interpreter lock the other search needed (a query's mean 13.3 ms with them, 10.8 without).
    """

    __slots__ = ("_ids", "_names", "scores", "rough", "rows")

    def __init__(
        self,
        ids: list[str] | None,
        scores: np.ndarray,
        rough: bool = False,
        rows: np.ndarray | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> None:
        if ids is None and (rows is None or names is None):
            raise ValueError("hits without ids need their rows and the names those rows index")
        self._ids, self._names = ids, names
        self.scores, self.rough, self.rows = scores, rough, rows

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._ids = ids_at(self._names, self.rows)
        return self._ids

    def __len__(self) -> int:
        return len(self.scores)


def ids_at(names: Sequence[str], rows: np.ndarray) -> list[str]:
    """``names[r]`` for each of ``rows``, in order, in one C-level lookup."""
    picked = rows.tolist()
    if len(picked) < 2:
        return [names[r] for r in picked]
    return list(operator.itemgetter(*picked)(names))


@dataclass(frozen=True)
class Batch:
    """An upsert after validation: every array has one row per id, vectors are float32."""

    ids: list[str]
    categories: list[str]
    versions: list[str]
    vectors: dict[str, np.ndarray]  # only the fields the caller gave
    has: dict[str, np.ndarray]  # field -> bool per row (a given, non-zero row), for every field


class VectorStore(abc.ABC):
    """A collection of items keyed by string id; each item has a category path and up to one unit
    vector per named field (e.g. "text", "image", "image@shared")."""

    fields: dict[str, int]  # field name -> dim, fixed when the store is created

    @abc.abstractmethod
    def upsert(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        versions: Sequence[str] | None = None,
    ) -> None:
        """Insert or replace whole items; a missing field or an all-zero row means "lacks the field"."""

    @abc.abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove items; unknown ids are ignored."""

    @abc.abstractmethod
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
        """Top-k by inner product among items that have ``field``, filtered inside the search.

        ``rescore=False`` is for callers that score the hits themselves: a store may then return its
        index's approximate scores and order rather than re-score with the stored vectors (and
        says, with ``Hits.rough``, when they come from an index over fewer dimensions than the field).
        ``effort`` scales how much of its index an approximate search visits (IVF lists probed,
        HNSW's ef): below 1 for a search whose job is only the items nearest the query, beside
        another search that covers the rest. Exact searches ignore it.
        """

    def row_ids(self) -> list[str] | None:
        """The id of each of the store's numbered rows (:attr:`Hits.rows`), or None for a store
        without row numbers (a server's).

        Why: a caller with its own numbering (the engine's catalogue rows) maps hits through an
        array it builds once from this list, where looking up each hit's id misses the CPU caches
        (~0.25 ms for a list of 500 hits at 1M items). The same list object holds while the
        numbering does: appends extend it and dead rows keep their ids; a renumbering (compaction,
        reopening) gives another list.
        """
        return None

    @abc.abstractmethod
    def get(self, field: str, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) float32 stored vectors; a zero row for an item that lacks the field."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """id -> version string given at upsert, for incremental sync."""

    def synced_to(self) -> str | None:
        """The mark last given to :meth:`mark_synced`, unless an upsert or a delete came after it
        (or the store rewrote its files since); None when there is none, or when the store keeps
        no mark (a server's).

        Why: a sync compares every item's version with the store's (1M versions hashed, a dict of
        1M built and compared: ~5 s of a 1M-item start); the mark of the state it left lets the next
        sync of that same state skip it (:func:`recsys.recommend.catalogue_store.sync_store`)."""
        return None

    def mark_synced(self, mark: str) -> None:  # noqa: B027 (optional: a store without marks ignores it)
        """Remember ``mark`` (durably, for a store on disk) until the store is next written; a
        store that keeps no mark ignores it."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def flush(self) -> None:
        """Make everything durable."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- shared input checks

    def _dim(self, field: str) -> int:
        if field not in self.fields:
            raise InputError(f"unknown field '{field}'; this store has {_names(self.fields)}")
        return self.fields[field]

    def _check_batch(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        versions: Sequence[str] | None,
    ) -> Batch:
        id_list = check_ids(ids, what="upsert")
        n = len(id_list)
        if len(set(id_list)) != n:
            dup = next(i for i, c in Counter(id_list).items() if c > 1)
            raise InputError(f"upsert got id '{dup}' more than once")
        if isinstance(categories, str) or len(categories) != n:
            raise InputError(f"upsert got {n} ids but {_count(categories)} categories")
        cats = [normalize_category(c, allow_empty=True) for c in categories]
        if versions is None:
            vers = [""] * n
        else:
            if isinstance(versions, str) or len(versions) != n:
                raise InputError(f"upsert got {n} ids but {_count(versions)} versions")
            vers = [str(v) for v in versions]
            if any(len(v) > MAX_VERSION_LENGTH for v in vers):
                raise InputError(f"a version string is longer than {MAX_VERSION_LENGTH} characters")
        if not isinstance(vectors, Mapping):
            raise InputError("vectors must be a mapping of field name to an (n, dim) array")
        given: dict[str, np.ndarray] = {}
        for field, arr in vectors.items():
            dim = self._dim(field)
            a = np.asarray(arr, dtype=np.float32)
            if a.shape != (n, dim):
                raise InputError(f"vectors['{field}'] has shape {a.shape}; expected ({n}, {dim})")
            if not np.isfinite(a).all():
                raise InputError(f"vectors['{field}'] contains NaN or infinite values")
            given[field] = np.ascontiguousarray(a)
        has = {
            f: (np.any(given[f] != 0, axis=1) if f in given else np.zeros(n, dtype=bool)) for f in self.fields
        }
        return Batch(id_list, cats, vers, given, has)

    def _check_query(self, field: str, query: np.ndarray, k: int) -> np.ndarray:
        dim = self._dim(field)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.shape != (dim,):
            raise InputError(f"query for field '{field}' has shape {np.shape(query)}; expected ({dim},)")
        if not np.isfinite(q).all():
            raise InputError("query contains NaN or infinite values")
        return np.ascontiguousarray(q)


def check_effort(effort: float) -> float:
    """A search effort (a positive finite share of the backend's default breadth)."""
    if isinstance(effort, bool) or not isinstance(effort, int | float) or not 0 < effort < float("inf"):
        raise InputError(f"search effort must be a positive number, got {effort!r}")
    return float(effort)


def check_fields(fields: Mapping[str, int] | None) -> dict[str, int]:
    """A valid ``{field: dim}`` mapping (non-empty names, positive integer dims)."""
    if not fields:
        raise InputError("a store needs at least one vector field, e.g. {'text': 384}")
    out: dict[str, int] = {}
    for name, dim in fields.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"field names must be non-empty strings, got {name!r}")
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            raise InputError(f"field '{name}' needs a positive integer dimension, got {dim!r}")
        out[name] = int(dim)
    return out


def check_ids(ids: Sequence[str], what: str) -> list[str]:
    if isinstance(ids, str):
        raise InputError(f"{what} expects a sequence of ids, not one string")
    out = list(ids)
    if not out:
        raise InputError(f"{what} got no ids")
    for i in out:
        if not isinstance(i, str) or not i:
            raise InputError(f"item ids must be non-empty strings, got {i!r}")
        problem = id_problem(i)
        if problem:
            raise InputError(f"item id {i[:40]!r}: {problem}")
    return out


def _names(fields: Mapping[str, int]) -> str:
    return ", ".join(f"'{f}'" for f in fields)


def _count(seq: object) -> str:
    try:
        return str(len(seq))  # type: ignore[arg-type]
    except TypeError:
        return "no sequence of"
