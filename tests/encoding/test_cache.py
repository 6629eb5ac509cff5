"""The append-only feature store: shards round trip, later shards win, bad shards are dropped, old files read."""

from __future__ import annotations

import logging
import mmap
import zipfile

import numpy as np
import pytest

from recsys import atomic
from recsys.encoding.cache import FeatureStore, ShardFolder


def _vectors(n: int, dim: int = 3, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n * dim, dtype=np.float32).reshape(n, dim)


def test_shards_round_trip_in_any_order(tmp_path):
    store = FeatureStore(tmp_path, "image/model@1")
    first = store.append(["a", "b"], _vectors(2))
    second = store.append(["c"], _vectors(1, start=100))
    assert first.parent == second.parent == store.folder
    assert [p.name.split("-")[1] for p in store.shards()] == ["000000", "000001"]
    feats = store.load(["c", None, "a", "zzz", "a"])
    assert feats.present.tolist() == [True, False, True, False, True]
    np.testing.assert_array_equal(feats.vectors[0], _vectors(1, start=100)[0])
    np.testing.assert_array_equal(feats.vectors[2], _vectors(2)[0])
    assert not feats.vectors[[1, 3]].any()
    assert not list(tmp_path.rglob("*.tmp"))


def test_appends_list_the_folder_once_and_keep_their_order(tmp_path, monkeypatch):
    """Listing every shard per append made a long pass quadratic; names stay ordered without it."""
    FeatureStore(tmp_path, "f").append(["old"], _vectors(1))  # an earlier run's shard
    store = FeatureStore(tmp_path, "f")
    listings = []
    real = ShardFolder.files
    monkeypatch.setattr(ShardFolder, "files", lambda self: listings.append(1) or real(self))
    for i in range(5):
        store.append([f"k{i}"], _vectors(1, start=10 * i))
    assert len(listings) == 1
    monkeypatch.undo()
    assert [p.name.split("-")[1] for p in store.shards()] == [f"{i:06d}" for i in range(6)]
    other = FeatureStore(tmp_path, "f")  # a second writer of the same folder names its shard after them
    assert other.append(["k0"], _vectors(1, start=999)).name.split("-")[1] == "000006"
    assert other.load(["k0"]).vectors[0].tolist() == _vectors(1, start=999)[0].tolist()


def test_feature_ids_never_share_a_folder(tmp_path):
    a, b = FeatureStore(tmp_path, "image/m@1"), FeatureStore(tmp_path, "image/m@1#class_proba")
    a.append(["k"], _vectors(1))
    assert not b.load(["k"]).present.any() and a.folder != b.folder


def test_a_later_shard_wins(tmp_path):
    store = FeatureStore(tmp_path, "f")
    store.append(["k"], _vectors(1))
    store.append(["k"], _vectors(1, start=7))
    np.testing.assert_array_equal(store.load(["k"]).vectors[0], _vectors(1, start=7)[0])


def test_empty_store_gathers_zero_width(tmp_path):
    feats = FeatureStore(tmp_path, "nothing").load(["a", None])
    assert feats.vectors.shape == (2, 0) and not feats.present.any()


def _truncated(path):
    path.write_bytes(path.read_bytes()[:40])


def _garbage(path):
    path.write_bytes(b"not a zip file")


def _missing_vectors(path):
    np.savez(path, keys=np.array(["a", "b"]))


def _mismatched(path):
    np.savez(path, keys=np.array(["a", "b"]), vectors=np.zeros((3, 3), np.float32))


def _empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_truncated, _garbage, _missing_vectors, _mismatched, _empty])
def test_unreadable_shard_is_reported_removed_and_its_items_missing(tmp_path, caplog, damage):
    store = FeatureStore(tmp_path, "f")
    bad = store.append(["a", "b"], _vectors(2))
    store.append(["c"], _vectors(1))
    damage(bad)
    with caplog.at_level(logging.WARNING):
        assert store.load(["a", "b", "c"]).present.tolist() == [False, False, True]
    assert "rebuilding feature cache f" in caplog.text
    assert not bad.exists()


def test_the_single_file_of_earlier_versions_is_still_read(tmp_path):
    store = FeatureStore(tmp_path, "text/minilm@abc")
    atomic.write_npz(store.legacy_file, keys=np.array(["old"]), vectors=_vectors(1, dim=4))
    assert store.load(["old", "new"]).present.tolist() == [True, False]
    store.append(["new"], _vectors(1, dim=4, start=9))
    feats = store.load(["old", "new"])
    assert feats.present.all() and feats.vectors[0, 0] == 0 and feats.vectors[1, 0] == 9


