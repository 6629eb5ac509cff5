"""The stamp memo against a plain dict of what it should hold: runs of lookups, remembered values and
saves, each run reopening the file the last one wrote, as starts of a large catalogue do."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.stamps import ListMemo, StampMemo, list_digest, stamp

NAMES = st.sampled_from(["a.png", "b.png", "dir/c.wav", "ü.png", "d e.png"])
KINDS = st.sampled_from(["image", "audio"])
STAMPS = st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 1), st.integers(0, 2**63 - 1))
VALUES = st.sampled_from(["", "ok", "not an image", "abc123"])
LOOKUPS = st.lists(st.tuples(KINDS, NAMES, STAMPS), max_size=6)
REMEMBERED = st.lists(st.tuples(KINDS, NAMES, STAMPS, VALUES), max_size=4)
RUNS = st.lists(st.tuples(LOOKUPS, REMEMBERED, st.booleans()), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(runs=RUNS)
def test_a_memo_holds_what_its_runs_used_and_added(tmp_path_factory, runs) -> None:
    path = Path(tmp_path_factory.mktemp("memo")) / "memo.npz"
    saved: dict[str, tuple[tuple[int, ...], str]] = {}  # what the file should hold
    for lookups, remembered, one_at_a_time in runs:
        memo = StampMemo.load(path, "a test memo", 1)
        used: dict[str, tuple[tuple[int, ...], str]] = {}
        if one_at_a_time:
            found = [memo.lookup_many([(kind, name)], np.array([when]))[0] for kind, name, when in lookups]
        else:
            stamps = np.array([s for _, _, s in lookups], dtype=np.int64)
            found = memo.lookup_many([(kind, name) for kind, name, _ in lookups], stamps)
        for (kind, name, file_stamp), value in zip(lookups, found, strict=True):
            known = saved.get(f"{kind}:{name}")
            expected = known[1] if known is not None and known[0] == file_stamp else None
            assert value == expected
            if expected is not None:
                used[f"{kind}:{name}"] = known
        for kind, name, file_stamp, value in remembered:
            memo.remember(kind, name, file_stamp, value)
            used[f"{kind}:{name}"] = (file_stamp, value)
        before = path.stat().st_mtime_ns if path.exists() else None
        memo.save()
        if used == saved:
            assert (path.stat().st_mtime_ns if path.exists() else None) == before  # nothing changed, nothing written
        saved = used
    reopened = StampMemo.load(path, "a test memo", 1)
    seen = {(kind, name, when) for looked, added, _ in runs for kind, name, when, *_ in looked + added}
    for kind, name, file_stamp in seen:  # what the last run kept, and nothing it left out
        known = saved.get(f"{kind}:{name}")
        found = reopened.lookup_many([(kind, name)], np.array([file_stamp]))[0]
        assert found == (known[1] if known and known[0] == file_stamp else None)


def test_an_inode_past_63_bits_still_makes_a_stamp(tmp_path: Path) -> None:
    """Network file systems may number files with all 64 bits; the memo keeps signed 64-bit stamps."""
    real = os.stat(tmp_path)
    fields = list(real)
    fields[1] = 2**64 - 5  # st_ino
    info = os.stat_result(fields, {"st_mtime_ns": real.st_mtime_ns, "st_ctime_ns": real.st_ctime_ns})
    made = stamp(info)
    assert 0 <= made[3] < 2**63
    memo = StampMemo.load(tmp_path / "memo.npz", "a test memo", 1)
    memo.remember("image", "x.png", made, "ok")
    memo.save()
    reopened = StampMemo.load(tmp_path / "memo.npz", "a test memo", 1)
    assert reopened.lookup_many([("image", "x.png")], np.array([stamp(info)])) == ["ok"]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=8)), max_size=6),
    parts=st.lists(st.binary(max_size=4), max_size=3),
)
def test_a_list_memo_gives_back_its_values_for_their_digest_only(tmp_path_factory, values, parts) -> None:
    """The values kept for one digest come back for it and that count alone; a value holding NUL is
    never kept (the file joins values with it)."""
    memo = ListMemo(Path(tmp_path_factory.mktemp("list")) / "list.npz", "a test list", 1)
    digest = list_digest(*parts)
    assert memo.recall(digest, len(values)) is None
    memo.keep(digest, values)
    if any("\0" in v for v in values if v is not None):
        assert memo.recall(digest, len(values)) is None
        return
    assert memo.recall(digest, len(values)) == values
    assert memo.recall(digest, len(values) + 1) is None
    assert memo.recall(list_digest(*parts, b""), len(values)) is None
    assert ListMemo(memo.path, "a test list", 2).recall(digest, len(values)) is None  # another format


def test_a_list_digest_tells_parts_apart_however_they_join() -> None:
    assert list_digest(b"ab", b"c") != list_digest(b"a", b"bc") != list_digest(b"abc")
