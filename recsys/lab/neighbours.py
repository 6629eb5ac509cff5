"""Each item's nearest items by cosine: the item-item kNN graphs of FREEDOM and LATTICE.

Every item's neighbours are an all-pairs search, ``n^2 d`` work. numpy's chunked product plus
``argpartition`` spent most of its time in the partition (20k 64-d items: 9.1 s, FAISS's flat
search 1.1 s, one thread), and even FAISS's exact search grows with the square: 100k 384-d items
~166 s, 1M ~4 h. So the search is exact up to :data:`EXACT_UP_TO` items and beyond that an IVF
index of the items themselves (``4 sqrt(n)`` lists, :data:`NPROBE` probed), which stays
deterministic (FAISS's k-means is seeded; HNSW's threaded inserts are not). At 100k items drawn
like lfm2k's MiniLM / vggish / whisper features, 32 lists probed kept recall@10 0.993 / 0.996 /
0.998 of the exact neighbours, 16 lists 0.962 / 0.973 / 0.982 (``benchmarks/item_graph.py --like``).

Whatever the search, its candidates are ranked as :func:`recsys.ranking.top_k` ranks: by a score
computed the same way for each, ties to the lower row. So duplicate items give the same graph
whichever of them the search met first, as long as the items tied at the k-th place are among the
``k +`` :data:`TIE_MARGIN` it returns; past that (many copies of one vector, e.g. an item without
the modality repeated) the search chooses which of them, at no extra cost.
"""

from __future__ import annotations

import math

import numpy as np

from recsys.progress import ProgressLog, StageProgress, fan_out, no_progress, terminal_progress
from recsys.ranking import top_k

#: Items up to which every item's neighbours are found exactly.
EXACT_UP_TO = 50_000
#: IVF lists probed per item past :data:`EXACT_UP_TO` (of ``4 sqrt(n)``; see the module's docstring).
NPROBE = 32
#: Candidates searched beyond ``k``, so that items tied at the k-th place are all seen.
TIE_MARGIN = 8
#: Bytes of gathered candidate vectors held at once.
BLOCK_BYTES = 64 * 2**20


def nearest_items(
    unit_rows: np.ndarray, k: int, exact: bool | None = None, progress: StageProgress | None = None
) -> np.ndarray:
    """``(n, min(k, n))`` row numbers: each row's ``k`` nearest rows by inner product (the row itself
    among them unless it has more than ``k`` duplicates), best first, ties to the lower row.
    ``exact``: force the exact search (True) or the IVF one (False); by default exact up to
    :data:`EXACT_UP_TO` rows. ``progress(stage, done, total)`` hears of the rows searched; by
    default the IVF search, minutes at a million items, shows a bar on a terminal and log lines
    with rate and ETA otherwise (:mod:`recsys.progress`)."""
    x = np.ascontiguousarray(unit_rows, dtype=np.float32)
    n, dim = x.shape
    k = min(k, n)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    exact = n <= EXACT_UP_TO if exact is None else exact
    if progress is None:
        progress = no_progress if exact else fan_out(terminal_progress(), ProgressLog())
    stage = f"nearest items ({'exact' if exact else 'IVF'} search of {n:,} items)"
    progress(stage, 0, n)  # the IVF index's training comes first
    index = _index(x, exact)
    wanted = min(n, k + TIE_MARGIN)
    block = max(1, BLOCK_BYTES // (4 * wanted * max(1, dim)))
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        rows = x[start : start + block]
        _, found = index.search(rows, wanted)
        out[start : start + len(rows)] = _ranked(rows, x, found, k)
        progress(stage, start + len(rows), n)
    short = np.flatnonzero((out < 0).any(axis=1))
    if short.size:  # the probed lists held fewer than k items: search those rows exactly
        _, found = _index(x, True).search(x[short], wanted)
        out[short] = _ranked(x[short], x, found, k)
    return out


def _index(x: np.ndarray, exact: bool):  # noqa: ANN202 - a FAISS index
    import faiss

    n, dim = x.shape
    if exact:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = max(1, min(n // 8, int(4 * math.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = 64  # k-means on a sample: the lists only need to be coherent
        index.cp.min_points_per_centroid = 1  # few items a list (a forced IVF search of a few items) is fine
        index.train(x)
        index.nprobe = min(NPROBE, nlist)
    index.add(x)
    return index


def _ranked(rows: np.ndarray, x: np.ndarray, found: np.ndarray, k: int) -> np.ndarray:
    """The best ``k`` of each row's candidates ``found`` (-1: none), rescored with one einsum so equal
    vectors score equal, in ascending row order so that ties go to the lower row (-1 where fewer)."""
    found = np.where(found < 0, np.iinfo(np.int64).max, found)
    found.sort(axis=1)
    missing = found == np.iinfo(np.int64).max
    found[missing] = 0
    scores = np.einsum("nd,nkd->nk", rows, x[found])
    scores[missing] = -np.inf
    order = top_k(scores, k)
    best = np.take_along_axis(found, order, axis=1)
    best[np.take_along_axis(missing, order, axis=1)] = -1
    return best
