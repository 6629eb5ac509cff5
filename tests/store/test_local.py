"""The local store beyond the shared contract: crash safety, incremental indexing, ANN recall,
segment merging, compaction, and agreement with the in-memory reference on random operations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.errors import InputError, RecsysError
from recsys.store import open_store, segments
from recsys.store.ann import FieldIndex
from recsys.store.local import LocalStore
from recsys.store.memory import MemoryStore
from recsys.store.synthetic import synthetic_arrays

FIELDS = {"text": 16, "image": 8}
REPO = Path(__file__).resolve().parents[2]


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(store, start, n, seed=0, version="1"):
    rng = np.random.default_rng(seed)
    ids = [f"i{j}" for j in range(start, start + n)]
    cats = [f"c{j % 3}/s{j % 5}" for j in range(start, start + n)]
    store.upsert(ids, cats, {"text": unit(rng, n, 16), "image": unit(rng, n, 8)}, [version] * n)
    return ids


def snapshot(store):
    q = np.ones(16, np.float32) / 4
    return (
        len(store),
        store.versions(),
        store.search("text", q, 10).ids,
        store.search("text", q, 10, category="c1").ids,
    )


# ----------------------------------------------------------------------------- crash safety

CRASH_POINTS = {
    "vector file": ("recsys.store.segments.np.lib.format.open_memmap", "old"),
    "segment metadata": ("recsys.store.segments.write_npz", "old"),
    "manifest": ("recsys.store.segments.write_manifest", "old"),
    "after the commit": ("recsys.store.segments.open_vectors", "new"),
    "ANN index file": ("recsys.store.ann.write_with", "new"),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_crash_mid_upsert_leaves_the_old_or_the_new_store(tmp_path, monkeypatch, point):
    target, expected = CRASH_POINTS[point]
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=150)
    fill(store, 0, 100)
    old = snapshot(store)
    reference = LocalStore(tmp_path / "ref", FIELDS, exact_below=150)
    fill(reference, 0, 100)
    fill(reference, 50, 100, seed=1, version="2")  # replaces 50 items, adds 50, crosses exact_below
    new = snapshot(reference)

    def boom(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(target, boom)
    with pytest.raises(OSError, match="simulated crash"):
        fill(store, 50, 100, seed=1, version="2")
    monkeypatch.undo()
    reopened = LocalStore(tmp_path / "s")
    assert snapshot(reopened) == (old if expected == "old" else new)
    fill(reopened, 1000, 2)  # the store takes writes again, and leftovers are cleaned up
    assert not [p.name for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")]
    assert len(LocalStore(tmp_path / "s")) == len(reopened)


@pytest.mark.slow
def test_a_killed_writer_leaves_a_consistent_store(tmp_path):
    """SIGKILL a process in the middle of a stream of upserts and deletes, then check every item."""
    script = f"""
import numpy as np
from recsys.store.local import LocalStore
s = LocalStore({str(tmp_path / "s")!r}, {{"text": 16}}, exact_below=300, max_segments=4, checkpoint_rows=50)
for n in range(100000):
    ids = [f"i{{(n * 7 + j) % 500}}" for j in range(20)]
    vec = np.stack([np.random.default_rng([int(i[1:]), n]).standard_normal(16) for i in ids]).astype("float32")
    s.upsert(ids, ["c"] * 20, {{"text": vec}}, [str(n)] * 20)
    if n % 5 == 0:
        s.delete(ids[:3])
    if n % 7 == 0:
        s.flush()
    print(n, flush=True)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    for _ in range(40):  # let it get well into ANN territory, then kill it mid-write
        proc.stdout.readline()
    time.sleep(0.137)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = LocalStore(tmp_path / "s")
    versions = store.versions()
    assert len(store) == len(versions) > 0
    ids = sorted(versions)
    got = store.get("text", ids)
    for i, row in zip(ids, got, strict=True):
        want = np.random.default_rng([int(i[1:]), int(versions[i])]).standard_normal(16).astype(np.float32)
        want = want.astype(np.float16)
        np.testing.assert_array_equal(row, want.astype(np.float32))
    assert len(store.search("text", got[0], 600).ids) == len(ids)


# ----------------------------------------------------------------------------- incremental indexing


