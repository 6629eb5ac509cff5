"""Category paths (``animals/birds``) and the filters that name them.

A filter names a category and every category below it. The engine and the vector stores both
answer such filters, so the rules live here once: how a path is written, which categories a filter
names, and, for a million items, how a filter is tested once per distinct category (a few
hundred) rather than once per item.
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


def named_by(categories: Sequence[str] | np.ndarray, path: str) -> np.ndarray:
    """Which of ``categories`` the filter ``path`` names (:func:`in_category` of each), as booleans."""
    names = np.asarray(categories, dtype=str)
    if not names.size:
        return np.zeros(0, dtype=bool)
    return (names == path) | np.char.startswith(names, path + "/")


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
        """The runs of sorted distinct categories ``category`` names: itself, and those below it
        (none for an empty path: items without a category are in no category)."""
        path, names = category.strip("/"), self._sorted
        if not path:
            return []
        at = bisect.bisect_left(names, path)
        itself = [(at, at + 1)] if at < len(names) and names[at] == path else []
        below = (bisect.bisect_left(names, path + "/"), bisect.bisect_left(names, path + "0"))  # "0" follows "/"
        return itself + ([below] if below[0] < below[1] else [])

    @cached_property
    def _by_category(self) -> tuple[np.ndarray, np.ndarray]:
        """Items ordered by category (ascending within each) and where each distinct category's items start."""
        order = np.argsort(self.codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(self.codes, minlength=len(self.names)))])
        return order, starts
