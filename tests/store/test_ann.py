"""IVF search under filters: lists are probed by where the filter's rows lie, not by its size alone."""

import dataclasses
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.errors import InputError
from recsys.store import open_store, partition
from recsys.store.ann import AnnParams, FieldIndex
from recsys.store.memory import MemoryStore
from recsys.store.synthetic import synthetic_arrays

DIM = 32
#: Category lists built inside the search that needs them, not in the background: what a search
#: finds is then the same whatever the timing (the background builds have tests of their own).
BUILD_IN_SEARCH = {"partition_background": False}


def recall(store, exact, queries, category) -> float:
    found = [set(store.search("v", q, 10, category=category).ids) for q in queries]
    truth = [set(exact.search("v", q, 10, category=category).ids) for q in queries]
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    data = synthetic_arrays(40_000, {"v": DIM}, n_categories=30, seed=21)
    rng = np.random.default_rng(5)
    # "spread": 10% of the items picked at random, so it does not cluster with the vectors at all
    categories = [f"spread/{c}" if rng.random() < 0.1 else c for c in data.categories]
    store = open_store(
        tmp_path_factory.mktemp("ann") / "s", {"v": DIM}, exact_below=1_000, exact_filter_below=0, **BUILD_IN_SEARCH
    )
    store.upsert(data.ids, categories, data.vectors)
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, categories, data.vectors)
    queries = synthetic_arrays(60, {"v": DIM}, n_categories=30, seed=22).vectors["v"]
    return store, exact, queries


@pytest.mark.slow
@pytest.mark.parametrize("category", ["spread", "c01", "c01/s0001", None])
def test_filtered_recall_holds_whether_or_not_the_filter_clusters(stores, category):
    store, exact, queries = stores
    assert recall(store, exact, queries, category) >= 0.95


@pytest.mark.slow
def test_a_clustered_category_probes_fewer_lists_than_a_scattered_one(stores):
    store, _, queries = stores
    index, table = store._indexes["v"], store._table
    params = store.options.ann
    probes = {}
    for category in ("c01", "spread"):
        selection = table.selection(category, ())
        share = table.count("v", selection) / len(table)
        probes[category] = np.mean([index.probe_lists(q[None, :], selection, params)[0].shape[1] for q in queries])
        blind = params.nprobe / share  # what widening by 1 / selectivity would scan
        assert probes[category] >= params.nprobe
        assert probes[category] < blind * 0.9, (category, probes, blind)
    assert probes["c01"] < probes["spread"] * 0.9, probes


def test_filter_probing_is_checked():
    with pytest.raises(InputError, match="filter_probing"):
        AnnParams(filter_probing="sideways")
    assert dataclasses.replace(AnnParams(), filter_probing="widen").filter_probing == "widen"
    for scan in (0, -1.0, float("nan"), "1", True):
        with pytest.raises(InputError, match="partition_scan"):
            AnnParams(partition_scan=scan)
    with pytest.raises(InputError, match="partition_background"):
        AnnParams(partition_background="false")


def partitioned_pair(tmp_path, n=6_000, seed=3, codes="sq8"):
    """The same items in a store that searches categories' own lists, one that walks the whole
    lists, and an exact one. A top-level category holds at most ~2,000 items, so its own lists (at
    most 49) are all probed: the search is then exact over the codes, and re-scoring makes it exact."""
    data = synthetic_arrays(n, {"v": DIM}, n_categories=12, seed=seed)
    made = []
    for share in (0.5, 0.0):
        store = open_store(
            tmp_path / f"s{share}",
            {"v": DIM},
            exact_below=500,
            exact_filter_below=0,
            partition_share=share,
            codes=codes,
            **BUILD_IN_SEARCH,
        )
        store.upsert(data.ids, data.categories, data.vectors)
        made.append(store)
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, data.categories, data.vectors)
    queries = synthetic_arrays(20, {"v": DIM}, n_categories=12, seed=seed + 1).vectors["v"]
    return data, made[0], made[1], exact, queries