def test_shard_files_are_valid_npz_with_keys_and_vectors(tmp_path):
    path = FeatureStore(tmp_path, "f").append(["x"], _vectors(1))
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["feature_id.npy", "keys.npy", "vectors.npy"]


def test_temporaries_of_a_killed_write_are_cleared_when_old(tmp_path):
    import os

    store = FeatureStore(tmp_path, "f")
    store.append(["a"], _vectors(1))
    old, fresh = store.folder / ".shard-000001-x.npz.abc.tmp", store.folder / ".shard-000001-y.npz.def.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (0, 0))
    assert store.load(["a"]).present.all()
    assert not old.exists() and fresh.exists()


def test_content_keys_hash_media_in_processes_in_catalogue_order(tmp_path):
    """More items than one hashing task holds, in worker processes: same keys, same order as one by one."""
    from recsys.catalogue import Item
    from recsys.encoding.cache import HASH_CHUNK, content_key, content_keys

    items = []
    for i in range(2 * HASH_CHUNK + 7):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(f"content {i % 300}".encode())  # some files share content, hence keys
        items.append(Item(str(i), f"title {i}", "", "", path if i % 5 else None, None))
    keys = content_keys(items, "image", processes=2)
    assert keys == [content_key(item, "image") for item in items] == content_keys(items, "image")
    assert keys[0] is None and keys[1] is not None and keys[1] == keys[301]
    assert content_keys(items, "text", processes=2) == [content_key(item, "text") for item in items]
    assert content_keys([], "image", processes=2) == []
    (tmp_path / "301.bin").unlink()  # gone since the catalogue was checked: the same error as in-process
    with pytest.raises(FileNotFoundError, match="301.bin"):
        content_keys(items, "image", processes=2)


def test_large_feature_arrays_live_in_an_unlinked_scratch_file(tmp_path, monkeypatch):
    """Past SCRATCH_MIN_BYTES the rows are a shared mapping of a file nobody can see, gone with the array."""
    from recsys.encoding import cache

    monkeypatch.setattr(cache, "SCRATCH_MIN_BYTES", 1)
    store = FeatureStore(tmp_path, "image/model@1", dim=3)
    store.append(["a", "b"], _vectors(2))
    feats = store.load(["b", None, "a"])
    assert isinstance(feats.vectors.base, mmap.mmap) and feats.vectors.flags.writeable
    np.testing.assert_array_equal(feats.vectors, np.vstack([_vectors(2)[1], np.zeros(3), _vectors(2)[0]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.folder.name]  # the scratch file has no name
    feats.vectors[1] = 7.0  # rows are written into as a pass fills them in
    assert feats.vectors[1].tolist() == [7.0, 7.0, 7.0]


def test_small_feature_arrays_stay_in_memory(tmp_path):
    from recsys.encoding.cache import feature_array

    rows = feature_array(10, 4, tmp_path)
    assert rows.base is None and rows.shape == (10, 4) and not rows.any()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("failure", ["no space", "read-only folder"])
def test_features_stay_in_memory_when_no_scratch_file_can_be_made(tmp_path, monkeypatch, caplog, failure):
    """A full disk would kill the process on a write to the mapping (SIGBUS): its space is reserved
    first, and without it, or without a writable folder, the rows are kept in RAM with one warning."""
    import errno

    from recsys.encoding import cache

    monkeypatch.setattr(cache, "SCRATCH_MIN_BYTES", 1)
    folder = tmp_path / "cache"
    if failure == "no space":

        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(cache.os, "posix_fallocate", full)
    else:
        folder.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING):
        rows = cache.feature_array(5, 2, folder)
    assert rows.base is None and rows.shape == (5, 2) and not rows.any()
    assert "keeping 0.0 GB of features in memory" in caplog.text


def test_features_stay_in_memory_where_space_cannot_be_reserved(tmp_path, monkeypatch):
    """Without posix_fallocate (macOS, Windows) a mapping could not be kept from SIGBUS on a full disk."""
    from recsys.encoding import cache

    monkeypatch.setattr(cache, "SCRATCH_MIN_BYTES", 1)
    monkeypatch.delattr(cache.os, "posix_fallocate")
    rows = cache.feature_array(5, 2, tmp_path)
    assert rows.base is None and not list(tmp_path.iterdir())
