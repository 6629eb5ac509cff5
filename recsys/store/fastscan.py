"""Fast-scan product codes of a large IVF index's lists, to find an unfiltered search's candidates.

Scanning 8-bit scalar codes is bound by arithmetic: ~75 ns a 384-d row on one core, so an
unfiltered search probing 64 of 2,116 lists at 1M items (30k rows) took ~3 ms, and rrf's four
searches ~15 ms of a query's CPU. FAISS's fast-scan kernels score 4-bit product codes (one per two
dimensions) from lookup tables held in SIMD registers, at a few ns a row. Their scores are rough, so
they only pick candidates: ``depth`` rows (at least 2 per hit wanted), of which the scalar codes then
score just those, walking the same lists with a bitmap of the candidates. On validation queries at
1M items (384-d, nprobe 64 / 128) the hits were the scalar search's (recall@10 0.950 / 0.965 against
exact, both ways; of the top 500, 0.943 / 0.970 against 0.946 / 0.975) in 1.6 / 2.0 ms instead of
2.5 / 5.0 ms.

The codes are built from the index's own codes (decoded, the residual to each row's list centroid
encoded again), on the same lists, so no vector is read again and the plan of a search is the
index's. They are a copy in memory (4 bits per dimension: an eighth of the vectors' float32), built
in the background when a large index is first searched without a filter, and saved beside the
index file they were built from (:func:`save`), so the next process that opens it reads them
instead of building them again (~13 s of a core per 1M 384-d rows; minutes at 10M).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recsys.store import derived, partition

#: The kind of file :func:`save` writes beside an index (:mod:`recsys.store.derived`).
SAVED_KIND = "fastscan"

#: Rows the product quantizer's 16 centroids per pair of dimensions are trained on.
TRAINING_ROWS = 65_536
#: Candidates the fast-scan codes pick per hit wanted (at least ``AnnParams.fast_scan_depth``). On
#: validation queries at 1M items (384-d, 500 hits) 2 per hit held 0.96 of the scalar search's top 500
#: and 4 held 0.997, yet rrf's recall@10 without a filter was 0.979 and 0.980, and 2 took its mean
#: from 9.58 to 8.86 ms (the candidates' heap grows with their number). ``early`` and ``late`` want
#: 100 hits a search: ``fast_scan_depth`` decides theirs.
CANDIDATES_PER_HIT = 2


class FastScanLists:
    """Fast-scan product codes of every row of an IVF index, on that index's lists (ids are rows)."""

    def __init__(self, index) -> None:  # noqa: ANN001 (faiss has no type stubs)
        self.index = index

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def candidates(self, x: np.ndarray, depth: int, lists: np.ndarray, scores: np.ndarray, sel=None) -> np.ndarray:  # noqa: ANN001
        """Rows of up to ``depth`` best rough scores for query ``x`` (1, d) among those FAISS selector
        ``sel`` lets through (None: all) on the ``lists`` whose centroids score ``scores`` against it."""
        import faiss

        found = np.empty((1, depth), dtype=np.float32)
        ids = np.empty((1, depth), dtype=np.int64)
        params = faiss.SearchParametersIVF(sel=sel, nprobe=len(lists))
        ptr, lists = faiss.swig_ptr, np.ascontiguousarray(lists[None, :], dtype=np.int64)
        scores = np.ascontiguousarray(scores[None, :], dtype=np.float32)
        self.index.search_preassigned_c(1, ptr(x), depth, ptr(lists), ptr(scores), ptr(found), ptr(ids), False, params)
        return ids[0][ids[0] >= 0]