def same_top(x, y) -> None:
    """``x`` holds the hits ``y`` holds, in the same order of scores: the local store keeps float16
    vectors, so items whose scores tie to within that rounding may swap places."""
    np.testing.assert_allclose(x.scores, y.scores, rtol=1e-3, atol=1e-3)
    assert {i for i, score in zip(y.ids, y.scores, strict=True) if score > y.scores[-1] + 1e-3} <= set(x.ids)


def same_hits(a, b, queries, **kwargs) -> None:
    for q in queries:
        same_top(a.search("v", q, 10, **kwargs), b.search("v", q, 10, **kwargs))


@pytest.mark.parametrize("codes", ["sq8", "fp16", "flat"])
def test_a_category_searched_through_its_own_lists_finds_the_exact_hits(tmp_path, codes):
    """A category's own lists hold exactly its rows: probed whole, they give the exact hits for
    the category, a sub-category, excluded ids and dead rows, whatever the codes."""
    data, parted, whole, exact, queries = partitioned_pair(tmp_path, codes=codes)
    top = data.categories[0].split("/")[0]
    sub = data.categories[0]
    for kwargs in ({"category": top}, {"category": sub}, {"category": top, "exclude": data.ids[:50]}):
        same_hits(parted, exact, queries, **kwargs)
    for store in (parted, exact):
        store.delete(data.ids[50:400])
    same_hits(parted, exact, queries, category=top)
    index = parted._indexes["v"]
    part = index._partitions[top][1]
    assert part is not None
    assert 0 < part.ntotal < index.ntotal
    assert part.nlist < faiss_nlist(index)
    assert whole._indexes["v"]._partitions == {}


def test_a_whole_category_walks_its_own_lists_without_the_bitmap_whichever_copy_of_its_mask_asks(
    tmp_path, monkeypatch
):
    """A whole category needs no row bitmap on its own lists, also when the table has made its mask
    again (its cache emptied; two searches asking for a new category at once each make one): at 1M
    items a quarter of rrf's searches planned over the lists with the bitmap for that alone. Fewer
    rows (an excluded or deleted item of the category) still take the bitmap."""
    data, parted, _, exact, queries = partitioned_pair(tmp_path)
    top = data.categories[0].split("/")[0]
    members = [i for i, c in zip(data.ids, data.categories, strict=True) if c.split("/")[0] == top]
    planned = []
    original = FieldIndex.probe_lists

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        planned.append(top)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FieldIndex, "probe_lists", counted)
    same_hits(parted, exact, queries[:3], category=top)
    parted._table._category_masks.clear()
    same_hits(parted, exact, queries, category=top)
    assert planned == []
    same_hits(parted, exact, queries[:3], category=top, exclude=members[:5])
    assert len(planned) == 3
    for store in (parted, exact):
        store.delete(members[5:10])
    same_hits(parted, exact, queries[:3], category=top)
    assert len(planned) == 6


def faiss_nlist(index) -> int:
    import faiss

    return faiss.extract_index_ivf(index.index).nlist


def test_a_partition_follows_writes(tmp_path):
    """An upsert (new items, an item moved to another category) drops the own lists built before
    it: the next search sees the new rows and not the moved one."""
    data, parted, _, exact, queries = partitioned_pair(tmp_path)
    top = data.categories[0].split("/")[0]
    other = next(c for c in data.categories if not c.startswith(top + "/") and c != top)
    q = queries[0]
    parted.search("v", q, 10, category=top)
    moved = parted.search("v", q, 1, category=top).ids[0]
    for store in (parted, exact):
        store.upsert([moved, "new"], [other, top], {"v": np.stack([data.vectors["v"][0], q])})
    got = parted.search("v", q, 10, category=top).ids
    assert got[0] == "new" and moved not in got
    same_hits(parted, exact, queries, category=top)


