"""Fast-scan product codes pick an unfiltered search's candidates; the index's own codes score them."""

import shutil
import tempfile
import zlib
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.errors import InputError
from recsys.store import fastscan, open_store
from recsys.store.ann import AnnParams, wait_for_category_lists
from recsys.store.memory import MemoryStore
from recsys.store.synthetic import synthetic_arrays
from tests.store.test_ann import WIDE, low_rank_items
from tests.store.test_partition import DIM, whole_index

#: Rows in the stores below: the fast-scan codes are asked for from this many rows on.
ROWS = 12_000
FAST = {"fast_scan_above": 1_000, "exact_below": 500, "exact_filter_below": 0}


@pytest.mark.parametrize(("codes", "residual"), [("SQ8", True), ("SQ8", False), ("SQfp16", True), ("Flat", False)])
def test_the_codes_sit_on_the_index_lists_and_rank_its_rows_as_the_vectors_do(codes, residual):
    index, ivf, centroids, row_lists, vectors = whole_index(codes, residual=residual)
    fast = fastscan.build(ivf, centroids, row_lists)
    assert fast.ntotal == len(vectors)
    for number in range(ivf.nlist):  # every row on the list it has in the index, once
        size = fast.index.invlists.list_size(number)
        held = faiss.rev_swig_ptr(fast.index.invlists.get_ids(number), size)
        assert sorted(held.tolist()) == np.flatnonzero(row_lists == number).tolist()
    everything, held = np.arange(ivf.nlist), []
    for q in vectors[:40]:  # 4 bits per two dimensions rank roughly: the top 10 among the first 40
        found = fast.candidates(q[None, :], 40, everything, centroids @ q)
        held.append(len(set(found.tolist()) & set(np.argsort(-(vectors @ q))[:10].tolist())) / 10)
    assert np.mean(held) >= 0.95  # 0.97-0.98 with these codes; codes of other rows or lists hold ~0.1


def test_no_codes_for_an_index_whose_rows_cannot_be_decoded_or_that_holds_none():
    product, ivf, centroids, row_lists, _ = whole_index("PQ8")  # the index holds the IVF part: keep it
    assert fastscan.build(ivf, centroids, row_lists) is None
    scalar, ivf, centroids, row_lists, _ = whole_index("SQ8")
    assert fastscan.build(ivf, centroids, np.full_like(row_lists, -1)) is None
    del product, scalar


def fast_and_plain(tmp_path, **options):
    data = synthetic_arrays(ROWS, {"v": DIM}, n_categories=8, seed=31)
    stores = []
    for name, above in (("fast", FAST["fast_scan_above"]), ("plain", 0)):
        store = open_store(tmp_path / name, {"v": DIM}, **{**FAST, "fast_scan_above": above, **options})
        store.upsert(data.ids, data.categories, data.vectors)
        store.flush()
        stores.append(store)
    queries = synthetic_arrays(30, {"v": DIM}, n_categories=8, seed=32).vectors["v"]
    return data, *stores, queries


def test_an_unfiltered_search_finds_the_index_own_hits_with_its_own_scores(tmp_path, monkeypatch):
    """The candidates are scored by the index's codes, so the hits and their scores are what a search
    of the same lists without fast-scan codes finds."""
    _, fast, plain, queries = fast_and_plain(tmp_path, partition_background=False)
    picked = []
    original = fastscan.FastScanLists.candidates
    monkeypatch.setattr(
        fastscan.FastScanLists, "candidates", lambda self, *a, **k: picked.append(1) or original(self, *a, **k)
    )
    same = []
    for q in queries:
        a, b = fast.search("v", q, 20, rescore=False), plain.search("v", q, 20, rescore=False)
        common = sorted(set(a.ids) & set(b.ids))
        same.append(len(common) / 20)
        scores_a, scores_b = dict(zip(a.ids, a.scores, strict=True)), dict(zip(b.ids, b.scores, strict=True))
        np.testing.assert_allclose([scores_a[i] for i in common], [scores_b[i] for i in common], rtol=0, atol=1e-6)
    assert len(picked) == len(queries) and np.mean(same) >= 0.97