def build(whole, centroids: np.ndarray, row_lists: np.ndarray) -> FastScanLists | None:  # noqa: ANN001
    """Fast-scan codes of every row of the IVF index ``whole`` (flat or scalar codes) whose centroids
    are ``centroids`` and whose list of each row is ``row_lists``; None for an index of another kind.
    A list at a time, so the memory held is the new codes (at 1M 384-d rows, copying every code
    first held 0.4 GB more, and the freed pages made the next queries fault, 100-200 ms)."""
    import faiss

    whole = faiss.downcast_index(whole)
    total = int(np.count_nonzero(row_lists >= 0))
    if not partition.decodable(whole) or not total:
        return None
    d = int(whole.d)
    quantizer = faiss.IndexFlat(d, whole.metric_type)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index = faiss.IndexIVFPQFastScan(quantizer, d, whole.nlist, d // 2 if d % 2 == 0 else d, 4, whole.metric_type)
    index.own_fields = True  # the index frees its quantizer
    quantizer.this.disown()
    index.by_residual = True
    step = max(1, math.ceil(total / TRAINING_ROWS))  # every step-th row of each list
    sample = [residuals[::step].copy() for _, _, residuals in _lists(whole, centroids)]  # not views of every row
    index.pq.train(np.ascontiguousarray(np.concatenate(sample), dtype=np.float32))
    index.is_trained = True
    packer = index.get_CodePacker()
    for number, ids, residuals in _lists(whole, centroids):
        codes = index.pq.compute_codes(np.ascontiguousarray(residuals, dtype=np.float32))
        _add_list(index, packer, number, ids, codes)
    index.ntotal = total
    return FastScanLists(index)


def _lists(whole, centroids: np.ndarray, past: FastScanLists | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:  # noqa: ANN001, E501
    """(number, row ids, residuals to the centroid) of each list of IVF index ``whole`` holding rows
    (those past the rows ``past`` holds on that list, if given)."""
    import faiss

    lists, width = whole.invlists, whole.code_size
    for number in range(whole.nlist):
        size, have = lists.list_size(number), past.index.invlists.list_size(number) if past is not None else 0
        if size < have:
            raise ValueError(f"list {number} holds {size} rows, the fast-scan codes {have}")
        if size > have:
            ids = faiss.rev_swig_ptr(lists.get_ids(number), size)[have:]
            codes = faiss.rev_swig_ptr(lists.get_codes(number), size * width).reshape(size, width)[have:]
            numbers = np.full(size - have, number)
            yield number, ids, partition.decoder(whole, centroids, numbers, codes, residuals=True)(slice(None))


def _add_list(index, packer, number: int, ids: np.ndarray, codes: np.ndarray) -> None:  # noqa: ANN001
    """Put ``codes`` (of the rows ``ids``) at the end of list ``number`` of the fast-scan ``index``,
    packed into its blocks of 32 rows by ``packer`` (the index's). FAISS's own add assigns every row
    to a list again (a 1M x 2,116 x 384 product), its add with given lists hands unpacked codes to
    lists that expect packed blocks, and its append to a list that ends in a part-filled block put
    half the codes of a probe in the wrong places: a list that holds rows is packed again whole."""
    import faiss

    ptr, lists = faiss.swig_ptr, index.invlists
    held = lists.list_size(number)
    if held:
        ids = np.concatenate([faiss.rev_swig_ptr(lists.get_ids(number), held), ids])
        codes = np.concatenate([_list_codes(index, packer, number), codes])
        lists.resize(number, 0)
    per_block, block_bytes, width = packer.nvec, packer.block_size, packer.code_size
    n_blocks = -(-len(ids) // per_block)
    padded = np.zeros((n_blocks * per_block, width), dtype=np.uint8)
    padded[: len(ids)] = codes
    packed = np.empty(n_blocks * block_bytes, dtype=np.uint8)
    for block in range(n_blocks):
        packer.pack_all(ptr(padded[block * per_block :]), ptr(packed[block * block_bytes :]))
    listed = np.ascontiguousarray(ids, dtype=np.int64)
    lists.add_entries(number, len(ids), ptr(listed), ptr(packed))  # whole packed blocks, copied


def _list_codes(index, packer, number: int) -> np.ndarray:  # noqa: ANN001
    """The codes of list ``number`` of the fast-scan ``index``, unpacked (rows, code bytes)."""
    import faiss

    size, per_block, block_bytes = index.invlists.list_size(number), packer.nvec, packer.block_size
    n_blocks = -(-size // per_block)
    packed = faiss.rev_swig_ptr(index.invlists.get_codes(number), n_blocks * block_bytes)
    flat = np.empty((n_blocks * per_block, packer.code_size), dtype=np.uint8)
    for block in range(n_blocks):
        packer.unpack_all(faiss.swig_ptr(packed[block * block_bytes :]), faiss.swig_ptr(flat[block * per_block :]))
    return flat[:size]


def extend(fast: FastScanLists, whole, centroids: np.ndarray) -> None:  # noqa: ANN001
    """Add to ``fast`` the rows the IVF index ``whole`` (whose centroids are ``centroids``) gained since
    ``fast`` was built from it: an IVF index only appends to its lists, so each list's rows past
    those ``fast`` holds there. A write then costs the codes of its own rows, not a build of all."""
    import faiss

    whole, index = faiss.downcast_index(whole), fast.index
    packer = index.get_CodePacker()
    for number, ids, residuals in _lists(whole, centroids, fast):  # each list read before it grows
        _add_list(index, packer, number, ids, index.pq.compute_codes(np.ascontiguousarray(residuals, dtype=np.float32)))
        index.ntotal += len(ids)


def copy(fast: FastScanLists) -> FastScanLists:
    """A copy of ``fast`` to extend while searches may still read ``fast``."""
    import faiss

    return FastScanLists(faiss.clone_index(fast.index))


def save(fast: FastScanLists, index_file: Path) -> Path | None:
    """Write ``fast`` beside ``index_file``, the saved index it was made from and still matches
    (:mod:`recsys.store.derived`)."""
    return derived.save(index_file, SAVED_KIND, fast.index, "fast-scan codes")


def load(index_file: Path, whole) -> FastScanLists | None:  # noqa: ANN001
    """The codes :func:`save` wrote beside ``index_file`` for the IVF index ``whole`` read from it (or
    grown from it since: :func:`extend` adds its rows), or None."""
    import faiss

    def check(index) -> None:  # noqa: ANN001
        shape = (index.d, index.nlist) if isinstance(index, faiss.IndexIVFPQFastScan) else None
        if shape != (whole.d, whole.nlist) or index.ntotal > whole.ntotal:
            raise ValueError(f"they are not codes of this index's {whole.d}-d rows on its {whole.nlist} lists")

    index = derived.load(index_file, SAVED_KIND, check, "fast-scan codes")
    return None if index is None else FastScanLists(index)
