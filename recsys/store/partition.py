"""A top-level category's own IVF lists, clustered on that category's rows alone.

Under a category filter an IVF search of the whole index plans over every list (one product with
all centroids) and walks a few hundred of them for a handful of the category's rows each: at 1M
items a 2-12% category's rows lie in nearly all 2,116 lists of a field. Lists of the category's
own, sized for its row count (4 sqrt(n), as a catalogue of only those items would have), hold the
same rows in a few dozen lists probed: a 384-d filtered search of 500 items fell from ~1.2 to
~0.35 ms (one core) on validation queries at 1M items.

The lists are built from the whole index's codes, so no vector is read again: each row is decoded,
given to the nearest of the category's centroids (the whole index's centroids holding most of its
rows, moved twice to the mean of their rows), and encoded again against that centroid with scalar
codes trained on the category's own residuals. Rows are decoded a list at a time, once per pass,
so the memory held is the new codes, not the vectors.
"""

from __future__ import annotations

import math

import numpy as np

#: Centroids each of the whole index's lists may hand its rows to: the category centroids nearest
#: to it. Rows were clustered around that list's centroid, so their own nearest lies among these.
NEAREST_CENTROIDS = 8
#: Rows the category's scalar codes are trained on (their per-dimension ranges settle long before).
TRAINING_ROWS = 65_536
#: Rows decoded at a time (with their candidate centroids: ~50 MB at 384-d).
BLOCK_ROWS = 4096


class CategoryLists:
    """A category's own IVF index (its own quantizer and codes; ids are row numbers)."""

    def __init__(self, index) -> None:  # noqa: ANN001 (faiss has no type stubs)
        self.index = index

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def nlist(self) -> int:
        return int(self.index.nlist)

    def search(self, x: np.ndarray, k: int, nprobe: int, sel) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        """Up to ``k`` (row, score) pairs for the query ``x`` (1, d), probing the ``nprobe`` nearest
        lists; ``sel`` (a FAISS selector, or None when every row of the category is allowed)."""
        import faiss

        sp = faiss.SearchParametersIVF(sel=sel, nprobe=int(max(1, min(nprobe, self.nlist))))
        scores, ids = self.index.search(x, k, params=sp)
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]


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
        pick = keep[faiss.rev_swig_ptr(lists.get_ids(number), size)]
        n = int(np.count_nonzero(pick))
        ids[at : at + n] = faiss.rev_swig_ptr(lists.get_ids(number), size)[pick]
        codes[at : at + n] = faiss.rev_swig_ptr(lists.get_codes(number), size * width).reshape(size, width)[pick]
        numbers[at : at + n] = number
        at += n
    return ids[:at], numbers[:at], codes[:at]


def _blocks(n: int) -> list[slice]:
    return [slice(start, min(n, start + BLOCK_ROWS)) for start in range(0, n, BLOCK_ROWS)]


def _means(vectors_of, assign: np.ndarray, previous: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Centroids moved to the mean of the rows ``assign`` gives them (``vectors_of(block)`` decodes
    a block of rows); one holding no row stays where it was."""
    sums, counts = np.zeros_like(previous), np.bincount(assign, minlength=len(previous))
    for block in _blocks(len(assign)):
        order = np.argsort(assign[block], kind="stable")
        placed = assign[block][order]
        starts = np.flatnonzero(np.r_[True, placed[1:] != placed[:-1]])
        sums[placed[starts]] += np.add.reduceat(vectors_of(block)[order], starts, axis=0)
    out = previous.copy()
    held = counts > 0
    out[held] = sums[held] / counts[held, None]
    return out


def build(whole, centroids: np.ndarray, row_lists: np.ndarray, rows: np.ndarray, nlist: int) -> CategoryLists | None:  # noqa: ANN001
    """Own IVF lists for ``rows`` (the category's rows the whole index holds), ``nlist`` of them, from
    the whole IVF index ``whole`` (scalar-quantizer or flat codes) whose centroids are ``centroids``
    and whose list of each row is ``row_lists``; None for an index of another kind."""
    import faiss

    whole = faiss.downcast_index(whole)
    flat = isinstance(whole, faiss.IndexIVFFlat)
    if not (flat or isinstance(whole, faiss.IndexIVFScalarQuantizer)) or not len(rows):
        return None
    ids, numbers, whole_codes = _gathered(whole, row_lists, rows)

    def vectors_of(block: slice) -> np.ndarray:
        if flat:
            return whole_codes[block].view(np.float32)
        vectors = whole.sq.decode(whole_codes[block])
        if whole.by_residual:
            vectors += centroids[numbers[block]]
        return vectors

    nlist = max(1, min(nlist, len(ids)))
    held = np.bincount(numbers, minlength=whole.nlist)
    own = np.ascontiguousarray(centroids[np.argsort(-held, kind="stable")[:nlist]], dtype=np.float32)
    # each whole list's candidates among the category's centroids (inner product, the index's metric)
    near = centroids @ own.T
    if nlist > NEAREST_CENTROIDS:
        near_ids = np.argpartition(-near, NEAREST_CENTROIDS - 1, axis=1)[:, :NEAREST_CENTROIDS]
    else:
        near_ids = np.broadcast_to(np.arange(nlist), (len(centroids), nlist))
    # rows start at the centroid their whole list is nearest, which moves to their mean; then each
    # row goes to the nearest of its list's candidates, and the centroids to the new means
    assign = np.argmax(near, axis=1)[numbers]
    own = _means(vectors_of, assign, own)
    for block in _blocks(len(ids)):
        vectors, lists = vectors_of(block), numbers[block]
        starts = np.flatnonzero(np.r_[True, lists[1:] != lists[:-1], True])  # rows come a whole list at a time
        for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
            candidates = near_ids[lists[a]]
            assign[block.start + a : block.start + b] = candidates[np.argmax(vectors[a:b] @ own[candidates].T, axis=1)]
    own = _means(vectors_of, assign, own)

    quantizer = faiss.IndexFlat(whole.d, whole.metric_type)
    quantizer.add(own)
    if flat:
        index = faiss.IndexIVFFlat(quantizer, whole.d, nlist, whole.metric_type)
        codes = whole_codes
    else:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, whole.d, nlist, whole.sq.qtype, whole.metric_type, whole.by_residual
        )

        def encoded(block: slice) -> np.ndarray:
            vectors = vectors_of(block)
            return vectors - own[assign[block]] if whole.by_residual else vectors

        # the codes' ranges, from every step-th row
        step = max(1, math.ceil(len(ids) / TRAINING_ROWS))
        index.sq.rangestat, index.sq.rangestat_arg = whole.sq.rangestat, whole.sq.rangestat_arg
        index.sq.train(np.ascontiguousarray(np.concatenate([encoded(b)[::step] for b in _blocks(len(ids))])))
        codes = np.concatenate([index.sq.compute_codes(encoded(block)) for block in _blocks(len(ids))])
    index.is_trained = True
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(nlist + 1))
    for number in np.flatnonzero(np.diff(bounds)).tolist():
        at = order[bounds[number] : bounds[number + 1]]
        chosen_ids, chosen_codes = np.ascontiguousarray(ids[at]), np.ascontiguousarray(codes[at])
        index.invlists.add_entries(number, len(at), faiss.swig_ptr(chosen_ids), faiss.swig_ptr(chosen_codes))
    index.ntotal = len(ids)
    return CategoryLists(index)