def test_a_sync_mark_that_cannot_be_written_costs_only_the_shortcut(tmp_path, monkeypatch, caplog):
    """A store in a folder that cannot be written (a read-only mount) still opens and answers: the
    mark is the one write a sync with nothing to change makes, so its failure is a warning."""
    store = LocalStore(tmp_path / "s", FIELDS)
    fill(store, 0, 30)
    store.mark_synced("kept")

    def refuse(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(segments, "write_manifest", refuse)
    store.mark_synced("new")
    assert store.synced_to() == "kept"  # the manifest on disk, as it still is
    assert "cannot keep the sync mark" in caplog.text and "Read-only" in caplog.text
    monkeypatch.undo()
    assert LocalStore(tmp_path / "s").synced_to() == "kept"


def test_small_updates_add_to_the_ann_index_without_rebuilding(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=300)
    fill(store, 0, 400)
    index = store._indexes["text"]
    assert not index.exact
    built = index.ntotal

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the ANN index was rebuilt")

    monkeypatch.setattr(FieldIndex, "trained", no_rebuild)
    fill(store, 400, 3, seed=5)
    store.delete(["i1", "i2"])
    assert store._indexes["text"] is index and index.ntotal == built + 3
    store.flush()
    reopened = LocalStore(tmp_path / "s")  # loads the saved index: no training either
    assert not reopened._indexes["text"].exact
    assert reopened.search("text", store.get("text", ["i401"])[0], 1).ids == ["i401"]
    assert "i1" not in reopened.search("text", store.get("text", ["i3"])[0], 400).ids


def test_an_ivf_index_is_rebuilt_once_the_store_outgrows_its_lists(tmp_path):
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=300)
    fill(store, 0, 400)
    small = store._indexes["text"].spec  # IVF lists for 400 vectors
    fill(store, 400, 300, seed=3)  # not yet twice the lists it was built with
    assert store._indexes["text"].spec == small
    fill(store, 700, 1500, seed=4)
    grown = store._indexes["text"].spec
    assert int(grown[3:].split(",")[0]) >= 2 * int(small[3:].split(",")[0])
    probe = store.get("text", ["i2100"])[0]
    assert store.search("text", probe, 1).ids == ["i2100"]
    assert len(store) == 2200
    assert LocalStore(tmp_path / "s")._indexes["text"].spec == grown


def test_reopening_adds_rows_written_after_the_last_saved_index(tmp_path):
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=300, checkpoint_rows=10_000)
    fill(store, 0, 400)
    fill(store, 400, 5, seed=9)
    store.close()  # 5 new rows < checkpoint_rows: the saved index does not hold them
    reopened = LocalStore(tmp_path / "s")
    assert reopened._indexes["text"].ntotal == 405
    assert reopened.search("text", reopened.get("text", ["i404"])[0], 1).ids == ["i404"]


def test_segments_merge_and_compaction_keep_every_item(tmp_path):
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=100, max_segments=3)
    for n in range(8):
        fill(store, n * 20, 30, seed=n)  # overlapping ranges: every call replaces 10 items
    store.delete(["i0", "i5"])
    assert len(store._segments) <= 3
    before = snapshot(store)
    assert before[0] == 168
    store.compact()
    assert store.info()["dead_rows"] == 0 and store.info()["segments"] == 1
    assert snapshot(store) == before
    store.close()
    assert snapshot(LocalStore(tmp_path / "s")) == before


def test_stored_vectors_are_gathered_from_every_segment_in_any_order(tmp_path):
    """Rows in shuffled order, repeated, from several segments, one of which lacks a field: each
    row's stored (float16) vector, zeros where its segment has no such field."""
    store = LocalStore(tmp_path / "s", FIELDS, exact_below=100)
    rng = np.random.default_rng(4)
    written = {}
    for n in range(4):
        ids = [f"g{n}-{j}" for j in range(7 + n)]
        vectors = {"text": unit(rng, len(ids), 16), "image": unit(rng, len(ids), 8)}
        if n == 2:
            del vectors["image"]
        store.upsert(ids, ["c"] * len(ids), vectors)
        for j, item in enumerate(ids):
            written[item] = {f: v[j] for f, v in vectors.items()}
    assert len(store._segments) == 4
    rows = rng.permutation(np.repeat(np.arange(store._table.n_rows), 2))
    for field, dim in FIELDS.items():
        got = store._gather(field, rows)
        assert got.dtype == np.float32 and got.shape == (len(rows), dim)
        for r, vector in zip(rows.tolist(), got, strict=True):
            want = written[store._table.ids[r]].get(field, np.zeros(dim, np.float32))
            np.testing.assert_array_equal(vector, want.astype(np.float16).astype(np.float32))
    assert store._gather("text", np.zeros(0, np.int64)).shape == (0, 16)


