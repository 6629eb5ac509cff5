"""Shipped derived data (recsys.prebuilt): used when it matches, named in one log line and rebuilt when not."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fakes import FAKE_NAMES, FakeTextEncoder, build_catalogue, fake_encoders

from recsys import pipeline, prebuilt
from recsys.catalogue import load_catalogue
from recsys.maps import ProjectionParams, input_hash, map_path, project
from recsys.recommend.query import Query


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """The fake catalogue with a prebuilt/ folder exported from a first build (cache ``built``), and a
    ``build()`` that builds again with fresh fakes and an empty cache, returning (engine, encoders)."""
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "default-cache"))
    root = build_catalogue(tmp_path / "cat")
    runs = iter(range(100))

    def build(catalogue_root=root):
        encoders = fake_encoders()
        monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encoders[FAKE_NAMES[name]])
        config = pipeline.PipelineConfig(
            cache_dir=str(tmp_path / f"cache-{next(runs)}"), image_aligner=None, audio_aligner=None
        )
        return pipeline.build_engine(load_catalogue(catalogue_root), config), encoders

    first, _ = build()
    outputs = {m: ["embedding"] for m in first.indexes}
    folder = prebuilt.prebuilt_dir(root)
    manifest = prebuilt.export_features(
        first.catalogue, first.query_encoders, outputs, folder, cache_dir=tmp_path / "cache-0"
    )
    prebuilt.write_manifest(folder, manifest)
    return root, folder, first, build


def _forwards(encoders) -> int:
    return sum(e.encoded for e in encoders.values())


def _edit_manifest(folder, change) -> None:
    path = folder / prebuilt.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_matching_data_is_used_and_no_encoder_runs(shipped, caplog):
    _, folder, first, build = shipped
    with caplog.at_level(logging.INFO, logger="recsys.prebuilt"):
        engine, encoders = build()
    assert _forwards(encoders) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("seeded the cache" in r.getMessage() for r in caplog.records)
    for m in first.indexes:  # float16 storage: the same vectors to ~1e-3
        np.testing.assert_allclose(engine.indexes[m].native, first.indexes[m].native, atol=2e-3)
    assert engine.recommend(Query(text="a red apple"), k=1)[0].item.id == "apple"
    # the files are float16 and small, keyed by the content hashes the cache uses
    with np.load(folder / "text-embedding.npz") as data:
        assert data["vectors"].dtype == np.float16


def test_a_stale_encoder_key_is_logged_once_and_rebuilt(shipped, caplog):
    _, folder, _, build = shipped

    def other_model(manifest):
        for entry in manifest["features"]:
            if entry["modality"] == "text":
                entry["feature_id"] = "text/fake-64@other-weights"

    _edit_manifest(folder, other_model)
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        _, encoders = build()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "built with text/fake-64@other-weights, configured text/fake-64" in warnings[0]
    assert encoders["text"].encoded == 6  # text encoded normally, the other modalities still seeded
    assert encoders["image"].encoded == encoders["audio"].encoded == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:-40]),  # truncated: checksum mismatch
        lambda path: path.unlink(),  # missing
    ],
)
def test_a_damaged_file_is_logged_and_rebuilt(shipped, caplog, damage):
    _, folder, _, build = shipped
    damage(folder / "image-embedding.npz")
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        _, encoders = build()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "image-embedding.npz" in warnings[0]
    assert encoders["image"].encoded == 4  # distinct pictures (lime and frog share one)
    assert encoders["text"].encoded == 0


def test_wrong_dtype_or_shape_behind_a_valid_checksum_is_refused(shipped, caplog):
    from recsys import atomic

    _, folder, _, build = shipped
    path = folder / "text-embedding.npz"
    with np.load(path) as data:
        keys, vectors = data["keys"], data["vectors"]
    atomic.write_npz(path, keys=keys, vectors=vectors.astype(np.float32))  # not what the manifest promises
    digest = prebuilt._file_entry(path)["sha256"]
    _edit_manifest(folder, lambda m: [e.update(sha256=digest) for e in m["features"] if e["modality"] == "text"])
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        _, encoders = build()
    assert any("expected float16" in r.getMessage() for r in caplog.records)
    assert encoders["text"].encoded == 6


def test_an_edited_item_alone_is_encoded(shipped, caplog):
    root, _, _, build = shipped
    csv = root / "catalogue.csv"
    csv.write_text(csv.read_text().replace("a red apple fruit", "a crisp red apple"))
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        engine, encoders = build()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "1 item(s) new or edited" in warnings[0]
    assert (encoders["text"].encoded, encoders["image"].encoded) == (1, 0)
    assert engine.recommend(Query(text="a crisp apple"), k=1)[0].item.id == "apple"


def test_no_folder_is_silent(tmp_path, caplog):
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    with caplog.at_level(logging.INFO, logger="recsys.prebuilt"):
        report = prebuilt.seed_cache(catalogue, fake_encoders(), cache_dir=tmp_path / "cache")
    assert (report.rows, report.problems, caplog.records) == (0, [], [])


def test_the_label_bridge_class_embeddings_are_seeded_where_the_bridge_reads_them(tmp_path, monkeypatch):
    from recsys.alignment.bridge import cached_class_text_embeddings, class_text_cache_file

    class Classifier(FakeTextEncoder):  # any encoder with class names feeds a label bridge
        modality = "image"
        class_names = ["apple", "car", "frog"]

    text, image = FakeTextEncoder(), Classifier()
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "first"))
    expected = cached_class_text_embeddings(image.class_names, text)
    folder = prebuilt.prebuilt_dir(catalogue.root)
    prebuilt.write_manifest(folder, prebuilt.export_features(catalogue, {"text": text, "image": image}, {}, folder))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "fresh"))
    target = class_text_cache_file(image.class_names, text)
    assert not target.exists()
    with open(folder / prebuilt.MANIFEST) as fh:
        assert [e["file"] for e in json.load(fh)["label_bridge"]] == [target.name]
    # export_features found no modality outputs here, so only the bridge is shipped
    report = prebuilt.seed_cache(catalogue, {"text": text, "image": image})
    assert report.used == [f"label bridge {target.name}"]
    text.calls = 0
    np.testing.assert_allclose(cached_class_text_embeddings(image.class_names, text), expected, atol=2e-3)
    assert text.calls == 0  # read from the seeded file, not encoded
    # a configured cache folder gets them there, where a bridge built with that folder reads them
    configured = tmp_path / "configured"
    report = prebuilt.seed_cache(catalogue, {"text": text, "image": image}, cache_dir=configured)
    assert report.used == [f"label bridge {target.name}"]
    np.testing.assert_allclose(cached_class_text_embeddings(image.class_names, text, configured), expected, atol=2e-3)
    assert text.calls == 0


def _map_case(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = ["a", "b"] * 20
    params = ProjectionParams(n_neighbors=5)
    return vectors, groups, params


class _Gathered:
    """Map vectors gathered on demand (as :class:`recsys.maps.MapVectors`), counting the gathers."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors, self.shape, self.calls = vectors, vectors.shape, 0

    def all(self) -> np.ndarray:
        self.calls += 1
        return self.vectors


