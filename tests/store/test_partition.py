"""A category's own IVF lists, built from a whole index's codes."""

import faiss
import numpy as np
import pytest

from recsys.store import partition
from recsys.store.synthetic import synthetic_arrays

DIM = 24
#: Recall@10 with 5 of 20 lists probed: 0.72-0.73 for these lists (whatever the codes), 0.79 for
#: lists k-means trained on the rows themselves, ~0.25 for lists that ignore where rows lie.
RECALL_QUARTER = 0.65


def whole_index(codes: str, n: int = 4_000, nlist: int = 64, residual: bool = True):
    vectors = synthetic_arrays(n, {"v": DIM}, n_categories=6, seed=2).vectors["v"]
    index = faiss.index_factory(DIM, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
    if codes != "Flat":
        faiss.downcast_index(index).by_residual = residual
    index.train(vectors)
    index.add_with_ids(vectors, np.arange(n, dtype=np.int64))
    ivf = faiss.extract_index_ivf(index)
    centroids = faiss.rev_swig_ptr(faiss.downcast_index(ivf.quantizer).get_xb(), ivf.nlist * DIM)
    row_lists = np.full(n, -1, dtype=np.int32)
    for number in range(ivf.nlist):
        size = ivf.invlists.list_size(number)
        row_lists[faiss.rev_swig_ptr(ivf.invlists.get_ids(number), size)] = number
    # the IVF part is a pointer into the index: the caller holds the index while it uses it
    return index, ivf, centroids.reshape(ivf.nlist, DIM).copy(), row_lists, vectors


def own_rows(lists: partition.CategoryLists) -> tuple[np.ndarray, np.ndarray]:
    """Every row id the lists hold, and the list each sits in."""
    index = lists.index
    ids, where = [], []
    for number in range(index.nlist):
        size = index.invlists.list_size(number)
        ids.append(faiss.rev_swig_ptr(index.invlists.get_ids(number), size).copy())
        where.append(np.full(size, number))
    return np.concatenate(ids), np.concatenate(where)


@pytest.mark.parametrize(("codes", "residual"), [("SQ8", True), ("SQ8", False), ("SQfp16", True), ("Flat", False)])
def test_own_lists_hold_the_rows_given_once_each_and_score_them_as_the_codes_do(codes, residual):
    _index, ivf, centroids, row_lists, vectors = whole_index(codes, residual=residual)
    rows = np.flatnonzero(np.arange(len(vectors)) % 3 == 0)
    lists = partition.build(ivf, centroids, row_lists, rows, nlist=20)
    assert lists is not None and lists.nlist == 20 and lists.ntotal == len(rows)
    ids, where = own_rows(lists)
    assert np.array_equal(np.sort(ids), rows)
    assert np.array_equal(np.bincount(where, minlength=20), lists.sizes)
    mask = np.zeros(len(vectors), dtype=bool)
    mask[rows[:50]] = True
    assert lists.counts(mask).sum() == 50 and lists.counts(mask[:10]).sum() == np.count_nonzero(rows[:50] < 10)
    # probed whole, the lists score every row as its vector does, to the codes' rounding
    query = vectors[1]
    found, scores = lists.search(query[None, :], len(rows), nprobe=20)
    assert np.array_equal(np.sort(found), rows)
    exact = vectors[found] @ query
    np.testing.assert_allclose(scores, exact, atol={"SQ8": 0.03, "SQfp16": 1e-3, "Flat": 1e-5}[codes])
    # clustered on the rows: a quarter of the lists probed finds most of each query's exact top 10
    queries = synthetic_arrays(30, {"v": DIM}, n_categories=6, seed=3).vectors["v"]
    found = [set(lists.search(q[None, :], 10, nprobe=5)[0].tolist()) for q in queries]
    truth = [set(rows[np.argsort(-(vectors[rows] @ q))[:10]].tolist()) for q in queries]
    assert np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)]) >= RECALL_QUARTER


def test_nothing_is_built_for_no_rows_or_another_kind_of_index():
    _index, ivf, centroids, row_lists, vectors = whole_index("SQ8")
    assert partition.build(ivf, centroids, row_lists, np.zeros(0, dtype=np.int64), nlist=8) is None
    pq = faiss.index_factory(DIM, "IVF16,PQ4", faiss.METRIC_INNER_PRODUCT)
    pq.train(vectors)
    assert partition.build(faiss.extract_index_ivf(pq), centroids[:16], row_lists, np.arange(10), nlist=4) is None


def test_more_lists_than_rows_gives_a_list_a_row():
    _index, ivf, centroids, row_lists, _ = whole_index("SQ8")
    lists = partition.build(ivf, centroids, row_lists, np.array([3, 7, 11]), nlist=50)
    assert lists.nlist == 3 and lists.ntotal == 3


@pytest.mark.parametrize("codes", ["SQ8", "Flat"])
def test_lists_extended_by_rows_they_lack_hold_every_row_once_and_score_them_as_the_codes_do(codes):
    _index, ivf, centroids, row_lists, vectors = whole_index(codes)
    rows = np.flatnonzero(np.arange(len(vectors)) % 3 == 0)
    earlier = partition.build(ivf, centroids, row_lists, rows[: len(rows) // 2], nlist=20)
    copied = partition.copy(earlier)
    lists = partition.extend(copied, ivf, centroids, row_lists, rows)
    assert earlier.ntotal == len(rows) // 2  # the copy grew, not the lists searches may still read
    ids, where = own_rows(lists)
    assert np.array_equal(np.sort(ids), rows) and np.array_equal(np.bincount(where, minlength=20), lists.sizes)
    query = vectors[1]
    found, scores = lists.search(query[None, :], len(rows), nprobe=20)
    error = np.abs(scores - vectors[found] @ query)  # as built (0.03), but for the odd added row whose
    assert np.quantile(error, 0.99) <= 0.03 and error.max() <= 0.1  # residual lies past the codes' ranges
    assert partition.extend(lists, ivf, centroids, row_lists, rows) is lists  # nothing lacking: as it was
    few = partition.build(ivf, centroids, row_lists, rows[:100], nlist=4)
    assert partition.extend(few, ivf, centroids, row_lists, rows) is None  # made for far fewer: built anew
    assert few.ntotal == 100