def test_own_lists_probed_in_part_keep_recall_and_probe_fewer_rows(tmp_path):
    """Probed in part, a category's own lists (sized for its rows alone) find as much of the exact
    top 10 as the whole lists do."""
    data = synthetic_arrays(20_000, {"v": DIM}, n_categories=5, seed=13)
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, data.categories, data.vectors)
    queries = synthetic_arrays(40, {"v": DIM}, n_categories=5, seed=14).vectors["v"]
    found, indexes = {}, {}
    for share in (0.5, 0.0):
        options = {"exact_below": 500, "exact_filter_below": 0, "partition_share": share, "nprobe": 32}
        store = open_store(tmp_path / f"s{share}", {"v": DIM}, **options, **BUILD_IN_SEARCH)
        store.upsert(data.ids, data.categories, data.vectors)
        found[share], indexes[share] = recall(store, exact, queries, "c01"), store._indexes["v"]
    assert found[0.5] >= 0.9 and found[0.5] >= found[0.0] - 0.03, found
    part = indexes[0.5]._partitions["c01"][1]
    assert 32 < part.nlist < faiss_nlist(indexes[0.5])  # probed in part, and fewer lists than the whole index
    assert indexes[0.0]._partitions == {}


def test_a_broad_category_walks_the_whole_lists(tmp_path):
    data = synthetic_arrays(3_000, {"v": DIM}, n_categories=4, seed=9)
    categories = ["big/" + c if i % 4 else c for i, c in enumerate(data.categories)]
    store = open_store(tmp_path / "s", {"v": DIM}, exact_below=500, exact_filter_below=0, **BUILD_IN_SEARCH)
    store.upsert(data.ids, categories, data.vectors)
    store.search("v", data.vectors["v"][0], 10, category="big")
    generation, part, _ = store._indexes["v"]._partitions["big"]
    assert (generation, part) == (store._indexes["v"]._generation, None)


def test_a_first_search_walks_the_shared_lists_while_the_category_lists_are_built(tmp_path):
    """By default a category's lists are built in the background: searches meanwhile walk the
    shared lists (the same hits as a store without category lists), later ones the built lists
    (exact here: every list probed); a write drops them and the next search asks for new ones."""
    from recsys.store.ann import wait_for_category_lists

    data, parted, whole, exact, queries = partitioned_pair(tmp_path)
    background = open_store(tmp_path / "bg", {"v": DIM}, exact_below=500, exact_filter_below=0)
    background.upsert(data.ids, data.categories, data.vectors)
    top = data.categories[0].split("/")[0]
    index = background._indexes["v"]
    started = threading.Event()
    original = index._partition

    def slow_build(*args):  # noqa: ANN002, ANN202
        started.set()
        time.sleep(0.5)
        return original(*args)

    index._partition = slow_build
    same_top(background.search("v", queries[0], 10, category=top), whole.search("v", queries[0], 10, category=top))
    assert started.wait(10) and index._partitions.get(top) is None  # still building: the shared lists answered
    assert wait_for_category_lists(30)
    assert index._partitions[top][1] is not None
    same_hits(background, exact, queries, category=top)
    background.upsert(["new"], [top], {"v": queries[:1] * 3})
    assert index._partitions == {}
    assert background.search("v", queries[0], 1, category=top).ids == ["new"]
    assert wait_for_category_lists(30) and index._partitions[top][1] is not None
    assert background.search("v", queries[0], 1, category=top).ids == ["new"]


def test_a_failed_background_build_is_logged_and_searches_go_on(tmp_path, caplog, monkeypatch):
    from recsys.store import partition
    from recsys.store.ann import wait_for_category_lists

    data, _, whole, _, queries = partitioned_pair(tmp_path)
    store = open_store(tmp_path / "bg", {"v": DIM}, exact_below=500, exact_filter_below=0)
    store.upsert(data.ids, data.categories, data.vectors)
    top = data.categories[0].split("/")[0]

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise MemoryError("no room for the category's codes")

    monkeypatch.setattr(partition, "build", broken)
    for _ in range(2):
        same_hits(store, whole, queries[:5], category=top)
        assert wait_for_category_lists(30)
    assert store._indexes["v"]._partitions[top][1] is None  # tried once, not on every search
    assert sum("building the IVF lists of category" in r.getMessage() for r in caplog.records) == 1


write = st.one_of(
    st.tuples(st.just("upsert"), st.integers(0, 2**31), st.integers(1, 300)),
    st.tuples(st.just("delete"), st.integers(0, 2**31), st.integers(1, 80)),
)


