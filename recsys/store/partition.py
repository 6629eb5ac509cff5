"""A top-level category's own IVF lists, clustered on that category's rows alone.

Under a category filter an IVF search of the whole index plans over every list (one product with
all centroids) and walks a few hundred of them for a handful of the category's rows each: at 1M
items a 2-12% category's rows lie in nearly all 2,116 lists of a field. Lists of the category's
own, sized for its row count (4 sqrt(n), as a catalogue of only those items would have), hold the
same rows in a few dozen lists probed: a 384-d filtered search of 500 items fell from ~1.2 to
~0.4 ms (one core) on validation queries at 1M items.

The lists are built from the whole index's codes, so no vector is read again. The category's
centroids start as the whole index's centroids holding most of its rows, each moved to the mean
of the whole lists nearest it; each row is decoded and given to the nearest of the few of them
nearest its old list; the centroids move to their rows' means; the rows are encoded again against
them with scalar codes trained on the category's own residuals. Rows are decoded a block at a
time, once per pass, so the memory held is the new codes, not the vectors.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsys.store import derived

#: Centroids each of the whole index's lists may hand its rows to: the category centroids nearest
#: to it. Rows were clustered around that list's centroid, so their own nearest lies among these.
NEAREST_CENTROIDS = 8
#: Rows the category's scalar codes are trained on (their per-dimension ranges settle long before).
TRAINING_ROWS = 16_384
#: Rows decoded at a time (6 MB of float32 at 384-d).
BLOCK_ROWS = 4096


class CategoryLists:
    """A category's own IVF index (its own quantizer and codes; ids are row numbers), with its
    centroids and the list of each of its rows, to plan a search over them as over the index's."""

    def __init__(self, index, centroids: np.ndarray, rows: np.ndarray, lists: np.ndarray) -> None:  # noqa: ANN001
        self.index = index
        self.centroids = centroids
        self._rows = rows
        self._lists = lists
        self.sizes = np.bincount(lists, minlength=self.nlist)

    @classmethod
    def of(cls, index) -> CategoryLists:  # noqa: ANN001
        """The lists of a category's own IVF index as :func:`build` made it (read back from a file)."""
        import faiss

        quantizer = faiss.downcast_index(index.quantizer)  # owned by ``index``, which this keeps
        if not isinstance(quantizer, faiss.IndexFlat) or quantizer.ntotal != index.nlist:
            raise ValueError("its quantizer is not one centroid per list")
        centroids = faiss.rev_swig_ptr(quantizer.get_xb(), index.nlist * index.d).reshape(index.nlist, index.d)
        sizes = [index.invlists.list_size(number) for number in range(index.nlist)]
        rows = [faiss.rev_swig_ptr(index.invlists.get_ids(n), size) for n, size in enumerate(sizes) if size]
        rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        lists = np.repeat(np.arange(index.nlist, dtype=np.int32), sizes)
        return cls(index, centroids.copy(), rows.copy(), lists)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def nlist(self) -> int:
        return int(self.index.nlist)

    def search(self, x: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` (row, score) pairs for the query ``x`` (1, d) from its ``nprobe`` nearest lists
        (every row qualifies, so nothing is counted: on validation queries at 1M items a 384-d
        search of 500 items took 0.47 ms so, 0.64-0.97 ms planned as a filtered search is)."""
        import faiss

        scores, ids = self.index.search(x, k, params=faiss.SearchParametersIVF(nprobe=min(nprobe, self.nlist)))
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def built_from(self, members: np.ndarray) -> np.ndarray:
        """The category's rows as these lists stand for them: ``members`` (its rows now, a mask), plus
        rows the lists hold that it lacks (deleted since lists read back from a file were saved). A
        search whose filter lets exactly these rows through walks the lists without testing rows."""
        inside = self._rows < members.shape[0]
        if not inside.all():  # rows past the mask: no filter is ever this one
            return np.zeros(0, dtype=bool)
        lacking = self._rows[~members[self._rows]]
        if not lacking.size:
            return members
        out = members.copy()
        out[lacking] = True
        return out

    def counts(self, mask: np.ndarray) -> np.ndarray:
        """Rows per list that ``mask`` (over all rows) lets through."""
        inside = self._rows < mask.shape[0]
        kept = np.zeros(len(self._rows), dtype=bool)
        kept[inside] = mask[self._rows[inside]]
        return np.bincount(self._lists[kept], minlength=self.nlist)


def _gathered(whole, row_lists: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Ids, whole-index list numbers and codes of ``rows``, a list at a time (codes are copied, not decoded)."""
    import faiss

    held = np.bincount(row_lists[rows], minlength=whole.nlist)
    keep = np.zeros(row_lists.size, dtype=bool)
    keep[rows] = True
    lists, width = whole.invlists, whole.code_size
    ids, numbers, codes = (
        np.empty(len(rows), np.int64),
        np.empty(len(rows), np.int64),
        np.empty((len(rows), width), np.uint8),
    )
    at = 0
    for number in np.flatnonzero(held).tolist():
        size = lists.list_size(number)
        listed = faiss.rev_swig_ptr(lists.get_ids(number), size)
        pick = keep[listed]
        n = int(np.count_nonzero(pick))
        ids[at : at + n] = listed[pick]
        codes[at : at + n] = faiss.rev_swig_ptr(lists.get_codes(number), size * width).reshape(size, width)[pick]
        numbers[at : at + n] = number
        at += n
    return ids[:at], numbers[:at], codes[:at]


def _blocks(n: int) -> list[slice]:
    return [slice(start, min(n, start + BLOCK_ROWS)) for start in range(0, n, BLOCK_ROWS)]


def decodable(whole) -> bool:  # noqa: ANN001
    """Whether the rows of IVF index ``whole`` can be decoded from its codes here (flat or scalar codes)."""
    import faiss

    return isinstance(whole, faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer)


def decoder(
    whole, centroids: np.ndarray, numbers: np.ndarray, codes: np.ndarray, residuals: bool = False  # noqa: ANN001
) -> Callable[[slice | np.ndarray], np.ndarray]:
    """The vectors of some of ``codes`` (rows of the IVF index ``whole``, on lists ``numbers``, whose
    centroids are ``centroids``) as the index holds them, or (``residuals``) less their list's centroid."""
    import faiss

    flat = isinstance(whole, faiss.IndexIVFFlat)
    residual_codes = not flat and whole.by_residual

    def vectors_of(block: slice | np.ndarray) -> np.ndarray:
        vectors = codes[block].view(np.float32) if flat else whole.sq.decode(codes[block])
        if residual_codes != residuals:
            sign = -1.0 if residuals else 1.0
            vectors = vectors + sign * centroids[numbers[block]]
        return vectors

    return vectors_of


def _add_rows(sums: np.ndarray, vectors: np.ndarray, assign: np.ndarray) -> None:
    """Add each of ``vectors`` to its centroid's row of ``sums`` (``assign`` says which)."""
    order = np.argsort(assign, kind="stable")
    placed = assign[order]
    starts = np.flatnonzero(np.r_[True, placed[1:] != placed[:-1]])
    sums[placed[starts]] += np.add.reduceat(vectors[order], starts, axis=0)


def build(whole, centroids: np.ndarray, row_lists: np.ndarray, rows: np.ndarray, nlist: int) -> CategoryLists | None:  # noqa: ANN001
    """Own IVF lists for ``rows`` (the category's rows the whole index holds), ``nlist`` of them, from
    the whole IVF index ``whole`` (scalar-quantizer or flat codes) whose centroids are ``centroids``
    and whose list of each row is ``row_lists``; None for an index of another kind."""
    import faiss

    whole = faiss.downcast_index(whole)
    flat = isinstance(whole, faiss.IndexIVFFlat)
    if not decodable(whole) or not len(rows):
        return None
    ids, numbers, whole_codes = _gathered(whole, row_lists, rows)
    vectors_of = decoder(whole, centroids, numbers, whole_codes)

    nlist = max(1, min(nlist, len(ids)))
    held = np.bincount(numbers, minlength=whole.nlist)
    own = np.ascontiguousarray(centroids[np.argsort(-held, kind="stable")[:nlist]], dtype=np.float32)
    # each whole list's candidates among the category's centroids (inner product, the index's metric)
    near = centroids @ own.T
    if nlist > NEAREST_CENTROIDS:
        near_ids = np.argpartition(-near, NEAREST_CENTROIDS - 1, axis=1)[:, :NEAREST_CENTROIDS]
    else:
        near_ids = np.broadcast_to(np.arange(nlist), (len(centroids), nlist))
    # each centroid starts at the mean of the whole lists nearest it, weighed by their category rows
    # (nothing decoded: a list's centroid stands for its rows); then each row goes to the nearest
    # of its list's candidates, and the centroids to their rows' means
    first = np.argmax(near, axis=1)
    weights = np.bincount(first, weights=held, minlength=nlist)
    moved = np.zeros_like(own)
    np.add.at(moved, first, held[:, None] * centroids)
    nearest_some = weights > 0
    own[nearest_some] = moved[nearest_some] / weights[nearest_some, None]
    assign, sums = np.empty(len(ids), dtype=np.int64), np.zeros_like(own)
    for block in _blocks(len(ids)):
        vectors, lists = vectors_of(block), numbers[block]
        starts = np.flatnonzero(np.r_[True, lists[1:] != lists[:-1], True])  # rows come a whole list at a time
        for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
            candidates = near_ids[lists[a]]
            assign[block.start + a : block.start + b] = candidates[np.argmax(vectors[a:b] @ own[candidates].T, axis=1)]
        _add_rows(sums, vectors, assign[block])
    counts = np.bincount(assign, minlength=nlist)
    given = counts > 0  # a centroid given no row stays where it was
    own[given] = sums[given] / counts[given, None]

    quantizer = faiss.IndexFlat(whole.d, whole.metric_type)
    quantizer.add(own)
    if flat:
        index = faiss.IndexIVFFlat(quantizer, whole.d, nlist, whole.metric_type)
        codes = whole_codes
    else:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, whole.d, nlist, whole.sq.qtype, whole.metric_type, whole.by_residual
        )

        def encoded(block: slice | np.ndarray) -> np.ndarray:
            vectors = vectors_of(block)
            return vectors - own[assign[block]] if whole.by_residual else vectors

        # the codes' ranges, from every step-th row
        sample = np.arange(0, len(ids), max(1, math.ceil(len(ids) / TRAINING_ROWS)))
        index.sq.rangestat, index.sq.rangestat_arg = whole.sq.rangestat, whole.sq.rangestat_arg
        index.sq.train(np.ascontiguousarray(encoded(sample)))
        codes = np.concatenate([index.sq.compute_codes(encoded(block)) for block in _blocks(len(ids))])
    index.is_trained = True
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(nlist + 1))
    for number in np.flatnonzero(np.diff(bounds)).tolist():
        at = order[bounds[number] : bounds[number + 1]]
        chosen_ids, chosen_codes = np.ascontiguousarray(ids[at]), np.ascontiguousarray(codes[at])
        index.invlists.add_entries(number, len(at), faiss.swig_ptr(chosen_ids), faiss.swig_ptr(chosen_codes))
    index.ntotal = len(ids)
    return CategoryLists(index, own, ids, assign.astype(np.int32))


def copy(part: CategoryLists) -> CategoryLists:
    """A copy of ``part`` to extend while searches may still read ``part``."""
    import faiss

    return CategoryLists.of(faiss.clone_index(part.index))


def extend(
    part: CategoryLists, whole, centroids: np.ndarray, row_lists: np.ndarray, rows: np.ndarray  # noqa: ANN001
) -> CategoryLists | None:
    """``part`` with the category's ``rows`` (sorted) it lacks added: decoded from the codes of the
    whole IVF index ``whole`` (whose centroids are ``centroids``, its list of each row
    ``row_lists``), each put on the nearest of ``part``'s lists in ``part``'s codes. A write then
    costs its own rows, not the category's build. None when it lacks more rows than it holds: its
    lists and codes were made for far fewer (build them anew)."""
    held = np.sort(part._rows)
    lacking = rows[~np.isin(rows, held, assume_unique=True)]
    if not lacking.size:
        return part
    if lacking.size > held.size:
        return None
    import faiss

    ids, numbers, codes = _gathered(faiss.downcast_index(whole), row_lists, lacking)
    vectors = decoder(faiss.downcast_index(whole), centroids, numbers, codes)(slice(None))
    part.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return CategoryLists.of(part.index)


#: What the kinds of the files of categories' own lists begin with (:mod:`recsys.store.derived`).
SAVED_KINDS = "category"


def _saved_kind(category: str) -> str:
    """The kind of the file (:mod:`recsys.store.derived`) of ``category``'s own lists: a digest of
    its name, which may hold any character."""
    return f"{SAVED_KINDS}{hashlib.sha1(category.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def carry(earlier: Path, index_file: Path) -> int:
    """Every category's own lists saved beside ``earlier``, a file the index now saved as
    ``index_file`` was, beside ``index_file`` too: its reader extends them by the rows they lack
    (:func:`load`, :func:`extend`) instead of building them (an indexing run never searches)."""
    return derived.carry(earlier, index_file, SAVED_KINDS)


def save(part: CategoryLists, index_file: Path, category: str) -> Path | None:
    """Write ``category``'s own lists beside ``index_file``, the saved index they were built from."""
    return derived.save(index_file, _saved_kind(category), part.index, f"own lists of category {category!r}")


def load(index_file: Path, category: str, whole, rows: np.ndarray) -> CategoryLists | None:  # noqa: ANN001
    """``category``'s own lists saved beside ``index_file`` (a file the IVF index ``whole`` was), if
    most of the rows they hold are among its ``rows`` (sorted) now: rows added since are for
    :func:`extend` to add, rows deleted since for the filter (:meth:`CategoryLists.built_from`);
    else None (lists of another category, or of one mostly deleted since)."""
    import faiss

    made: list[CategoryLists] = []
    whole = faiss.downcast_index(whole)

    def check(index) -> None:  # noqa: ANN001
        kinds = faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer
        if not isinstance(index, kinds) or type(index) is not type(whole) or index.d != whole.d:
            raise ValueError(f"they are not lists of this index's {whole.d}-d codes")
        part = CategoryLists.of(index)
        if np.count_nonzero(np.isin(part._rows, rows)) * 2 < len(part._rows):
            raise ValueError("most of the rows they hold are not the category's")
        made.append(part)

    found = derived.load(index_file, _saved_kind(category), check, f"own lists of category {category!r}")
    return made[-1] if found is not None else None
