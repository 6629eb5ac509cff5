"""Deriving the engine's item matrices (recsys.pipeline): block by block, as one pass would."""

from __future__ import annotations

import numpy as np
from fakes import FakeColourAligner, build_catalogue

from recsys import pipeline
from recsys.catalogue import load_catalogue
from recsys.recommend.query import Query


def _engine(root, cache, monkeypatch, rows: int):
    monkeypatch.setattr(pipeline, "DERIVE_ROWS", rows)
    config = pipeline.PipelineConfig(cache_dir=str(cache), image_aligner="fake", audio_aligner=None)
    return pipeline.build_engine(load_catalogue(root), config)


def test_matrices_derived_in_blocks_are_those_of_one_pass(tmp_path, patched_encoders, monkeypatch):
    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeColourAligner(text))
    root = build_catalogue(tmp_path / "cat")
    whole = _engine(root, tmp_path / "one-pass", monkeypatch, rows=1_000)
    blocks = _engine(root, tmp_path / "blocks", monkeypatch, rows=2)  # 6 items: three blocks
    for m, ix in whole.indexes.items():
        other = blocks.indexes[m]
        np.testing.assert_array_equal(other.present, ix.present)
        np.testing.assert_allclose(other.native, ix.native, atol=1e-6)
        if ix.centre is not None:
            np.testing.assert_allclose(other.centre, ix.centre, atol=1e-6)
        if ix.shared is not None:
            np.testing.assert_allclose(other.shared, ix.shared, atol=1e-6)
    assert not whole.indexes["image"].native[~whole.indexes["image"].present].any()  # no picture: zeros
    assert whole.indexes["image"].shared is not None
    for query in (Query(text="a green fruit"), Query(likes=("taxi",))):
        assert [r.item.id for r in blocks.recommend(query, k=6)] == [r.item.id for r in whole.recommend(query, k=6)]


def test_features_in_scratch_files_give_the_same_engine(tmp_path, patched_encoders, monkeypatch):
    """A large catalogue's features are read into scratch files instead of RAM: same matrices."""
    from recsys.encoding import cache

    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeColourAligner(text))
    root = build_catalogue(tmp_path / "cat")
    in_memory = _engine(root, tmp_path / "memory", monkeypatch, rows=1_000)
    monkeypatch.setattr(cache, "SCRATCH_MIN_BYTES", 1)
    mapped = _engine(root, tmp_path / "scratch", monkeypatch, rows=2)
    for m, ix in in_memory.indexes.items():
        np.testing.assert_allclose(mapped.indexes[m].native, ix.native, atol=1e-6)
        if ix.shared is not None:
            np.testing.assert_allclose(mapped.indexes[m].shared, ix.shared, atol=1e-6)
    assert not [p for p in (tmp_path / "scratch").rglob("*") if p.name.startswith(".features-")]


def test_a_start_that_maps_its_snapshot_builds_a_network_only_for_a_query_that_needs_it(
    demo_engine, demo_catalogue, monkeypatch
):
    """Building the offline networks (sentence-transformers' and timm's imports) was most of a start
    that maps its snapshot (as the demo's second start does): each waits for the first query that
    needs it; one naming liked items only needs none."""
    from conftest import DEMO_CATALOGUE

    from recsys.encoders import registry

    monkeypatch.setattr(registry, "_CACHE", {})  # encoders of their own, as a fresh process builds
    engine = pipeline.build_engine(demo_catalogue, pipeline.PipelineConfig.layered(DEMO_CATALOGUE))
    networks = {m: enc._network for m, enc in engine.query_encoders.items() if hasattr(enc, "_network")}
    assert set(networks) == {"text", "image"} and engine.text_encoder is not demo_engine.text_encoder
    assert not any(n.built for n in networks.values())
    liked = engine.recommend(Query(likes=("apple",)), k=5)
    assert not any(n.built for n in networks.values())
    assert [r.item.id for r in liked] == [r.item.id for r in demo_engine.recommend(Query(likes=("apple",)), k=5)]
    worded = engine.recommend(Query(text="a red fruit"), k=5)
    assert networks["text"].built and not networks["image"].built
    assert [r.item.id for r in worded] == [r.item.id for r in demo_engine.recommend(Query(text="a red fruit"), k=5)]


def test_the_collector_waits_through_a_start_but_not_through_an_encoding_pass(tmp_path, patched_encoders, monkeypatch):
    """A build pauses Python's cyclic garbage collector while it makes its long-lived objects, lets it
    run through an encoding pass (hours on a large catalogue), and leaves it as it was."""
    import gc

    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: FakeColourAligner(text))
    root = build_catalogue(tmp_path / "cat")
    seen: dict[str, list[bool]] = {"keys": [], "encoding": [], "store": []}

    def spy(name, original):
        def wrapped(*args, **kwargs):
            seen[name].append(gc.isenabled())
            return original(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(pipeline, "item_keys", spy("keys", pipeline.item_keys))
    monkeypatch.setattr(pipeline, "_built_indexes", spy("encoding", pipeline._built_indexes))
    monkeypatch.setattr(pipeline, "attach_store", spy("store", pipeline.attach_store))
    gc.enable()
    _engine(root, tmp_path / "cache", monkeypatch, rows=1_000)  # first start: encodes
    assert set(seen["keys"]) == {False} and seen["encoding"] == seen["store"] == [True] and gc.isenabled()
    seen.update(keys=[], encoding=[], store=[])
    _engine(root, tmp_path / "cache", monkeypatch, rows=1_000)  # maps the first one's snapshot
    assert set(seen["keys"]) == {False} and seen["encoding"] == [] and seen["store"] == [False] and gc.isenabled()