def test_selective_filters_are_answered_exactly(tmp_path):
    data = synthetic_arrays(3000, {"text": 32}, n_categories=40, seed=3)
    store = LocalStore(tmp_path / "s", {"text": 32}, exact_below=500, exact_filter_below=100)
    ref = MemoryStore({"text": 32})
    for s in (store, ref):
        s.upsert(data.ids, data.categories, data.vectors)
    assert not store._indexes["text"].exact
    cats = sorted(set(data.categories), key=data.categories.count)
    assert data.categories.count(cats[0]) <= 100 < data.categories.count(cats[-1])
    for n, category in enumerate((cats[0], cats[len(cats) // 2], cats[-1], cats[-1].split("/")[0])):
        q = data.vectors["text"][n * 7]
        got = store.search("text", q, 20, category=category, exclude=data.ids[:50])
        want = ref.search("text", q, 20, category=category, exclude=data.ids[:50])
        assert len(got.ids) == len(want.ids)
        if data.categories.count(category) <= 100:
            assert got.ids == want.ids
        else:
            assert len(set(got.ids) & set(want.ids)) >= 0.9 * len(want.ids)


def test_hits_left_for_the_caller_to_score_are_the_ann_hits_unscored(tmp_path, monkeypatch):
    """rescore=False skips gathering the stored vectors: the same filter and exclusions, k hits, in the
    index's order, mostly the items an exact re-score keeps."""
    data = synthetic_arrays(3000, {"text": 32}, n_categories=8, seed=4)
    store = LocalStore(tmp_path / "s", {"text": 32}, exact_below=500, exact_filter_below=10)
    store.upsert(data.ids, data.categories, data.vectors)
    category = data.categories[0].split("/")[0]
    q = data.vectors["text"][1]
    exact = store.search("text", q, 20, category=category, exclude=data.ids[:5])
    monkeypatch.setattr(store, "_gather", lambda *a: pytest.fail("rescore=False gathered stored vectors"))
    loose = store.search("text", q, 20, category=category, exclude=data.ids[:5], rescore=False)
    assert len(loose.ids) == 20 and not set(loose.ids) & set(data.ids[:5])
    assert all(data.categories[data.ids.index(i)].startswith(category + "/") for i in loose.ids)
    assert list(loose.scores) == sorted(loose.scores, reverse=True)
    assert len(set(loose.ids) & set(exact.ids)) >= 16


def test_local_store_refuses_what_it_cannot_store(tmp_path):
    store = LocalStore(tmp_path / "s", FIELDS)
    with pytest.raises(InputError, match="float16"):
        store.upsert(["a"], ["c"], {"text": np.full((1, 16), 1e6, np.float32)})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RecsysError, match="not an empty folder"):
        LocalStore(tmp_path / "other", FIELDS)
    with pytest.raises(RecsysError, match="no vector store"):
        LocalStore(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown local store option"):
        LocalStore(tmp_path / "t", FIELDS, efsearch=3)
    segments.write_manifest(tmp_path / "odd", {"format": "something-else"})
    with pytest.raises(RecsysError, match="not a recsys local store"):
        LocalStore(tmp_path / "odd")


# ----------------------------------------------------------------------------- quality


@pytest.mark.slow
def test_ann_recall_at_10_on_clustered_data(tmp_path):
    data = synthetic_arrays(20_000, {"text": 128}, n_categories=30, seed=11)
    queries = synthetic_arrays(200, {"text": 128}, n_categories=30, seed=12).vectors["text"]
    # exact_filter_below=0: the category filter goes through the ANN index's selector too
    store = open_store(tmp_path / "s", {"text": 128}, exact_below=1_000, exact_filter_below=0)
    store.upsert(data.ids, data.categories, data.vectors)
    assert not store._indexes["text"].exact
    exact = MemoryStore({"text": 128})
    exact.upsert(data.ids, data.categories, data.vectors)
    for category in (None, "c01"):
        found = [set(store.search("text", q, 10, category=category).ids) for q in queries]
        truth = [set(exact.search("text", q, 10, category=category).ids) for q in queries]
        recall = np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True)])
        assert recall >= 0.95, (category, recall)


# ----------------------------------------------------------------------------- against the reference

IDS = [f"id{i}" for i in range(12)] + ['q"x', "b\\y"]
CATS = ["a", "a/b", "a/b/c", "aX", "d", ""]
op = st.one_of(
    st.tuples(
        st.just("upsert"),
        st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True),
        st.integers(0, 2**31),
        st.sampled_from(["both", "text", "image"]),
    ),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(IDS), max_size=4), st.integers(0, 0), st.just("")),
    st.tuples(st.just("reopen"), st.just([]), st.integers(0, 0), st.just("")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=12), queries=st.integers(0, 2**31))
def test_local_exact_store_agrees_with_the_memory_store(ops, queries):
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalStore(Path(tmp) / "s", FIELDS, dtype="float32", max_segments=4)
        memory = MemoryStore(FIELDS)
        for step, (kind, ids, seed, which) in enumerate(ops):
            rng = np.random.default_rng([seed, step])  # distinct vectors: the order of exact ties is not specified
            if kind == "upsert":
                cats = [CATS[j] for j in rng.integers(0, len(CATS), len(ids))]
                vectors = {f: unit(rng, len(ids), d) for f, d in FIELDS.items() if which in ("both", f)}
                for s in (local, memory):
                    s.upsert(ids, cats, vectors, [str(seed)] * len(ids))
            elif kind == "delete":
                local.delete(ids)
                memory.delete(ids)
            else:
                local.close()
                local = LocalStore(Path(tmp) / "s")
        assert len(local) == len(memory) and local.versions() == memory.versions()
        rng = np.random.default_rng(queries)
        for field, d in FIELDS.items():
            for category in (None, "a", "a/b", "aX"):
                q = unit(rng, 1, d)[0]
                exclude = set(rng.choice(IDS, 2).tolist())
                got = local.search(field, q, 5, category=category, exclude=exclude)
                want = memory.search(field, q, 5, category=category, exclude=exclude)
                assert got.ids == want.ids
                np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        local.close()