@pytest.mark.slow
def test_a_shipped_map_seeds_the_map_cache_only_for_the_same_vectors(tmp_path, caplog):
    vectors, groups, params = _map_case(tmp_path)
    drawn = project(vectors, params, cache_dir=tmp_path / "built", groups=groups)
    folder = tmp_path / "cat" / prebuilt.FOLDER
    manifest = {"format": prebuilt.FORMAT, "features": [], "label_bridge": [], "maps": []}
    folder.mkdir(parents=True)
    prebuilt.add_map(
        folder,
        manifest,
        source="fused",
        weights=None,
        params=params,
        vectors=vectors,
        groups=groups,
        map_file=map_path(tmp_path / "built", drawn.key),
    )
    prebuilt.write_manifest(folder, manifest)
    cache = tmp_path / "maps"
    # another machine's arithmetic: the same vectors to float16 precision still get the shipped map
    close = vectors.astype(np.float16).astype(np.float32)
    target = map_path(cache, input_hash(close, params, groups))
    assert prebuilt.seed_map(tmp_path / "cat", close, params, groups, target)
    np.testing.assert_array_equal(project(close, params, cache_dir=cache, groups=groups).coords, drawn.coords)
    # other vectors, other strata or other parameters: nothing is seeded
    moved = vectors.copy()
    moved[3] = -moved[3]
    for args in ((moved, params, groups), (vectors, params, ["c"] * 40), (vectors, ProjectionParams(), groups)):
        assert not prebuilt.seed_map(tmp_path / "cat", *args, tmp_path / "other.npz")
    # map vectors gathered on demand are gathered only for a shipped map of their shape
    lazy = _Gathered(close)
    assert prebuilt.seed_map(tmp_path / "cat", lazy, params, groups, tmp_path / "lazy.npz") and lazy.calls == 1
    other = _Gathered(np.zeros((len(close) + 1, close.shape[1]), dtype=np.float32))
    assert not prebuilt.seed_map(tmp_path / "cat", other, params, groups, tmp_path / "other.npz") and other.calls == 0
    # a damaged map is logged and left to be computed
    (folder / "map-fused.npz").write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        assert not prebuilt.seed_map(tmp_path / "cat", vectors, params, groups, tmp_path / "again.npz")
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_shipped_transcripts_seed_the_transcript_cache_only_for_the_same_transcriber(tmp_path, caplog):
    from recsys.encoding.cache import content_keys
    from recsys.encoding.transcripts import TranscriptStore
    from recsys.transcribe import Transcript

    root = build_catalogue(tmp_path / "cat")
    catalogue = load_catalogue(root)
    keys = [k for k in content_keys(catalogue.items, "audio") if k is not None]
    heard = {keys[0]: Transcript("seven", ("seven", "eleven")), keys[1]: Transcript("", ())}
    TranscriptStore(tmp_path / "built", "asr/x@1").append(heard)
    folder = prebuilt.prebuilt_dir(root)
    folder.mkdir()
    manifest = {"format": prebuilt.FORMAT, "features": []}
    assert prebuilt.export_transcripts(catalogue, "asr/x@1", folder, manifest, cache_dir=tmp_path / "built") == 2
    assert prebuilt.export_transcripts(catalogue, "asr/none", folder, {}, cache_dir=tmp_path / "built") == 0
    prebuilt.write_manifest(folder, manifest)

    fresh = TranscriptStore(tmp_path / "fresh", "asr/x@1")
    assert prebuilt.seed_transcripts(root, fresh, keys) == 2
    assert fresh.load(keys) == heard
    assert prebuilt.seed_transcripts(root, TranscriptStore(tmp_path / "other", "asr/x@2"), keys) == 0

    (folder / prebuilt.TRANSCRIPTS_FILE).write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING, logger="recsys.prebuilt"):
        assert prebuilt.seed_transcripts(root, TranscriptStore(tmp_path / "third", "asr/x@1"), keys) == 0
    assert "checksum mismatch" in caplog.text
