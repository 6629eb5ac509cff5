"""Derived folders of earlier model sets (recsys.retention): a catalogue keeps its last two, nothing else goes."""

from __future__ import annotations

import logging
import os
import string

import numpy as np
from fakes import FakeColourAligner, build_catalogue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys import paths, pipeline, retention
from recsys.catalogue import load_catalogue
from recsys.recommend.query import Query
from recsys.retention import SUFFIX, keep_recent


def _used(parent, name, catalogue, kind="engine snapshot", when=None):
    """A derived folder used by a start for ``catalogue``; ``when``: its last use, in seconds."""
    folder = parent / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vectors.npy").write_bytes(b"x")
    removed = keep_recent(folder, kind, catalogue)
    if when is not None:
        os.utime(parent / f"{name}{SUFFIX}", (when, when))
    return folder, removed


def test_a_catalogue_keeps_its_two_most_recently_used_model_sets(tmp_path):
    cat = tmp_path / "catalogue"
    a, _ = _used(tmp_path / "engines", "cat-aaa", cat, when=1_000)
    b, removed = _used(tmp_path / "engines", "cat-bbb", cat, when=2_000)
    assert removed == [] and a.is_dir() and b.is_dir()
    c, removed = _used(tmp_path / "engines", "cat-ccc", cat)
    assert removed == [a]
    assert not a.exists() and not (tmp_path / "engines" / f"cat-aaa{SUFFIX}").exists()
    assert b.is_dir() and c.is_dir()
    os.utime(tmp_path / "engines" / f"cat-ccc{SUFFIX}", (3_000, 3_000))
    _, removed = _used(tmp_path / "engines", "cat-bbb", cat)  # back to the previous set: the other one stays
    assert removed == [] and c.is_dir()


def test_other_catalogues_kinds_and_unrecorded_folders_stay(tmp_path, caplog):
    parent, cat = tmp_path / "stores", tmp_path / "catalogue"
    other_catalogue, _ = _used(parent, "cat-other", tmp_path / "another", when=10)
    other_kind, _ = _used(parent, "cat-joint", cat, kind="joint projection", when=10)
    unrecorded = parent / "cat-from-an-earlier-version"
    unrecorded.mkdir(parents=True)
    malformed = parent / "cat-malformed"
    malformed.mkdir()
    (parent / f"cat-malformed{SUFFIX}").write_text('{"format": 1, "kind": "engine snapshot"}')
    _used(parent, "cat-1", cat, when=20)
    with caplog.at_level(logging.INFO, logger="recsys.retention"):
        _used(parent, "cat-2", cat, when=30)
        _, removed = _used(parent, "cat-3", cat)
    assert [p.name for p in removed] == ["cat-1"]
    assert "the engine snapshot of an earlier model set" in caplog.text
    for kept in (other_catalogue, other_kind, unrecorded, malformed, parent / "cat-2", parent / "cat-3"):
        assert kept.is_dir(), kept


def test_a_symlinked_entry_loses_the_link_only(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("not ours")
    parent, cat = tmp_path / "engines", tmp_path / "catalogue"
    parent.mkdir()
    (parent / "cat-link").symlink_to(target, target_is_directory=True)
    keep_recent(parent / "cat-link", "engine snapshot", cat)
    os.utime(parent / f"cat-link{SUFFIX}", (1, 1))
    _used(parent, "cat-2", cat, when=2)
    _, removed = _used(parent, "cat-3", cat)
    assert removed == [parent / "cat-link"] and not os.path.lexists(parent / "cat-link")
    assert (target / "keep.txt").read_text() == "not ours"


def test_a_cache_that_cannot_be_written_or_cleaned_costs_space_only(tmp_path, monkeypatch, caplog):
    parent, cat = tmp_path / "engines", tmp_path / "catalogue"
    old, _ = _used(parent, "cat-1", cat, when=1)
    _used(parent, "cat-2", cat, when=2)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.shutil, "rmtree", refuse)
    with caplog.at_level(logging.WARNING):
        _, removed = _used(parent, "cat-3", cat)
    assert removed == [] and old.is_dir() and (parent / f"cat-1{SUFFIX}").is_file()  # tried again next time
    assert "cannot remove" in caplog.text and "Permission denied" in caplog.text
    monkeypatch.setattr(retention.atomic, "write_text", refuse)
    assert keep_recent(parent / "cat-4", "engine snapshot", cat) == []  # no record: nothing pruned
    assert old.is_dir()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.one_of(st.binary(max_size=200), st.text(string.printable, max_size=200).map(str.encode)))
