"""Remembered content hashes: a warm pass reads no media file, and the keys always equal a fresh hash's."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recsys.catalogue import Item
from recsys.encoding import cache
from recsys.encoding.cache import DIGEST_FOLDER, catalogue_keys, content_keys

#: Longer than the kernel's file-timestamp tick (at most 10 ms), so a rewrite gets a new ctime.
TICK = 0.03


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file hashed, in order (the real hash still runs); stamps are trusted at once."""
    calls: list[str] = []
    real = cache._file_digest

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(cache, "_file_digest", counting)
    monkeypatch.setattr(cache, "RACY_NS", 0)
    return calls


def _items(root: Path, files: dict[str, bytes], rows: list[str | None]) -> list[Item]:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return [Item(f"i{n}", "t", "", "", None if f is None else root / f, None) for n, f in enumerate(rows)]


def test_a_warm_pass_reads_no_file_and_gives_the_same_keys(tmp_path, hashed):
    items = _items(tmp_path / "cat", {"a.png": b"a" * 10, "b.png": b"b" * 10}, ["a.png", "b.png", "a.png", None])
    fresh = content_keys(items, "image")
    hashed.clear()
    cold = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    assert cold == fresh and cold[3] is None and cold[0] == cold[2]
    assert sorted(hashed) == ["a.png", "b.png"]  # a file two items use is hashed once
    hashed.clear()
    assert catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c") == cold
    assert hashed == []
    assert len(list((tmp_path / "c" / DIGEST_FOLDER).iterdir())) == 1


def test_a_changed_file_is_hashed_again_even_with_its_size_and_mtime_put_back(tmp_path, hashed):
    items = _items(tmp_path / "cat", {"a.png": b"a" * 10, "b.png": b"b" * 10}, ["a.png", "b.png"])
    before = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    path = tmp_path / "cat" / "a.png"
    info = os.stat(path)
    time.sleep(TICK)
    path.write_bytes(b"z" * 10)  # same size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # same mtime: only ctime tells
    hashed.clear()
    after = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    assert hashed == ["a.png"] and after[1] == before[1] and after[0] != before[0]


def test_a_file_changed_just_now_is_not_trusted(tmp_path, hashed, monkeypatch):
    """Within RACY_NS of a file's last change its stamp could repeat after another write: hash again."""
    monkeypatch.setattr(cache, "RACY_NS", 60 * 10**9)
    items = _items(tmp_path / "cat", {"a.png": b"a"}, ["a.png"])
    for _ in range(2):
        catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    assert hashed == ["a.png", "a.png"]


def test_a_damaged_memo_is_reported_and_rebuilt(tmp_path, hashed, caplog):
    items = _items(tmp_path / "cat", {"a.png": b"a"}, ["a.png"])
    keys = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    (memo,) = (tmp_path / "c" / DIGEST_FOLDER).iterdir()
    memo.write_bytes(memo.read_bytes()[:-20])
    hashed.clear()
    with caplog.at_level(logging.WARNING):
        assert catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c") == keys
    assert hashed == ["a.png"] and "content hashes" in caplog.text


def test_a_missing_file_raises_as_without_the_memo(tmp_path, hashed):
    items = _items(tmp_path / "cat", {}, ["gone.png"])
    with pytest.raises(OSError):
        catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")


@settings(max_examples=20, deadline=None)
@given(
    contents=st.lists(st.binary(max_size=8), min_size=1, max_size=4),
    rows=st.lists(st.integers(-1, 3), max_size=8),
    edits=st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=8)), max_size=3),
    trust_at_once=st.booleans(),
)
def test_keys_always_equal_a_fresh_hash(tmp_path_factory, contents, rows, edits, trust_at_once):
    """Any catalogue, any edits between passes: the keys are those of hashing anew. With the racy
    window, files just written are hashed again; without it, edits come a timestamp tick later."""
    root = tmp_path_factory.mktemp("cat")
    files = {f"{i}.png": data for i, data in enumerate(contents)}
    items = _items(root, files, [None if r < 0 or r >= len(contents) else f"{r}.png" for r in rows])
    racy = 0 if trust_at_once else cache.RACY_NS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "RACY_NS", racy)
        assert catalogue_keys(items, "image", root, cache_dir=root / "c") == content_keys(items, "image")
        for index, data in edits:
            if index < len(contents):
                if trust_at_once:
                    time.sleep(TICK)
                (root / f"{index}.png").write_bytes(data)
        assert catalogue_keys(items, "image", root, cache_dir=root / "c") == content_keys(items, "image")


def test_a_symlink_pointed_at_another_file_is_hashed_again(tmp_path, hashed):
    """Two files made in one go can share size, mtime and ctime: the inode tells them apart."""
    items = _items(tmp_path / "cat", {"a.png": b"a" * 4, "b.png": b"b" * 4}, ["link.png"])
    info = os.stat(tmp_path / "cat" / "a.png")
    os.utime(tmp_path / "cat" / "b.png", ns=(info.st_atime_ns, info.st_mtime_ns))
    (tmp_path / "cat" / "link.png").symlink_to("a.png")
    first = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    (tmp_path / "cat" / "link.png").unlink()
    (tmp_path / "cat" / "link.png").symlink_to("b.png")
    assert catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c") == content_keys(items, "image")
    assert content_keys(items, "image") != first


