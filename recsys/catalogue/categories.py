"""Category paths (``animals/birds``) and the filters that name them.

A filter names a category and every category below it. The engine and the vector stores both
answer such filters, so the rules live here once: how a path is written, which categories a filter
names, and, for a million items, how those are found by bisection in the categories' sorted order
rather than by testing every item or every distinct category.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from recsys.errors import InputError

MAX_CATEGORY_LENGTH = 1024
MAX_CATEGORY_DEPTH = 32


def normalize_category(category: str, allow_empty: bool = False) -> str:
    """``'/animals/birds/'`` -> ``'animals/birds'``; paths with empty parts are refused."""
    if not isinstance(category, str):
        raise InputError(f"categories must be strings, got {category!r}")
    c = category.strip("/")
    if not c:
        if allow_empty:
            return ""
        raise InputError("empty category filter; pass category=None to search every category")
    parts = c.split("/")
    if any(not p for p in parts):
        raise InputError(f"category '{category}' has an empty part ('//')")
    _check_limits(c)
    return c


def category_cell(cell: str) -> str:
    """The category a catalogue cell names: outer and repeated slashes dropped (``/food//fruit/``
    is ``food/fruit``, as a filter path reads it), and an :class:`InputError` for a path past the
    limits every store keeps (:func:`normalize_category`), so that such a row is reported, not
    refused by the first store sync of a large catalogue."""
    if "//" in cell:
        cell = "/".join(part for part in cell.split("/") if part)
    path = cell.strip("/")
    _check_limits(path)
    return path


def _check_limits(path: str) -> None:
    """What every store keeps of a category path: its length and depth, and no NUL (the embedded
    store's string arrays drop a trailing one)."""
    if len(path) > MAX_CATEGORY_LENGTH or path.count("/") >= MAX_CATEGORY_DEPTH:
        raise InputError(
            f"category '{path[:40]}' is too long "
            f"(at most {MAX_CATEGORY_LENGTH} characters, {MAX_CATEGORY_DEPTH} levels)"
        )
    if "\0" in path:
        raise InputError(f"category {path[:40]!r} contains a NUL character")


def category_prefixes(category: str) -> list[str]:
    """``'animals/birds'`` -> ``['animals', 'animals/birds']``: the filters that match it."""
    if not category:
        return []
    parts = category.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def in_category(category: str, path: str) -> bool:
    """Whether an item in ``category`` matches the filter ``path`` (itself or a sub-category)."""
    return category == path or category.startswith(path + "/")


def category_spans(names: Sequence[str], category: str) -> list[tuple[int, int]]:
    """The runs of the sorted ``names`` that the filter ``category`` names: itself, and
    those below it (``p/...``, one run in sorted order, which ``p-x`` may separate from ``p``). None
    for an empty path: items without a category are in no category."""
    path = category.strip("/")
    if not path:
        return []
    itself = (bisect.bisect_left(names, path), bisect.bisect_right(names, path))
    below = (bisect.bisect_left(names, path + "/"), bisect.bisect_left(names, path + "0"))  # "0" follows "/"
    return [span for span in (itself, below) if span[0] < span[1]]


class SortedNames:
    """Category names kept in the order they came (a store numbers them as rows arrive), with their
    sorted order beside, so which of them a filter names is found by bisection. Testing every name
    cost a store's first search in a new category ~0.5 s at 1M distinct categories
    (``benchmarks/categories.py``); sorting them is paid once."""

    def __init__(self, names: Sequence[str]) -> None:
        self.size = len(names)
        self._order = np.array(sorted(range(self.size), key=names.__getitem__), dtype=np.int64)
        self._sorted = [names[i] for i in self._order.tolist()]

    def named(self, category: str) -> np.ndarray:
        """Which names the filter ``category`` names (:func:`in_category` of each), as booleans."""
        named = np.zeros(self.size, dtype=bool)
        for a, b in category_spans(self._sorted, category):
            named[self._order[a:b]] = True
        return named


class CategoryCodes:
    """Each item's category as a code into the catalogue's sorted distinct categories.

    A filter's categories are then found by bisection, not by testing every distinct category: in
    sorted order the categories below ``p`` (``p/...``) lie in one run, and ``p`` itself, which
    ``p-x`` may separate from that run, is looked up on its own. With codes ordered by category, a
    small category's items are a slice or two. Testing each distinct category cost a filtered query
    at 1M items 2-4 ms with 100k leaves and 20-28 ms with 1M (``benchmarks/categories.py``).
    """

    def __init__(self, categories: Sequence[str]) -> None:
        # Numbered in order of first appearance by a dict, then renumbered in sorted order: sorting a
        # million strings (np.unique) took a 1M-item catalogue's first filtered query ~1.5 s more
        # (benchmarks/categories.py).
        first: dict[str, int] = {}
        numbered = (first.setdefault(c, len(first)) for c in categories)
        codes = np.fromiter(numbered, dtype=np.int64, count=len(categories))
        self._sorted: list[str] = sorted(first)
        rank = np.empty(len(first), dtype=np.int64)
        rank[[first[name] for name in self._sorted]] = np.arange(len(first))
        self.codes = rank[codes]
        self.names = np.array(self._sorted, dtype=str)

    def check(self, category: str) -> list[tuple[int, int]]:
        """The runs of sorted distinct categories ``category`` names (:meth:`_spans`); a filter naming
        no item is refused. Paths are matched without outer slashes (as catalogues and stores keep
        them): ``/food/`` names ``food``."""
        spans = self._spans(category)
        if not spans:
            raise InputError(f"no item in category '{category}'")
        return spans

    def mask(self, category: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Which items (all, or ``rows``) are in ``category`` or below it."""
        named = np.zeros(len(self._sorted), dtype=bool)
        for a, b in self.check(category):
            named[a:b] = True
        return named[self.codes if rows is None else self.codes[rows]]

    def rows(self, category: str, at_most: int) -> np.ndarray | None:
        """The items of ``category`` (and below it), ascending, when they are at most ``at_most``; else None."""
        order, starts = self._by_category
        spans = [(int(starts[a]), int(starts[b])) for a, b in self._spans(category)]
        if sum(b - a for a, b in spans) > at_most:
            return None
        return np.sort(np.concatenate([order[a:b] for a, b in spans] or [np.zeros(0, dtype=np.int64)]))

    def _spans(self, category: str) -> list[tuple[int, int]]:
        return category_spans(self._sorted, category)

    @cached_property
    def _by_category(self) -> tuple[np.ndarray, np.ndarray]:
        """Items ordered by category (ascending within each) and where each distinct category's items start."""
        order = np.argsort(self.codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(self.codes, minlength=len(self.names)))])
        return order, starts
