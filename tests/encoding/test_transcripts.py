"""The transcript cache: what was heard comes back per clip content and transcriber; bad shards are rebuilt."""

from __future__ import annotations

import logging

import numpy as np

from recsys.encoding.transcripts import TranscriptStore
from recsys.transcribe import Transcript

SEVEN = Transcript(text="seven", words=("seven", "heaven", "eleven"))
NOTHING = Transcript(text="", words=())


def test_transcripts_come_back_by_key_and_nothing_heard_is_kept(tmp_path):
    store = TranscriptStore(tmp_path, "asr/x@1")
    assert store.load(["a"]) == {}
    store.append({"a": SEVEN, "b": NOTHING})
    store.append({"c": Transcript(text="dog", words=("dog",))})
    got = TranscriptStore(tmp_path, "asr/x@1").load(["a", "b", "c", "missing"])
    assert got == {"a": SEVEN, "b": NOTHING, "c": Transcript(text="dog", words=("dog",))}
    assert TranscriptStore(tmp_path, "asr/x@2").load(["a"]) == {}  # other settings never read them
    assert store.append({}) is None


def test_a_damaged_or_foreign_shard_is_reported_removed_and_ignored(tmp_path, caplog):
    store = TranscriptStore(tmp_path, "asr/x@1")
    good = store.append({"a": SEVEN})
    bad = store.folder / "shard-000001-deadbeef.npz"
    bad.write_bytes(good.read_bytes()[:50])
    foreign = store.folder / "shard-000002-cafecafe.npz"
    np.savez(
        foreign,
        keys=np.asarray(["b"]),
        text=np.asarray(["x"]),
        words=np.asarray(["x"]),
        transcriber_id=np.asarray("asr/other"),
    )
    with caplog.at_level(logging.WARNING):
        assert store.load(["a", "b"]) == {"a": SEVEN}
    assert not bad.exists() and not foreign.exists() and "rebuilding transcript cache" in caplog.text


def test_an_unwritable_cache_keeps_going(tmp_path, caplog):
    (tmp_path / "transcripts").write_text("a file where the folder should be")
    store = TranscriptStore(tmp_path, "asr/x@1")
    with caplog.at_level(logging.WARNING):
        assert store.append({"a": SEVEN}) is None
    assert not store.writable and "cannot write" in caplog.text