def test_a_memo_with_stamps_of_another_width_is_reported_and_rebuilt(tmp_path, hashed, caplog):
    items = _items(tmp_path / "cat", {"a.png": b"a"}, ["a.png"])
    keys = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c")
    (memo,) = (tmp_path / "c" / DIGEST_FOLDER).iterdir()
    with np.load(memo) as arrays:
        parts = dict(arrays)
    np.savez(memo.with_suffix(""), **{**parts, "stats": parts["stats"][:, :3]})  # np.savez adds the .npz
    hashed.clear()
    with caplog.at_level(logging.WARNING):
        assert catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c") == keys
    assert hashed == ["a.png"] and "stamps of 3 fields" in caplog.text


@pytest.mark.skipif(os.sep != "/", reason="POSIX paths")
@given(
    parts=st.lists(st.sampled_from(["", ".", "..", "a", "b.png", "..a", ".b", "a..", "/", "é"]), max_size=8),
    leading=st.sampled_from(["", "/", "//", "///"]),
)
@example(parts=["a", ""], leading="/")  # a trailing slash
@example(parts=["a", ".", "b"], leading="/")
@example(parts=["a", "..", "b"], leading="/")
@example(parts=["a", "."], leading="/")
@example(parts=["a", "", "b"], leading="/")
@example(parts=["a"], leading="//")  # kept: POSIX leaves a leading // to the system
@example(parts=["a"], leading="///")
def test_a_files_memo_name_is_its_absolute_normal_path(parts: list[str], leading: str) -> None:
    """A media file is remembered under ``os.path.abspath`` of its path, which the short way for
    paths already absolute and normal must give too (else one file is hashed under two names)."""
    path = leading + "/".join(parts)
    if path:
        assert cache._absolute(path) == os.path.abspath(path)
        assert cache._absolute(Path(path)) == os.path.abspath(Path(path))


def test_a_loaded_catalogue_keys_its_files_by_the_stamps_the_load_read(tmp_path, hashed, monkeypatch):
    """The load stats every media file already: its stamps key the hashes, with no second stat, and
    give the keys a stat of each file gives (a catalogue made otherwise has none and stats them)."""
    from fakes import write_square

    from recsys.catalogue import Catalogue, load_catalogue
    from recsys.encoding import item_keys
    from recsys.stamps import NO_STAMP, stamp

    root = tmp_path / "cat"
    root.mkdir()
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        write_square(root / name, colour)
    (root / "catalogue.csv").write_text("id,title,image\nx,one,a.png\ny,two,\nz,three,b.png\nw,four,a.png\n")
    loaded = load_catalogue(root)
    stamps = loaded.file_stamps("image")
    assert stamps is not None and loaded.file_stamps("audio") is None
    assert [tuple(row) for row in stamps.tolist()] == [
        stamp(os.stat(it.image)) if it.image is not None else NO_STAMP for it in loaded.items
    ]
    stated = catalogue_keys(loaded.items, "image", root, cache_dir=tmp_path / "c1")
    monkeypatch.setattr(cache, "_stamp_or_none", lambda name: pytest.fail(f"{name} was stat'ed again"))
    assert item_keys(loaded, "image", None, cache_dir=tmp_path / "c2") == stated
    assert Catalogue(root, loaded.items, []).file_stamps("image") is None


def _stamps_of(items: list[Item]) -> np.ndarray:
    from recsys.stamps import NO_STAMP, stamp

    return np.array([stamp(os.stat(it.image)) if it.image is not None else NO_STAMP for it in items], dtype=np.int64)


@pytest.fixture
def whole(monkeypatch: pytest.MonkeyPatch, hashed: list[str]) -> list[str]:
    """The whole-list memo from 3 items on, every file hashed counted (:func:`hashed`)."""
    monkeypatch.setattr(cache, "WHOLE_KEYS_FROM", 3)
    return hashed


def test_an_unchanged_catalogue_reads_its_whole_list_of_keys_back(tmp_path, whole, monkeypatch):
    """From WHOLE_KEYS_FROM items the keys come back from one file while every input is as before:
    no file hashed, no per-file memo opened, no text hashed; the same keys a fresh hash gives."""
    items = _items(tmp_path / "cat", {"a.png": b"a" * 10, "b.png": b"b" * 10}, ["a.png", "b.png", "a.png", None])
    stamps = _stamps_of(items)
    image = catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c", stamps=stamps)
    text = catalogue_keys(items, "text", tmp_path / "cat", cache_dir=tmp_path / "c")
    assert image == content_keys(items, "image") and text == content_keys(items, "text")
    assert len(list((tmp_path / "c" / cache.KEYS_FOLDER).iterdir())) == 2
    monkeypatch.setattr(cache.StampMemo, "load", lambda *a, **k: pytest.fail("the per-file memo was opened"))
    monkeypatch.setattr(cache, "content_keys", lambda *a, **k: pytest.fail("keys were computed"))
    whole.clear()
    assert catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c", stamps=stamps) == image
    assert catalogue_keys(items, "text", tmp_path / "cat", cache_dir=tmp_path / "c") == text
    assert whole == []


