"""What a category filter costs the engine per query as the category tree grows, and what its
codes cost the first filtered query (built once per catalogue).

Each filtered query asks which of its ~400 candidates lie in the category and whether the category
is small enough to score item by item (``recsys.catalogue.categories.CategoryCodes``). Compared with
testing the filter against every distinct category (``named_by``, as the engine did before), over
catalogues of 1M items whose trees have 1k to 1M leaves (department / aisle / shelf), filters at
each level. Then the embedded store's first search in a new category (``RowTable.selection``): its
names are numbered as rows arrive, so they are sorted once (``SortedNames``) and each new filter
bisects them, where it tested every name before.

    .venv/bin/python benchmarks/categories.py
    .venv/bin/python benchmarks/categories.py --items 100000 --leaves 1000 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.catalogue.categories import CategoryCodes  # noqa: E402
from recsys.errors import InputError  # noqa: E402
from recsys.store.rows import RowTable  # noqa: E402

CANDIDATES = 400
REPEATS = 50


def tree(items: int, leaves: int, rng: np.random.Generator) -> list[str]:
    """Each item's leaf in a three-level tree of ``leaves`` leaves (50 departments, 40 aisles each)."""
    names = [f"dept{i % 50}/aisle{i % 2000}/shelf{i}" for i in range(leaves)]
    return [names[i] for i in rng.integers(0, leaves, items)]


def per_query_ms(fn, *args) -> float:  # noqa: ANN001
    fn(*args)
    start = time.perf_counter()
    for _ in range(REPEATS):
        fn(*args)
    return (time.perf_counter() - start) / REPEATS * 1e3


def named_by(names: np.ndarray | list[str], path: str) -> np.ndarray:
    """Which names the filter names, testing each of them (the engine and store before)."""
    names = np.asarray(names, dtype=str)
    return (names == path) | np.char.startswith(names, path + "/")


def each_distinct(codes: CategoryCodes, counts: np.ndarray, path: str, candidates: np.ndarray, at_most: int) -> bool:
    """The engine before: the filter tested against every distinct category, twice a query."""
    small = int(counts[named_by(codes.names, path)].sum()) <= at_most
    named_by(codes.names, path)[codes.codes[candidates]]
    return small


def bisection(codes: CategoryCodes, path: str, candidates: np.ndarray, at_most: int) -> bool:
    """The engine now (:class:`CategoryCodes`)."""
    small = codes.rows(path, at_most) is not None
    codes.mask(path, candidates)
    return small


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--leaves", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--exact-max", type=int, default=2_000, help="the engine's EXACT_CATEGORY_MAX")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.items:,} items; per filtered query: the small-category test and the mask of {CANDIDATES} candidates")
    print(f"{'leaves':>10} {'filter':>8} {'each distinct ms':>17} {'bisection ms':>13}")
    for leaves in args.leaves:
        cats = tree(args.items, leaves, rng)
        start = time.perf_counter()
        codes = CategoryCodes(cats)
        built = time.perf_counter() - start
        start = time.perf_counter()
        np.unique(np.asarray(cats, dtype=str), return_inverse=True)
        print(f"{leaves:>10,} codes built in {built:.2f} s (np.unique: {time.perf_counter() - start:.2f} s)")
        candidates = np.sort(rng.choice(args.items, CANDIDATES, replace=False))
        counts = np.bincount(codes.codes, minlength=len(codes.names))
        for level, path in (("dept", "dept3"), ("aisle", "dept3/aisle53"), ("shelf", "dept3/aisle53/shelf53")):
            try:
                codes.check(path)
            except InputError:  # no item drew this leaf
                continue

            before = per_query_ms(each_distinct, codes, counts, path, candidates, args.exact_max)
            now = per_query_ms(bisection, codes, path, candidates, args.exact_max)
            assert each_distinct(codes, counts, path, candidates, args.exact_max) == bisection(
                codes, path, candidates, args.exact_max
            )
            print(f"{leaves:>10,} {level:>8} {before:>17.3f} {now:>13.3f}")
        store_first_searches(cats, rng)
    return 0


def store_first_searches(cats: list[str], rng: np.random.Generator) -> None:
    """The mask of the store's selection for a category it has not been asked for yet, each way."""
    n = len(cats)
    table = RowTable.bulk(["v"], [str(i) for i in range(n)], cats, [""] * n, {"v": np.ones(n, bool)}, np.zeros(0, int))
    names = sorted(set(cats))
    if len(names) < 2:
        return
    paths = [names[i] for i in rng.choice(len(names), min(6, len(names)), replace=False)]
    start = time.perf_counter()
    table.selection(paths[0], ())
    first = time.perf_counter() - start
    ways = {
        "each distinct": lambda path: table.alive & named_by(table.cat_names, path)[table.cat_codes],
        "bisection": lambda path: table.alive & table._sorted_names().named(path)[table.cat_codes],
    }
    ms = {}
    for way, mask in ways.items():
        start = time.perf_counter()
        for path in paths[1:]:
            assert np.array_equal(mask(path), table.selection(path, ()).mask)
        ms[way] = (time.perf_counter() - start) / (len(paths) - 1) * 1e3
    print(
        f"{'':>10} store, a new category's mask: each distinct {ms['each distinct']:.1f} ms; bisection "
        f"{ms['bisection']:.1f} ms (the first selection, sorting {len(table.cat_names):,} names, {first:.2f} s)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