@settings(max_examples=15, deadline=None)
@given(writes=st.lists(write, min_size=1, max_size=5), seed=st.integers(0, 2**31))
def test_own_lists_find_the_exact_hits_whatever_the_writes(writes, seed):
    """Random upserts (new items, replaced ones, items moved between categories) and deletes, each
    followed by searches: a category's own lists (all probed: few rows) find the exact hits."""
    ids = [f"i{j}" for j in range(900)]
    cats = ["a/x", "a/y", "b", "b/z", "c"]
    with tempfile.TemporaryDirectory() as tmp:
        # flat codes: with every own list probed the search is then exact, so any row a write left
        # out of (or wrongly in) a category's lists shows (8-bit codes may rank the top 10 apart)
        options = {"exact_below": 300, "exact_filter_below": 0, "partition_share": 0.5, "codes": "flat"}
        options.update(BUILD_IN_SEARCH)
        stores = [open_store(Path(tmp) / "s", {"v": DIM}, **options), MemoryStore({"v": DIM})]
        base = synthetic_arrays(600, {"v": DIM}, n_categories=5, seed=seed % 1000)
        for store in stores:
            store.upsert(ids[:600], [cats[j % 5] for j in range(600)], base.vectors)
        for step, (kind, value, size) in enumerate(writes):
            rng = np.random.default_rng([value, step])
            chosen = rng.choice(ids, size=size, replace=False).tolist()
            if kind == "upsert":
                vectors = {"v": rng.normal(size=(size, DIM)).astype(np.float32)}
                moved = [cats[j] for j in rng.integers(0, len(cats), size)]
                for store in stores:
                    store.upsert(chosen, moved, vectors)
            else:
                for store in stores:
                    store.delete(chosen)
            for category in ("a", "a/y", "b", "c"):
                q = rng.normal(size=DIM).astype(np.float32)
                exclude = rng.choice(ids, size=3).tolist() if rng.random() < 0.5 else []
                same_top(*(s.search("v", q, 10, category=category, exclude=exclude) for s in stores))
            assert any(part is not None for _, part, _ in stores[0]._indexes["v"]._partitions.values())


WIDE = 96


def low_rank_items(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Unit vectors with nearly all their variance in 24 of 96 directions, as embeddings have (the
    real catalogue's 1280-d image field keeps 88% of it in 256), in 12 clustered categories."""
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(WIDE, 24)))[0].T
    centres = np.random.default_rng(1).normal(size=(12, 24))
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 12, n)
    x = (centres[which] + 0.6 * rng.normal(size=(n, 24))) @ basis + 0.08 * rng.normal(size=(n, WIDE))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return [f"i{seed}-{i}" for i in range(n)], [f"c{w:02d}/s{i % 3}" for i, w in enumerate(which)], x


@pytest.fixture(scope="module")
def reduced_pair(tmp_path_factory):
    """The same wide items in a store whose IVF scans 32 principal components and in an exact one."""
    ids, categories, vectors = low_rank_items(8_000, seed=31)
    path = tmp_path_factory.mktemp("reduced") / "s"
    options = {"exact_below": 500, "exact_filter_below": 0, "reduce_above": 64, "reduced_dims": 32, **BUILD_IN_SEARCH}
    store = open_store(path, {"v": WIDE}, **options)
    store.upsert(ids, categories, {"v": vectors})
    exact = MemoryStore({"v": WIDE})
    exact.upsert(ids, categories, {"v": vectors})
    return (ids, categories, vectors), store, exact, low_rank_items(30, seed=32)[2]


def test_factory_reduces_only_wide_ivf_fields():
    params = AnnParams()
    assert params.factory(100_000, 1280).startswith(f"PCA{params.reduced_dims},IVF")
    assert params.factory(100_000, 384).startswith("IVF")
    assert params.factory(100_000, params.reduce_above).startswith("IVF")
    assert params.factory(100_000, 0).startswith("IVF")
    assert AnnParams(reduced_dims=0).factory(100_000, 1280).startswith("IVF")
    assert AnnParams(kind="hnsw").factory(100_000, 1280).startswith("IDMap,HNSW")
    with pytest.raises(InputError, match="reduced_dims"):
        AnnParams(reduced_dims=-1)