@pytest.mark.parametrize(
    "change",
    ["file", "name", "order", "title", "description", "boundary", "fewer", "no stamps"],
)
def test_any_changed_input_computes_the_keys_again(tmp_path, whole, change):
    """A file rewritten (its stamp), a file or text moved to another item, one item fewer: never the
    kept list, always what a fresh hash gives; without the load's stamps no list is kept or read."""
    files = {"a.png": b"a" * 10, "b.png": b"b" * 10, "c.png": b"c" * 10}
    items = _items(tmp_path / "cat", files, ["a.png", "b.png", "c.png"])
    items = [Item(it.id, f"title {n}", f"about {n}", "", it.image, None) for n, it in enumerate(items)]
    root, kept = tmp_path / "cat", tmp_path / "c"
    for modality in ("image", "text"):
        catalogue_keys(items, modality, root, cache_dir=kept, stamps=_stamps_of(items))
    if change == "file":
        time.sleep(TICK)
        (root / "b.png").write_bytes(b"z" * 10)
    elif change == "name":
        items[0] = Item("i0", "title 0", "about 0", "", root / "c.png", None)
    elif change == "order":
        items[0], items[1] = items[1], items[0]
    elif change == "title":
        items[1] = Item("i1", "title 1!", "about 1", "", items[1].image, None)
    elif change == "description":  # the same text, parted otherwise
        items[1] = Item("i1", "title 1 about", " 1", "", items[1].image, None)
    elif change == "boundary":  # the titles joined read the same
        items[0] = Item("i0", "title 0t", "about 0", "", items[0].image, None)
        items[1] = Item("i1", "itle 1", "about 1", "", items[1].image, None)
    elif change == "fewer":
        items = items[:2] + items[:1]
        items[2] = Item("i2", "title 0", "about 0", "", root / "a.png", None)
    whole.clear()
    stamps = None if change == "no stamps" else _stamps_of(items)
    image = catalogue_keys(items, "image", root, cache_dir=kept, stamps=stamps)
    if change == "file":
        assert whole == ["b.png"]  # the others' hashes come from the per-file memo
    assert image == content_keys(items, "image")
    assert catalogue_keys(items, "text", root, cache_dir=kept) == content_keys(items, "text")


def test_a_whole_list_is_kept_only_past_its_size_and_once_its_files_are_settled(tmp_path, hashed, monkeypatch):
    """Below WHOLE_KEYS_FROM items nothing more is written; files changed within RACY_NS are not
    vouched for by their stamps yet, so their list is not kept either."""
    items = _items(tmp_path / "cat", {"a.png": b"a", "b.png": b"b"}, ["a.png", "b.png", None])
    catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c", stamps=_stamps_of(items))
    assert not (tmp_path / "c" / cache.KEYS_FOLDER).exists()
    monkeypatch.setattr(cache, "WHOLE_KEYS_FROM", 3)
    monkeypatch.setattr(cache, "RACY_NS", 60 * 10**9)
    catalogue_keys(items, "image", tmp_path / "cat", cache_dir=tmp_path / "c", stamps=_stamps_of(items))
    assert not (tmp_path / "c" / cache.KEYS_FOLDER).exists()
    catalogue_keys(items, "text", tmp_path / "cat", cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c" / cache.KEYS_FOLDER).iterdir())) == 1  # text has no files to settle


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_a_damaged_whole_list_is_computed_again(tmp_path_factory, data):
    """Whatever bytes replace the kept file, the keys are a fresh hash's (a damaged file is removed)."""
    import recsys.encoding.cache as module

    tmp = tmp_path_factory.mktemp("whole")
    items = _items(tmp / "cat", {"a.png": b"a", "b.png": b"b"}, ["a.png", "b.png", None, "a.png"])
    fresh = content_keys(items, "image")
    saved = module.WHOLE_KEYS_FROM, module.RACY_NS
    module.WHOLE_KEYS_FROM, module.RACY_NS = 3, 0
    try:
        stamps = _stamps_of(items)
        catalogue_keys(items, "image", tmp / "cat", cache_dir=tmp / "c", stamps=stamps)
        (kept,) = (tmp / "c" / cache.KEYS_FOLDER).iterdir()
        kept.write_bytes(data)
        assert catalogue_keys(items, "image", tmp / "cat", cache_dir=tmp / "c", stamps=stamps) == fresh
    finally:
        module.WHOLE_KEYS_FROM, module.RACY_NS = saved