def test_excluded_items_are_never_candidates_and_a_category_walks_its_own_lists(tmp_path, monkeypatch):
    data, fast, _, queries = fast_and_plain(tmp_path, partition_background=False)
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, data.categories, data.vectors)
    picked = []
    original = fastscan.FastScanLists.candidates
    monkeypatch.setattr(
        fastscan.FastScanLists, "candidates", lambda self, *a, **k: picked.append(1) or original(self, *a, **k)
    )
    for q in queries[:10]:
        liked = exact.search("v", q, 5).ids
        hits = fast.search("v", q, 10, exclude=liked)
        assert not set(hits.ids) & set(liked)
        assert len(set(hits.ids) & set(exact.search("v", q, 10, exclude=liked).ids)) >= 8
    assert len(picked) == 10
    top = data.categories[0].split("/")[0]
    assert set(fast.search("v", queries[0], 10, category=top).ids) <= {
        i for i, c in zip(data.ids, data.categories, strict=True) if c.split("/")[0] == top
    }
    assert len(picked) == 10  # a category's search does not go through them


def test_a_search_whose_lists_hold_no_allowed_row_widens_until_it_finds_some(tmp_path):
    """Every row of the 2/3 of lists nearest the query left out: the lists a search probes (nprobe
    widened for the third of rows left) hold no candidate, and the store widens until some come."""
    data, fast, _, queries = fast_and_plain(tmp_path, partition_background=False)
    index, q = fast._indexes["v"], queries[0]
    fast.search("v", q, 1)
    near = np.argsort(-(index._centroids() @ q))[: 2 * len(index._centroids()) // 3]
    left_out = np.isin(index._lists_of_rows(), near)
    row_ids = fast.row_ids()
    hits = fast.search("v", q, 5, exclude=[row_ids[r] for r in np.flatnonzero(left_out)])
    exact = MemoryStore({"v": DIM})
    exact.upsert(data.ids, data.categories, data.vectors)
    truth = exact.search("v", q, 5, exclude=[row_ids[r] for r in np.flatnonzero(left_out)])
    assert len(set(hits.ids) & set(truth.ids)) >= 4
    assert index._fast[1] is not None


def test_the_codes_are_built_in_the_background_and_dropped_by_a_write(tmp_path):
    """The first searches walk the index's own codes while the fast-scan codes are built; a write
    drops them (the next unfiltered search asks for new ones) and its rows are found at once."""
    data, fast, plain, queries = fast_and_plain(tmp_path)
    index = fast._indexes["v"]
    assert fast.search("v", queries[0], 10).ids == plain.search("v", queries[0], 10).ids  # before or after the build
    assert wait_for_category_lists(60) and index._fast[1] is not None
    fast.upsert(["new"], ["c00"], {"v": queries[:1] * 3})
    assert index._fast is None
    assert fast.search("v", queries[0], 1).ids == ["new"]
    assert wait_for_category_lists(60) and index._fast[1] is not None
    assert fast.search("v", queries[0], 1).ids == ["new"]


def test_a_small_index_a_flat_one_or_hnsw_has_none(tmp_path):
    for options in ({"fast_scan_above": ROWS + 1}, {"fast_scan_above": 0}, {"kind": "hnsw"}):
        _, store, _, queries = fast_and_plain(tmp_path / str(len(list(tmp_path.iterdir()))), **options)
        store.search("v", queries[0], 10)
        assert wait_for_category_lists(60) and store._indexes["v"]._fast is None


def test_a_reduced_index_gets_codes_of_its_principal_components(tmp_path):
    """Items of low rank (as real embeddings are), 96-d, an index over 32 principal components."""
    ids, categories, vectors = low_rank_items(ROWS, seed=33)
    options = {"reduce_above": 64, "reduced_dims": 32, "partition_background": False, **FAST}
    store = open_store(tmp_path / "s", {"v": WIDE}, **options)
    store.upsert(ids, categories, {"v": vectors})
    exact = MemoryStore({"v": WIDE})
    exact.upsert(ids, categories, {"v": vectors})
    queries = low_rank_items(20, seed=34)[2]
    found = [len(set(store.search("v", q, 10).ids) & set(exact.search("v", q, 10).ids)) / 10 for q in queries]
    index = store._indexes["v"]
    assert index.reduced and index._fast[1].index.d == 32
    assert np.mean(found) >= 0.95


@pytest.mark.parametrize(
    "options", [{"fast_scan_above": -1}, {"fast_scan_depth": 0}, {"fast_scan_above": "many"}, {"fast_scan_depth": 2.5}]
)
def test_fast_scan_options_are_checked(options):
    with pytest.raises(InputError, match="fast_scan"):
        AnnParams(**options)


def saved_codes(store) -> list:
    """The fast-scan code files beside the store's index files."""
    return sorted(p.name for p in store.path.iterdir() if ".faiss.fastscan-" in p.name)


def reopened(path, monkeypatch, built: list):
    """The store at ``path`` opened again, counting the fast-scan builds in ``built``."""
    monkeypatch.setattr(fastscan, "build", lambda *a: built.append(1) or original_build(*a))
    return open_store(path, **FAST, partition_background=False)


original_build = fastscan.build


def test_the_codes_are_saved_beside_the_index_file_and_the_next_process_reads_them(tmp_path, monkeypatch):
    _, fast, _, queries = fast_and_plain(tmp_path, partition_background=False)
    answers = [fast.search("v", q, 10, rescore=False) for q in queries[:10]]
    (index_file,) = [p.name for p in fast.path.iterdir() if p.name.endswith(".faiss")]
    (saved,) = saved_codes(fast)
    assert saved.startswith(f"{index_file}.fastscan-")
    fast.close()
    built = []
    again = reopened(tmp_path / "fast", monkeypatch, built)
    for q, before in zip(queries[:10], answers, strict=True):  # the same codes: the same candidates
        after = again.search("v", q, 10, rescore=False)
        assert after.ids == before.ids and np.array_equal(after.scores, before.scores)
    assert again._indexes["v"]._fast[1] is not None and not built


def test_damaged_saved_codes_are_reported_and_built_again(tmp_path, monkeypatch, caplog):
    _, fast, _, queries = fast_and_plain(tmp_path, partition_background=False)
    fast.search("v", queries[0], 10)
    (saved,) = saved_codes(fast)
    fast.close()
    path = tmp_path / "fast" / saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    built = []
    again = reopened(tmp_path / "fast", monkeypatch, built)
    with caplog.at_level("WARNING"):
        hits = again.search("v", queries[0], 10)
    assert built == [1] and "checksum does not match" in caplog.text
    assert saved_codes(again) == [saved]  # built again, the same codes under the same name
    assert path.read_bytes() != bytes(data)
    assert hits.ids == fast_and_plain(tmp_path / "other", partition_background=False)[1].search("v", queries[0], 10).ids


def test_rows_added_since_the_index_file_extend_its_saved_codes_which_go_with_the_file(tmp_path, monkeypatch):
    data, fast, _, queries = fast_and_plain(tmp_path, partition_background=False, checkpoint_rows=10**6)
    fast.search("v", queries[0], 10)
    (saved,) = saved_codes(fast)
    fast.upsert(["new"], ["c00"], {"v": queries[:1]})  # below checkpoint_rows: the index file stays
    fast.close()
    built = []
    again = reopened(tmp_path / "fast", monkeypatch, built)
    assert again.search("v", queries[0], 1).ids == ["new"]  # found through the codes of the file's rows + 1
    index = again._indexes["v"]
    assert not built and index._fast[1].ntotal == index.ntotal == ROWS + 1
    assert saved_codes(again) == [saved]  # the index is not its file: its codes are not saved as the file's
    again.compact()  # a new index file: the codes of the old one go with it
    assert saved_codes(again) == []
    again.search("v", queries[0], 1)
    assert built == [1] and len(saved_codes(again)) == 1 and saved_codes(again) != [saved]


def test_a_write_extends_a_copy_of_the_codes_and_an_index_saved_then_saves_them_beside_it(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(fastscan, "build", lambda *a: built.append(1) or original_build(*a))
    data, fast, _, queries = fast_and_plain(tmp_path, partition_background=False, checkpoint_rows=100)
    fast.search("v", queries[0], 10)
    index = fast._indexes["v"]
    before = index._fast[1]
    built.clear()
    new = synthetic_arrays(150, {"v": DIM}, n_categories=8, seed=35)
    fast.upsert([f"new{i}" for i in range(150)], new.categories, new.vectors)
    for i in range(0, 150, 15):  # each new row is found through the extended codes as its own nearest
        assert fast.search("v", new.vectors["v"][i], 1).ids == [f"new{i}"]
    assert not built and index._fast[1] is not before and before.ntotal == ROWS
    assert index._fast[1].ntotal == ROWS + 150
    fast.flush()  # 150 rows past checkpoint_rows: a new index file, with the codes beside it
    (index_file,) = [p.name for p in fast.path.iterdir() if p.name.endswith(".faiss")]
    (saved,) = saved_codes(fast)
    assert saved.startswith(f"{index_file}.fastscan-")
    fast.close()
    again = reopened(tmp_path / "fast", monkeypatch, built)
    assert again.search("v", new.vectors["v"][0], 1).ids == ["new0"] and not built


def test_codes_that_cannot_be_saved_cost_a_warning_only(tmp_path, monkeypatch, caplog):
    def refuse(*_):
        raise RuntimeError("Error in faiss::FileIOWriter at impl/io.cpp:67: could not open for writing")

    _, fast, plain, queries = fast_and_plain(tmp_path, partition_background=False)
    monkeypatch.setattr(faiss, "write_index", refuse)
    with caplog.at_level("WARNING"):
        hits = fast.search("v", queries[0], 10, rescore=False)
    assert "could not save the fast-scan codes" in caplog.text and "could not open for writing" in caplog.text
    assert "impl/io.cpp" not in caplog.text
    assert fast._indexes["v"]._fast[1] is not None and saved_codes(fast) == []
    assert len(set(hits.ids) & set(plain.search("v", queries[0], 10, rescore=False).ids)) >= 9


def test_a_writer_that_never_searches_carries_the_saved_codes_over_to_the_index_file_it_saves(tmp_path, monkeypatch):
    """An indexing run reads no codes for searches, yet saving its index extends the codes saved
    beside the file it read, so the server it feeds reads them with the new rows."""
    _, fast, _, queries = fast_and_plain(tmp_path, partition_background=False, checkpoint_rows=100)
    fast.search("v", queries[0], 10)
    (before,) = saved_codes(fast)
    fast.close()
    built = []
    writer = reopened(tmp_path / "fast", monkeypatch, built)
    new = synthetic_arrays(150, {"v": DIM}, n_categories=8, seed=36)
    writer.upsert([f"new{i}" for i in range(150)], new.categories, new.vectors)
    writer.close()  # 150 rows past checkpoint_rows: a new index file
    (after,) = saved_codes(writer)
    assert after != before and not built
    server = reopened(tmp_path / "fast", monkeypatch, built)
    assert server.search("v", new.vectors["v"][7], 1).ids == ["new7"]
    assert not built and server._indexes["v"]._fast[1].ntotal == ROWS + 150


@pytest.fixture(scope="module")
def saved_store(tmp_path_factory):
    """A store whose fast-scan codes are saved beside its index file: (store folder, the codes' bytes)."""
    root = tmp_path_factory.mktemp("saved")
    _, fast, _, queries = fast_and_plain(root, partition_background=False)
    fast.search("v", queries[0], 10)
    (name,) = saved_codes(fast)
    fast.close()
    return root / "fast", (root / "fast" / name).read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4),
    noise=st.binary(max_size=64),
)
def test_saved_codes_of_any_content_are_read_or_built_again_never_trusted_blindly(saved_store, cut, flips, noise):
    """Whatever bytes lie beside the index, named with their own CRC-32 so that FAISS's reader gets
    them: the codes are read or built again, and searches answer as over the index's own codes."""
    folder, good = saved_store
    data = bytearray(good[: int(cut * len(good))] + noise)
    for where, bits in flips:
        if data:
            data[min(len(data) - 1, int(where * len(data)))] ^= bits
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "s"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.fastscan-*"))
        (index_file,) = copy.glob("*.faiss")
        target = index_file.with_name(f"{index_file.name}.fastscan-{zlib.crc32(bytes(data)):08x}")
        target.write_bytes(bytes(data))
        store = open_store(copy, **FAST, partition_background=False)
        hits = store.search("v", np.asarray(store.get("v", store.row_ids()[:1])[0]), 5)
        assert hits.ids[0] == store.row_ids()[0]
        assert store._indexes["v"]._fast[1].ntotal == ROWS