@pytest.mark.parametrize("category", [None, "c03", "c03/s1"])
def test_a_reduced_index_finds_the_exact_top_and_hands_back_exact_scores(reduced_pair, category):
    """Its lists hold 32 of 96 dimensions, yet recall stays at the exact search's and re-scored hits
    carry the stored vectors' own inner products; unscored ones (``rescore=False``) come in the
    index's rough order, for callers that score them themselves."""
    data, store, exact, queries = reduced_pair
    index = store._indexes["v"]
    assert index.spec.startswith("PCA32,IVF") and index.reduced
    rough = 0
    for q in queries:
        hits = store.search("v", q, 10, category=category)
        np.testing.assert_allclose(
            hits.scores, store.get("v", hits.ids) @ q, rtol=1e-3, atol=1e-3
        )  # the local store keeps float16 vectors
        assert np.all(np.diff(hits.scores) <= 1e-6)
        unscored = store.search("v", q, 10, category=category, rescore=False)
        assert unscored.rough and not hits.rough
        rough += not np.allclose(unscored.scores, store.get("v", unscored.ids) @ q, atol=1e-4)
    assert rough > 0  # the rough scores are the components' alone: the test sees the reduction at work
    assert recall(store, exact, queries, category) >= 0.95


def test_a_reduced_index_is_saved_reopened_and_takes_new_items(tmp_path, reduced_pair):
    (ids, categories, vectors), _, _, queries = reduced_pair
    options = {"exact_below": 500, "exact_filter_below": 0, "reduce_above": 64, "reduced_dims": 32}
    store = open_store(tmp_path / "s", {"v": WIDE}, **options)
    store.upsert(ids[:4_000], categories[:4_000], {"v": vectors[:4_000]})
    store.flush()
    before = [store.search("v", q, 10).ids for q in queries]
    again = open_store(tmp_path / "s")
    assert again._indexes["v"].spec == store._indexes["v"].spec
    assert [again.search("v", q, 10).ids for q in queries] == before
    q = queries[0]
    again.upsert(["new"], [categories[0]], {"v": q[None, :] * 2.0})  # projected with the kept components
    for s in (again, open_store(tmp_path / "s")):
        hits = s.search("v", q, 3)
        assert hits.ids[0] == "new"
        assert hits.scores[0] == pytest.approx(2.0 * float(q @ q), rel=1e-3)


def test_an_index_is_rebuilt_when_its_reduction_is_not_the_options(tmp_path, reduced_pair, caplog):
    """A store built before the reduction (or reopened with other options) rebuilds the field's
    index once, saying why; reopened with the same options it keeps it."""
    (ids, categories, vectors), _, _, queries = reduced_pair
    plain = {"exact_below": 500, "exact_filter_below": 0, "reduced_dims": 0}
    store = open_store(tmp_path / "s", {"v": WIDE}, **plain)
    store.upsert(ids[:2_000], categories[:2_000], {"v": vectors[:2_000]})
    store.flush()
    assert store._indexes["v"].spec.startswith("IVF")
    assert open_store(tmp_path / "s", {"v": WIDE}, **plain)._indexes["v"].spec.startswith("IVF")
    with caplog.at_level("INFO", logger="recsys.store.local"):
        reduced = open_store(tmp_path / "s", {"v": WIDE}, reduce_above=64, reduced_dims=32)
    assert reduced._indexes["v"].spec.startswith("PCA32,IVF")
    assert "scans every dimension, the store's options ask for 32 principal components" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="recsys.store.local"):
        again = open_store(tmp_path / "s")
    assert again._indexes["v"].spec == reduced._indexes["v"].spec and "rebuilding" not in caplog.text
    assert again.search("v", queries[0], 5).ids == reduced.search("v", queries[0], 5).ids


