"""The engine's item matrices kept between starts (recsys.snapshot): a later build of the same items
and models maps them instead of deriving them again, and anything else rebuilds them."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pandas as pd
import pytest
from fakes import FakeColourAligner, build_catalogue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys import pipeline, snapshot
from recsys.catalogue import load_catalogue
from recsys.float16 import rows_float32
from recsys.recommend.query import Query

QUERIES = [Query(text="a green fruit"), Query(text="red car", likes=("taxi",)), Query(likes=("frog",))]


@pytest.fixture
def aligned(tmp_path, patched_encoders, monkeypatch):
    """(catalogue folder, config): the fake catalogue with its images aligned onto colour words."""
    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeColourAligner(text))
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "cache"), image_aligner="fake", audio_aligner=None)
    return root, config


def _answers(engine) -> list:
    return [
        [(r.item.id, round(r.score, 6), {k: round(v, 6) for k, v in r.contributions.items()}) for r in
         engine.recommend(q, strategy=s, k=6)]
        for q in QUERIES
        for s in ("early", "late", "rrf")
    ]  # fmt: skip


def _snapshots(config) -> list:
    return sorted(p for p in (config.cache_folder() / snapshot.FOLDER).glob("*/*") if p.is_dir())


def _no_planning(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the features were read again")

    monkeypatch.setattr(pipeline, "plan_features", refuse)


def test_a_second_start_maps_the_first_builds_matrices_and_answers_the_same(aligned, monkeypatch):
    root, config = aligned
    first = pipeline.build_engine(load_catalogue(root), config)
    assert len(_snapshots(config)) == 1
    _no_planning(monkeypatch)
    again = pipeline.build_engine(load_catalogue(root), config)
    for m, ix in again.indexes.items():
        before = first.indexes[m]
        assert isinstance(ix.native, np.memmap) and not ix.native.flags.writeable
        np.testing.assert_array_equal(ix.native, before.native)
        np.testing.assert_array_equal(ix.present, before.present)
        assert (ix.centre is None) == (before.centre is None)
        assert (ix.shared is None) == (before.shared is None)
        assert ix.aligner is before.aligner or type(ix.aligner) is type(before.aligner)
    assert again.indexes["text"].shared is again.indexes["text"].native  # as a fresh build sets it
    assert _answers(again) == _answers(first)


def test_a_changed_item_rebuilds_the_snapshot_and_replaces_the_old_one(aligned):
    root, config = aligned
    pipeline.build_engine(load_catalogue(root), config)
    old = _snapshots(config)
    manifest = pd.read_csv(root / "catalogue.csv", keep_default_na=False)
    manifest.loc[manifest.id == "lime", "description"] = "a sour citrus"
    manifest.to_csv(root / "catalogue.csv", index=False)
    engine = pipeline.build_engine(load_catalogue(root), config)
    new = _snapshots(config)
    assert len(new) == 1 and new != old
    assert engine.recommend(Query(text="a sour citrus"), k=1)[0].item.id == "lime"


def test_other_models_or_item_precision_get_their_own_matrices(aligned, monkeypatch):
    root, config = aligned
    pipeline.build_engine(load_catalogue(root), config)
    monkeypatch.setattr("recsys.recommend.engine.HALF_PRECISION_ABOVE", 2)  # as a catalogue past 20k items
    half = pipeline.build_engine(load_catalogue(root), config)
    assert half.indexes["image"].native.dtype == np.float16
    unaligned = pipeline.build_engine(load_catalogue(root), pipeline.PipelineConfig(
        cache_dir=config.cache_dir, image_aligner=None, audio_aligner=None))  # fmt: skip
    assert unaligned.indexes["image"].shared is None
    assert len(_snapshots(config)) == 2  # one per set of models; the float32 one was replaced


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "image.native.npy").write_bytes(b"\x93NUMPY garbage"),
        lambda folder: os.truncate(folder / "text.native.npy", 100),
        lambda folder: (folder / "audio.present.npy").unlink(),
        lambda folder: (folder / snapshot.MANIFEST).write_text("{not json"),
        lambda folder: (folder / snapshot.MANIFEST).write_text(json.dumps({"format": snapshot.FORMAT})),
    ],
    ids=["garbage", "truncated", "missing", "manifest-not-json", "manifest-incomplete"],
)
def test_a_damaged_snapshot_is_reported_removed_and_rebuilt(aligned, caplog, damage):
    root, config = aligned
    first = _answers(pipeline.build_engine(load_catalogue(root), config))
    (folder,) = _snapshots(config)
    damage(folder)
    with caplog.at_level(logging.WARNING, logger="recsys.snapshot"):
        engine = pipeline.build_engine(load_catalogue(root), config)
    assert "rebuilding the engine snapshot" in caplog.text
    assert _answers(engine) == first
    assert len(_snapshots(config)) == 1  # saved again


def test_a_snapshot_that_cannot_be_written_costs_only_time(aligned, caplog):
    root, config = aligned
    engines = config.cache_folder() / snapshot.FOLDER
    engines.parent.mkdir(parents=True, exist_ok=True)
    engines.write_text("a file where the snapshots' folder goes")
    with caplog.at_level(logging.WARNING, logger="recsys.snapshot"):
        engine = pipeline.build_engine(load_catalogue(root), config)
    assert "cannot save the engine snapshot" in caplog.text
    assert engine.recommend(Query(text="a green fruit"), k=1)


def _matrices(n: int = 4) -> dict[str, snapshot.Matrices]:
    rng = np.random.default_rng(0)
    return {"text": snapshot.Matrices(rng.normal(size=(n, 3)).astype(np.float32), np.ones(n, bool))}


def test_leftovers_of_a_killed_save_are_removed_once_stale(tmp_path):
    base = tmp_path / "engines" / "cat-0"
    stale, live = base / ".partial-old-1", base / ".partial-new-2"
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "text.native.npy").write_bytes(b"half written")
    old = time.time() - snapshot.STALE_PARTIAL_S - 60
    os.utime(stale, (old, old))
    assert snapshot.save_snapshot(base, "k" * 64, _matrices())
    assert not stale.exists() and live.exists()  # another process may still be writing that one
    assert snapshot.load_snapshot(base, "k" * 64, 4, ["text"]) is not None
    assert snapshot.load_snapshot(base, "k" * 64, 5, ["text"]) is None  # other items: not this snapshot


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


_WIDTH = st.sampled_from([3, 4, 0, -1, "3", None, 1e300, [3]])
_PLAUSIBLE = st.dictionaries(
    st.sampled_from(["text", "image"]),
    st.fixed_dictionaries({"native": _WIDTH}, optional={"shared": _WIDTH, "centre": _JSON}),
    min_size=1,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    manifest=st.fixed_dictionaries(
        {"format": st.sampled_from([snapshot.FORMAT, "other"]), "key": st.sampled_from(["k" * 64, 3]),
         "items": st.sampled_from([4, "4", -1]), "modalities": _JSON | _PLAUSIBLE, "extras": _JSON}
    ) | _JSON,
    raw=st.none() | st.binary(max_size=64),
)  # fmt: skip
def test_any_manifest_loads_or_is_rebuilt_and_never_raises(tmp_path, manifest, raw):
    base = tmp_path / "engines" / "cat-1"
    assert snapshot.save_snapshot(base, "k" * 64, _matrices())
    (folder,) = [p for p in base.iterdir()]
    (folder / snapshot.MANIFEST).write_bytes(raw if raw is not None else json.dumps(manifest).encode())
    loaded = snapshot.load_snapshot(base, "k" * 64, 4, ["text"])
    if loaded is not None:
        matrices, extras = loaded
        assert isinstance(extras, dict) and list(matrices) == ["text"]
        for mats in matrices.values():
            assert mats.native.shape[0] == 4 and mats.present.shape == (4,)


def test_rows_of_mapped_half_precision_matrices_convert_without_a_warning(tmp_path, recwarn):
    base = tmp_path / "engines" / "cat-2"
    rng = np.random.default_rng(1)
    half = snapshot.Matrices(rng.normal(size=(5, 3)).astype(np.float16), np.ones(5, bool))
    assert snapshot.save_snapshot(base, "h" * 64, {"image": half})
    (matrices, _) = snapshot.load_snapshot(base, "h" * 64, 5, ["image"])
    mapped = matrices["image"].native
    assert not mapped.flags.writeable
    rows = rows_float32(mapped, [3, 1])
    np.testing.assert_array_equal(rows, half.native[[3, 1]].astype(np.float32))
    assert rows.flags.writeable and rows.dtype == np.float32
    assert not [w for w in recwarn if "not writable" in str(w.message)]


@given(keys=st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=6))
def test_a_keys_part_hashes_the_bytes_snapshots_were_keyed_by(keys) -> None:
    """Each key (``-`` for none, non-ASCII as ``?``) and a comma, hashed in order: the bytes earlier
    builds keyed their snapshots by, so an upgrade maps the snapshot it finds instead of rebuilding."""
    import hashlib

    digest = hashlib.sha256()
    for key in keys:
        digest.update(b"-" if key is None else key.encode("ascii", "replace"))
        digest.update(b",")
    assert snapshot.keys_part("text", keys) == f"text items {digest.hexdigest()}"