def test_any_record_left_beside_a_folder_never_breaks_a_start(tmp_path_factory, record):
    """Whatever bytes sit in a record, a start goes on; only a well-formed record of this catalogue counts."""
    parent = tmp_path_factory.mktemp("engines")
    cat = parent / "catalogue"
    stranger = parent / "cat-x"
    stranger.mkdir()
    (parent / f"cat-x{SUFFIX}").write_bytes(record)
    _used(parent, "cat-1", cat)
    assert stranger.is_dir()


def test_builds_keep_the_snapshots_and_stores_of_the_last_two_model_sets(tmp_path, patched_encoders, monkeypatch):
    """Three aligners in turn (a retrained head is another aligner): the first one's snapshot and store go."""
    root = build_catalogue(tmp_path / "cat")
    cache = tmp_path / "cache"

    head = {"version": 1}

    class Retrained(FakeColourAligner):
        def identity(self) -> str:
            return f"fake-colour #{head['version']}"

    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: Retrained(text))
    config = pipeline.PipelineConfig(cache_dir=str(cache), image_aligner="fake", audio_aligner=None, search="ann")
    tops = []
    for version in (1, 2, 3):
        head["version"] = version
        engine = pipeline.build_engine(load_catalogue(root), config)
        tops.append([r.item.id for r in engine.recommend(Query(text="a green fruit"), k=3)])
        engine.store.close()
    snapshots = sorted(p.name for p in (cache / "engines").iterdir() if p.is_dir())
    stores = sorted(p.name for p in (cache / "stores").iterdir() if p.is_dir())
    assert len(snapshots) == 2 and len(stores) == 2
    assert len(list((cache / "stores").glob("joint-*.npz"))) == 2
    assert tops[0] == tops[1] == tops[2]
    head["version"] = 2  # back to the previous head: its snapshot is mapped, nothing is derived again
    monkeypatch.setattr(pipeline, "_built_indexes", lambda *a: (_ for _ in ()).throw(AssertionError("derived")))
    engine = pipeline.build_engine(load_catalogue(root), config)
    assert np.array_equal(engine.indexes["image"].present, engine.catalogue.has_modality("image"))
    assert sorted(p.name for p in (cache / "engines").iterdir() if p.is_dir()) == snapshots
    engine.store.close()


def test_entries_are_listed_and_orphans_pruned(tmp_path, capsys):
    """An entry without a record (an earlier version's) or whose catalogue folder is gone is an orphan;
    `python -m recsys cache --prune` removes those and nothing else."""
    from recsys.cli import main
    from recsys.retention import entries, prune_orphans

    cache, live, gone = tmp_path / "cache", tmp_path / "live", tmp_path / "gone"
    live.mkdir()
    kept, _ = _used(cache / "engines", "live-1", live)
    stale, _ = _used(cache / "stores", "gone-1", gone, kind="vector store")
    legacy = cache / "stores" / "old-1"
    legacy.mkdir(parents=True)
    (legacy / "seg.npy").write_bytes(b"x" * 5000)
    (cache / "text_minilm-abc").mkdir()  # cached features: never listed
    listed = {e.path.name: e for e in entries(cache)}
    assert set(listed) == {"live-1", "gone-1", "old-1"}
    assert [listed[n].orphaned for n in ("live-1", "gone-1", "old-1")] == [False, True, True]
    assert listed["old-1"].bytes == 5000 and listed["live-1"].catalogue == str(live)
    assert main(["cache", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "3 entries" in out and "2 orphaned" in out and "no use record" in out
    assert main(["cache", "--cache-dir", str(cache), "--prune"]) == 0
    assert "removed 2 orphaned entries" in capsys.readouterr().out
    assert kept.is_dir() and not stale.exists() and not legacy.exists()
    assert not (cache / "stores" / f"gone-1{SUFFIX}").exists() and (cache / "text_minilm-abc").is_dir()
    assert prune_orphans(cache) == []
    assert main(["cache", "--cache-dir", str(tmp_path / "nothing")]) == 0
    assert "no engine snapshots or vector stores" in capsys.readouterr().out