def test_a_reopened_index_is_mapped_from_its_file_and_grows_into_a_copy_of_its_own(tmp_path):
    """A saved IVF index is read mapped (its codes stay in the file): the same answers as one read
    into memory, partitions included; adding rows (which FAISS cannot do on mapped codes: it aborts
    the process) first makes it a copy of its own, and the file is never written through."""
    from recsys.store.ann import _map_flag

    data = synthetic_arrays(4_000, {"v": DIM}, n_categories=12, seed=5)
    options = {"exact_below": 500, "exact_filter_below": 0, "partition_share": 0.5, **BUILD_IN_SEARCH}
    store = open_store(tmp_path / "s", {"v": DIM}, **options)
    store.upsert(data.ids, data.categories, data.vectors)
    store.flush()
    saved = {p.name: p.read_bytes() for p in (tmp_path / "s").glob("index-*.faiss")}
    assert saved
    queries = synthetic_arrays(10, {"v": DIM}, n_categories=12, seed=6).vectors["v"]
    top = data.categories[0].split("/")[0]
    shutil.copytree(tmp_path / "s", tmp_path / "t")
    mapped, in_memory = open_store(tmp_path / "s"), open_store(tmp_path / "t")
    plain = in_memory._indexes["v"]
    in_memory._indexes["v"] = type(plain).load(
        tmp_path / "t" / next(iter(saved)), plain.spec, DIM, plain.ntotal, None, mapped=False
    )
    assert mapped._indexes["v"].mapped is (_map_flag() != 0) and not in_memory._indexes["v"].mapped
    same_hits(mapped, in_memory, queries)
    same_hits(mapped, in_memory, queries, category=top)  # builds a partition on the mapped lists
    new = synthetic_arrays(50, {"v": DIM}, n_categories=12, seed=7)
    for s in (mapped, in_memory):
        s.upsert([f"new{i}" for i in range(50)], new.categories, new.vectors)
    assert not mapped._indexes["v"].mapped
    same_hits(mapped, in_memory, queries)
    same_hits(mapped, in_memory, queries, category=top)
    assert mapped.search("v", new.vectors["v"][3], 1).ids == ["new3"]
    for name, content in saved.items():
        assert (tmp_path / "s" / name).read_bytes() == content


def test_a_mapped_index_whose_file_is_gone_grows_into_a_copy_of_the_mapped_codes(tmp_path):
    """The copy is read from the file again where the index is still its file; a file removed
    meanwhile (the mapping outlives it) is copied from the mapped codes instead."""
    data = synthetic_arrays(4_000, {"v": DIM}, n_categories=12, seed=5)
    store = open_store(tmp_path / "s", {"v": DIM}, exact_below=500, exact_filter_below=0)
    store.upsert(data.ids, data.categories, data.vectors)
    store.flush()
    queries = synthetic_arrays(5, {"v": DIM}, n_categories=12, seed=6).vectors["v"]
    before = [store.search("v", q, 10).ids for q in queries]
    again = open_store(tmp_path / "s")
    assert again._indexes["v"].mapped
    for index_file in (tmp_path / "s").glob("index-*.faiss"):
        index_file.unlink()
    again.upsert(["new"], ["c00"], {"v": queries[:1]})
    assert not again._indexes["v"].mapped
    assert again.search("v", queries[0], 1).ids == ["new"]
    assert [again.search("v", q, 10, exclude=["new"]).ids for q in queries] == before


def saved_category_lists(path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if ".faiss.category" in p.name)


def test_a_category_lists_are_saved_beside_the_index_file_and_the_next_process_reads_them(tmp_path, monkeypatch):
    data, parted, _, exact, queries = partitioned_pair(tmp_path)
    tops = sorted({c.split("/")[0] for c in data.categories})[:3]
    answers = {top: [parted.search("v", q, 10, category=top).ids for q in queries[:5]] for top in tops}
    assert len(saved_category_lists(tmp_path / "s0.5")) == len(tops)
    parted.close()
    built = []
    original = partition.build
    monkeypatch.setattr(partition, "build", lambda *a: built.append(1) or original(*a))
    again = open_store(tmp_path / "s0.5", **BUILD_IN_SEARCH)
    for top in tops:
        assert [again.search("v", q, 10, category=top).ids for q in queries[:5]] == answers[top]
        assert again._indexes["v"]._partitions[top][1] is not None
    assert not built
    hits = again.search("v", queries[0], 10, category=tops[0]).ids
    again.delete(hits[:1])
    again.close()  # a delete leaves the index file: the saved lists hold a row the category lacks
    again = open_store(tmp_path / "s0.5", **BUILD_IN_SEARCH)
    assert again.search("v", queries[0], 10, category=tops[0]).ids[:9] == hits[1:10]
    assert not built and len(saved_category_lists(tmp_path / "s0.5")) == len(tops)
    again.search("v", queries[0], 1, category=tops[1])
    held = again._indexes["v"]._partitions[tops[1]][1].ntotal
    again.upsert(["new"], [tops[1]], {"v": queries[:1]})  # a write: its rows added to a copy of the lists
    assert again.search("v", queries[0], 1, category=tops[1]).ids == ["new"]
    assert again._indexes["v"]._partitions[tops[1]][1].ntotal == held + 1
    assert not built and len(saved_category_lists(tmp_path / "s0.5")) == len(tops)  # not its file: not saved
    again.close()  # one row: the index file stays, and the next process extends the saved lists
    again = open_store(tmp_path / "s0.5", **BUILD_IN_SEARCH)
    assert again.search("v", queries[0], 1, category=tops[1]).ids == ["new"] and not built
    assert again.search("v", queries[0], 1, category=tops[2]).ids != ["new"]


def test_saved_category_lists_of_other_rows_are_not_used(tmp_path, caplog):
    data, parted, _, exact, queries = partitioned_pair(tmp_path)
    first, second = sorted({c.split("/")[0] for c in data.categories})[:2]
    parted.search("v", queries[0], 10, category=first)
    (saved,) = saved_category_lists(tmp_path / "s0.5")
    parted.close()
    kind_of_second = partition._saved_kind(second)
    (tmp_path / "s0.5" / saved).rename(tmp_path / "s0.5" / saved.replace(partition._saved_kind(first), kind_of_second))
    again = open_store(tmp_path / "s0.5", **BUILD_IN_SEARCH)
    with caplog.at_level("WARNING"):
        same_hits(again, exact, queries[:5], category=second)
    assert "most of the rows they hold are not the category's" in caplog.text
    assert len(saved_category_lists(tmp_path / "s0.5")) == 1  # the misplaced file removed, the built one saved


def test_a_writer_that_never_searches_carries_the_category_lists_over_to_the_index_file_it_saves(
    tmp_path, monkeypatch
):
    data, parted, _, exact, queries = partitioned_pair(tmp_path)
    tops = sorted({c.split("/")[0] for c in data.categories})[:2]
    for top in tops:
        parted.search("v", queries[0], 10, category=top)
    parted.close()
    (before,) = {name.split(".category")[0] for name in saved_category_lists(tmp_path / "s0.5")}
    writer = open_store(tmp_path / "s0.5", checkpoint_rows=10, **BUILD_IN_SEARCH)
    new = synthetic_arrays(20, {"v": DIM}, n_categories=12, seed=9)
    writer.upsert([f"new{i}" for i in range(20)], [tops[0]] * 20, new.vectors)
    writer.close()  # 20 rows past checkpoint_rows: a new index file, the lists linked beside it
    carried = saved_category_lists(tmp_path / "s0.5")
    assert len(carried) == len(tops) and not any(name.startswith(f"{before}.") for name in carried)
    built = []
    original = partition.build
    monkeypatch.setattr(partition, "build", lambda *a: built.append(1) or original(*a))
    server = open_store(tmp_path / "s0.5", **BUILD_IN_SEARCH)
    assert server.search("v", new.vectors["v"][4], 1, category=tops[0]).ids == ["new4"]
    assert server.search("v", new.vectors["v"][4], 1, category=tops[1]).ids != ["new4"]
    assert not built
    exact.upsert([f"new{i}" for i in range(20)], [tops[0]] * 20, new.vectors)
    same_hits(server, exact, queries[:5], category=tops[0])
