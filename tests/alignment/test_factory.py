"""Aligners: shapes, normalisation, training, bit-identical reload and encoder-id checks.

Everything runs on small synthetic arrays and tiny fake encoders; the heads trained here are
small randomly initialised models trained for a few seconds and saved to exercise the loading path.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from recsys.alignment.factory import (
    EnsembleAligner,
    LabelBridge,
    NativeAligner,
    TrainConfig,
    aligner_inputs,
    build_aligner,
    load_aligner,
    save_ensemble,
    train_projection,
)
from recsys.alignment.metrics import retrieval_metrics
from recsys.errors import InputError, RecsysError

D_TEXT, D_IMG, N_CLASSES = 16, 24, 12


class FakeTextEncoder:
    modality, encoder_id, space, dim = "text", "text/fake@1", "fake-text", D_TEXT

    def encode(self, texts, batch_size=32):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=D_TEXT) for t in texts]
        x = np.asarray(rows, dtype=np.float32).reshape(len(texts), D_TEXT)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


class FakeImageEncoder:
    modality, encoder_id, space, dim = "image", "image/fake@1", "fake-image", D_IMG
    class_names = tuple(f"thing{i}, other name {i}" for i in range(N_CLASSES))

    def encode(self, images, batch_size=32):
        x = np.asarray(images, dtype=np.float32)[:, :D_IMG]
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def predict_proba(self, images, batch_size=32):
        logits = np.asarray(images, dtype=np.float32)[:, :N_CLASSES] * 3
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """The label bridge caches class-name embeddings; keep them out of the user's cache."""
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "recsys-cache"))


def _unit_rows(x: np.ndarray) -> bool:
    return x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def _pairs(n: int = 120, seed: int = 0):
    """Source features that are a fixed noisy linear function of their paired text vectors."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n, D_TEXT)).astype(np.float32)
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    mix = rng.normal(size=(D_TEXT, D_IMG))
    source = (target @ mix + 0.1 * rng.normal(size=(n, D_IMG))).astype(np.float32)
    return source, target


def _train(source, target, **cfg):
    config = TrainConfig(**{"epochs": 60, "batch_size": 64, **cfg})
    return train_projection(
        source,
        target,
        source_modality="image",
        source_encoder_id=FakeImageEncoder.encoder_id,
        text_encoder_id=FakeTextEncoder.encoder_id,
        target_space=FakeTextEncoder.space,
        config=config,
    )


def test_label_bridge_shapes_and_conse_weighting():
    bridge = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder(), top_t=3)
    proba = FakeImageEncoder().predict_proba(np.random.default_rng(0).normal(size=(7, 30)))
    out = bridge.transform(proba)
    assert out.shape == (7, D_TEXT) and _unit_rows(out)
    # A one-hot prediction lands exactly on that class's (normalised) text embedding.
    onehot = np.eye(N_CLASSES, dtype=np.float32)[[4]]
    assert np.allclose(bridge.transform(onehot)[0], bridge.class_embeddings[4], atol=1e-6)
    # Only the top-T classes count: mass outside them changes nothing.
    p = np.zeros((1, N_CLASSES), np.float32)
    p[0, [1, 2, 3]] = [0.5, 0.3, 0.1]
    q = p.copy()
    q[0, 9] = 0.05
    assert np.allclose(bridge.transform(p), bridge.transform(q))


def test_label_bridge_needs_class_names():
    class NoClasses(FakeImageEncoder):
        class_names = ()

    with pytest.raises(InputError, match="class names"):
        LabelBridge.from_encoders(NoClasses(), FakeTextEncoder())


def test_native_is_identity_only_for_a_shared_space():
    class SameSpace(FakeImageEncoder):
        space = FakeTextEncoder.space
        dim = D_IMG

    aligner = build_aligner("default", source_encoder=SameSpace(), text_encoder=FakeTextEncoder())
    assert isinstance(aligner, NativeAligner)
    x = np.random.default_rng(1).normal(size=(5, D_IMG)).astype(np.float32)
    out = aligner.transform(x)
    assert _unit_rows(out) and np.allclose(out, x / np.linalg.norm(x, axis=1, keepdims=True))
    with pytest.raises(RecsysError, match="native"):
        build_aligner("native", source_encoder=FakeImageEncoder(), text_encoder=FakeTextEncoder())


def test_training_reduces_the_contrastive_loss_and_aligns_held_out_pairs():
    source, target = _pairs(160)
    result = _train(source[:120], target[:120])
    assert result.losses[-1] < 0.5 * result.losses[0]
    out = result.aligner.transform(source[120:])
    assert out.shape == (40, D_TEXT) and _unit_rows(out)
    m = retrieval_metrics(target[120:] @ out.T, np.eye(40, dtype=bool))
    assert m["recall@1"] > 5 * m["recall@1_chance"]


def test_training_is_seeded():
    source, target = _pairs(60)
    a = _train(source, target, epochs=5, hidden=8).aligner.transform(source)
    b = _train(source, target, epochs=5, hidden=8).aligner.transform(source)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("hidden,center", [(0, False), (8, True)])
def test_saved_head_reloads_bit_identically(tmp_path, hidden, center):
    source, target = _pairs(60)
    head = _train(source, target, epochs=5, hidden=hidden, center=center).aligner
    path = head.save(tmp_path / "head")
    meta = json.loads(path.read_text())
    assert meta["source_encoder_id"] == FakeImageEncoder.encoder_id
    assert meta["text_encoder_id"] == FakeTextEncoder.encoder_id
    assert len(meta["training"]["data_sha256"]) == 64 and meta["config"]["hidden"] == hidden
    loaded = load_aligner(tmp_path / "head.json", source_encoder=FakeImageEncoder(), text_encoder=FakeTextEncoder())
    assert np.array_equal(loaded.transform(source), head.transform(source))


def test_head_for_another_encoder_is_refused_with_instructions(tmp_path):
    source, target = _pairs(40)
    path = _train(source, target, epochs=2).aligner.save(tmp_path / "head.json")

    class OtherImage(FakeImageEncoder):
        encoder_id = "image/other@2"

    class OtherText(FakeTextEncoder):
        encoder_id = "text/other@2"

    with pytest.raises(RecsysError, match=r"image/fake@1.*image/other@2.*python -m recsys align"):
        load_aligner(path, source_encoder=OtherImage(), text_encoder=FakeTextEncoder())
    with pytest.raises(RecsysError, match="text/other@2"):
        load_aligner(path, source_encoder=FakeImageEncoder(), text_encoder=OtherText())


def test_tampered_or_missing_weights_are_refused(tmp_path):
    source, target = _pairs(40)
    path = _train(source, target, epochs=2).aligner.save(tmp_path / "head")
    (tmp_path / "head.pt").write_bytes(b"not a state dict")
    with pytest.raises(RecsysError, match="do not match"):
        load_aligner(path, source_encoder=FakeImageEncoder(), text_encoder=FakeTextEncoder())
    with pytest.raises(RecsysError, match="No aligner head"):
        load_aligner(tmp_path / "missing.json", source_encoder=FakeImageEncoder(), text_encoder=FakeTextEncoder())


def test_ensemble_mixes_input_kinds_and_round_trips(tmp_path):
    image, text = FakeImageEncoder(), FakeTextEncoder()
    raw = np.random.default_rng(2).normal(size=(60, 30))
    target = text.encode([f"t{i}" for i in range(60)])
    head = _train(image.encode(raw), target, epochs=5).aligner
    head.save(tmp_path / "proj")
    save_ensemble(
        tmp_path / "ens",
        [("label-bridge", 1.0), ("proj.json", 3.0)],
        source_modality="image",
        source_encoder_id=image.encoder_id,
        text_encoder_id=text.encoder_id,
        target_space=text.space,
    )
    ens = build_aligner(str(tmp_path / "ens.json"), source_encoder=image, text_encoder=text)
    assert isinstance(ens, EnsembleAligner) and ens.input_kind == "embedding+class_proba"
    feats = ens.features(image, raw)
    assert feats.shape == (60, D_IMG + N_CLASSES)
    out = ens.transform(feats)
    assert out.shape == (60, D_TEXT) and _unit_rows(out)
    bridge = LabelBridge.from_encoders(image, text)
    expected = 0.25 * bridge.transform(image.predict_proba(raw)) + 0.75 * head.transform(image.encode(raw))
    assert np.allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    outputs = {"embedding": image.encode(raw), "class_proba": image.predict_proba(raw)}
    np.testing.assert_allclose(aligner_inputs(ens.input_kind, outputs), feats, atol=1e-6)


def test_transform_rejects_wrong_width():
    bridge = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder())
    with pytest.raises(InputError, match="expects"):
        bridge.transform(np.zeros((2, N_CLASSES + 1)))
    assert bridge.transform(np.zeros((0, N_CLASSES))).shape == (0, D_TEXT)


def test_metrics_perfect_ranking_and_exact_chance():
    rel = np.eye(5, dtype=bool)
    m = retrieval_metrics(np.eye(5), rel, ks=(1, 2))
    assert m["recall@1"] == m["mrr"] == 1.0 and m["precision@2"] == 0.5
    assert m["recall@2_chance"] == pytest.approx(2 / 5)
    assert m["mrr_chance"] == pytest.approx(np.mean(1 / np.arange(1, 6)))


class PixelImageEncoder(FakeImageEncoder):
    """Fake image encoder over decoded PIL images: 24 numbers from a 4x2 thumbnail."""

    def encode(self, images, batch_size=32):
        return super().encode(self._pixels(images))

    def predict_proba(self, images, batch_size=32):
        return super().predict_proba(np.concatenate([self._pixels(images)] * 2, axis=1))

    @staticmethod
    def _pixels(images):
        return np.stack(
            [np.asarray(im.convert("RGB").resize((4, 2)), np.float32).ravel() / 255 + 0.01 for im in images]
        )


def test_train_catalogue_aligners_writes_loadable_heads(tmp_path):
    """A 12-item catalogue of solid-colour PNGs trains and saves a head plus a bridge ensemble."""
    from PIL import Image

    from recsys.alignment.sources import select_source
    from recsys.alignment.training import train_catalogue_aligners
    from recsys.catalogue import load_catalogue

    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
    (tmp_path / "cat" / "images").mkdir(parents=True)
    rows = ["id,title,description,category,image,audio"]
    for i in range(12):
        name = list(colours)[i % 4]
        Image.new("RGB", (16, 16), colours[name]).save(tmp_path / "cat" / "images" / f"{i}.png")
        rows.append(f"i{i},{name} {i},A {name} square.,colours/{name},images/{i}.png,")
    (tmp_path / "cat" / "catalogue.csv").write_text("\n".join(rows) + "\n")
    catalogue = load_catalogue(tmp_path / "cat")
    image, text = PixelImageEncoder(), FakeTextEncoder()
    written = train_catalogue_aligners(
        [select_source(catalogue)],
        ["image"],
        encoders={"image": image},
        text_encoder=text,
        out_dir=tmp_path / "out",
        prefix="demo",
        config=TrainConfig(epochs=30),
        cache_dir=tmp_path / "cache",
    )
    assert [w.path.name for w in written] == ["demo-image.json"]
    assert written[0].result.losses[-1] < written[0].result.losses[0]
    assert (tmp_path / "out" / "demo-image-projection.pt").is_file()
    aligner = build_aligner(str(written[0].path), source_encoder=image, text_encoder=text)
    imgs = [Image.new("RGB", (8, 8), c) for c in colours.values()]
    out = aligner.transform(aligner.features(image, imgs))
    assert out.shape == (4, D_TEXT) and _unit_rows(out)



def test_train_catalogue_aligners_weighs_a_source_by_repeating_its_pairs(tmp_path):
    """``repeats`` counts a catalogue's pairs N times beside the extra source's, and the head records it."""
    from PIL import Image

    from recsys.alignment.sources import Source, select_source
    from recsys.alignment.training import train_catalogue_aligners
    from recsys.catalogue import load_catalogue

    (tmp_path / "cat" / "images").mkdir(parents=True)
    rows = ["id,title,description,category,image,audio"]
    for i, (name, rgb) in enumerate([("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255))] * 2):
        Image.new("RGB", (16, 16), rgb).save(tmp_path / "cat" / "images" / f"{i}.png")
        rows.append(f"i{i},{name} {i},A {name} square.,colours/{name},images/{i}.png,")
    (tmp_path / "cat" / "catalogue.csv").write_text("\n".join(rows) + "\n")
    catalogue = load_catalogue(tmp_path / "cat")
    written = train_catalogue_aligners(
        [select_source(catalogue), Source("extra", catalogue)],
        ["image"],
        encoders={"image": PixelImageEncoder()},
        text_encoder=FakeTextEncoder(),
        out_dir=tmp_path / "out",
        prefix="demo",
        config=TrainConfig(epochs=2),
        bridge_weight=0.0,
        cache_dir=tmp_path / "cache",
        repeats={"cat": 3},
    )
    training = written[0].result.aligner.meta["training"]
    assert training["n_pairs"] == 6 * 3 + 6
    assert training["sources"]["cat"] == {"catalogue": training["sources"]["cat"]["catalogue"], "pairs": 6, "repeat": 3}
    assert "repeat" not in training["sources"]["extra"]

def test_benchmark_folds_keep_shared_descriptions_and_media_together():
    from recsys.alignment.heldout import leakage_groups
    from recsys.alignment.training import Pairs

    source = np.eye(5, dtype=np.float32)
    source[3] = source[1]  # item 3 reuses item 1's sound
    texts = ["a", "b", "a", "c", "d"]  # item 2 shares item 0's description
    groups = leakage_groups(Pairs(source, source, texts, np.arange(5)))
    assert groups[0] == groups[2] and groups[1] == groups[3]
    assert len({groups[0], groups[1], groups[4]}) == 3


def test_shipped_heads_are_complete_and_consistent():
    """The demo heads in data/aligners: weights match their configs and ensembles' members exist."""
    import hashlib

    from recsys.alignment.factory import DEFAULT_ALIGNERS, REPO_ROOT
    from recsys.alignment.projection import head_paths, read_head_meta

    ids = set()
    for modality, spec in DEFAULT_ALIGNERS.items():
        meta = read_head_meta(REPO_ROOT / spec)
        assert meta["source_modality"] == modality
        ids.add(meta["text_encoder_id"])
        heads = [REPO_ROOT / spec] if meta["kind"] == "projection" else []
        heads += [(REPO_ROOT / spec).parent / m["spec"] for m in meta.get("members", []) if m["spec"].endswith(".json")]
        for head in heads:
            hmeta = read_head_meta(head)
            assert hmeta["source_encoder_id"] == meta["source_encoder_id"]
            pt = head_paths(head)[1]
            assert hashlib.sha256(pt.read_bytes()).hexdigest() == hmeta["weights_sha256"]
    assert len(ids) == 1


def test_align_subcommand_is_registered():
    from recsys.cli import build_parser

    args = build_parser().parse_args(["align", "--catalogue", "x", "--modality", "audio", "--extra-pairs", "y"])
    assert args.modality == "audio" and args.extra_pairs == ["y"] and callable(args.func)


@pytest.mark.slow
def test_shipped_heads_load_for_the_default_encoders():
    """Loads the real offline encoders: a changed encoder id must be caught here, not in the demo."""
    from recsys.alignment.factory import build_aligner
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder

    text = create_encoder(DEFAULT_ENCODERS["text"])
    for modality in ("image", "audio"):
        aligner = build_aligner("default", source_encoder=create_encoder(DEFAULT_ENCODERS[modality]), text_encoder=text)
        assert aligner.output_dim == text.dim
        assert isinstance(aligner, EnsembleAligner) and any(isinstance(m, LabelBridge) for m in aligner.members)


def test_audio_aligner_from_the_config_mixes_the_tagger_bridge_with_the_head(tmp_path, monkeypatch):
    """`align` on an encoder with a tagger writes a label-bridge + head ensemble at the audio default weight,
    and an engine configured with it indexes (and queries) through the bridge on the tagger's scores."""
    from encoders._yamnet_model import PitchEncoder, build_tiny_model
    from fakes import FakeImageEncoder, build_catalogue, write_tone
    from fakes import FakeTextEncoder as WordTextEncoder

    from recsys import pipeline
    from recsys.alignment.sources import select_source
    from recsys.alignment.training import DEFAULT_BRIDGE_WEIGHTS, train_catalogue_aligners
    from recsys.catalogue import load_catalogue
    from recsys.encoders.tagged import TaggedEncoder
    from recsys.encoders.yamnet import YamnetEncoder
    from recsys.media import load_audio
    from recsys.recommend.query import Query

    tagged = TaggedEncoder(PitchEncoder(), YamnetEncoder(data_dir=build_tiny_model(tmp_path / "tagger")))
    text = WordTextEncoder()  # the word-hashing fake the engine tests use
    root = build_catalogue(tmp_path / "cat")
    written = train_catalogue_aligners(
        [select_source(load_catalogue(root))],
        ["audio"],
        encoders={"audio": tagged},
        text_encoder=text,
        out_dir=tmp_path / "out",
        prefix="demo",
        config=TrainConfig(epochs=2),
        cache_dir=tmp_path / "cache",
    )
    spec = written[0].path
    meta = json.loads(spec.read_text())
    assert meta["kind"] == "ensemble"
    assert [m["weight"] for m in meta["members"]] == pytest.approx(
        [DEFAULT_BRIDGE_WEIGHTS["audio"], 1 - DEFAULT_BRIDGE_WEIGHTS["audio"]]
    )
    encoders = {"minilm": text, "efficientnet-lite0": FakeImageEncoder(), "aisfx+yamnet": tagged}
    monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encoders[name])
    config = pipeline.PipelineConfig(audio_aligner=str(spec), image_aligner="none", cache_dir=str(tmp_path / "cache"))
    engine = pipeline.build_engine(load_catalogue(root), config)
    aligner = engine.indexes["audio"].aligner
    assert isinstance(aligner, EnsembleAligner) and isinstance(aligner.members[0], LabelBridge)
    assert aligner.input_kind == "embedding+class_proba"
    assert np.all(np.isfinite(engine.indexes["audio"].shared))
    query = load_audio(write_tone(tmp_path / "q.wav", 1300))
    results = engine.recommend(Query(audio=query), weights={"text": 1.0, "image": 0.0, "audio": 1.0}, k=3)
    assert len(results) == 3


def test_an_aligners_identity_changes_with_its_parameters_and_only_then():
    """What the engine snapshot and the vector store key derived vectors by: a head retrained (or a
    bridge with another top T) is another aligner, though its description is the same."""
    source, target = _pairs()
    head, same, retrained = _train(source, target).aligner, _train(source, target).aligner, _train(
        source, target, seed=1).aligner  # fmt: skip
    assert head.describe() == retrained.describe()
    assert head.identity() == same.identity() != retrained.identity()
    bridge = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder(), top_t=3)
    other_t = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder(), top_t=4)
    assert bridge.identity() != other_t.identity() and bridge.describe() == other_t.describe()
    ensemble = EnsembleAligner([bridge, head], [0.5, 0.5])
    assert ensemble.identity() != EnsembleAligner([bridge, retrained], [0.5, 0.5]).identity()
    assert ensemble.identity() != EnsembleAligner([bridge, head], [0.4, 0.6]).identity()
    assert ensemble.identity() == EnsembleAligner([bridge, same], [0.5, 0.5]).identity()


def test_a_bridge_is_known_by_its_class_texts_not_the_last_bits_of_their_vectors(tmp_path, monkeypatch):
    """Embedded again (another cache dir, another thread count) the same class texts differ in the
    last bits; keyed by those bits, the CLI and the app kept two snapshots and two stores of one catalogue."""
    from recsys.alignment import bridge as bridge_module

    first = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder(), cache_dir=tmp_path / "a")
    real = bridge_module.cached_class_text_embeddings
    monkeypatch.setattr(bridge_module, "cached_class_text_embeddings", lambda *a: real(*a) * np.float32(1 + 1e-7))
    again = LabelBridge.from_encoders(FakeImageEncoder(), FakeTextEncoder(), cache_dir=tmp_path / "b")
    assert not np.array_equal(first.class_embeddings, again.class_embeddings)
    assert first.identity() == again.identity()

    class OtherClasses(FakeImageEncoder):
        class_names = tuple(f"thing {i}" for i in range(N_CLASSES))

    assert LabelBridge.from_encoders(OtherClasses(), FakeTextEncoder()).identity() != first.identity()
    loose = LabelBridge(first.class_embeddings, source_modality="image", source_encoder_id="x", target_space="t")
    assert loose.parameters_digest() != LabelBridge(again.class_embeddings, source_modality="image",
                                                    source_encoder_id="x", target_space="t").parameters_digest()


def test_a_bridge_keeps_its_class_texts_in_the_cache_folder_it_is_given(tmp_path):
    """A configured cache_dir holds everything the product caches: the bridge's class-text vectors
    went to the default folder whatever the configuration said."""
    image, text = FakeImageEncoder(), FakeTextEncoder()
    default = tmp_path / "recsys-cache"  # RECSYS_CACHE_DIR (the fixture)
    save_ensemble(
        tmp_path / "ens",
        [("label-bridge", 1.0)],
        source_modality="image",
        source_encoder_id=image.encoder_id,
        text_encoder_id=text.encoder_id,
        target_space=text.space,
    )
    for spec, folder in (("label-bridge", tmp_path / "configured"), (str(tmp_path / "ens.json"), tmp_path / "other")):
        build_aligner(spec, source_encoder=image, text_encoder=text, cache_dir=folder)
        assert [p.name.startswith("label-bridge-") for p in folder.iterdir()] == [True]
    assert not default.exists()
    build_aligner("label-bridge", source_encoder=image, text_encoder=text)
    assert [p.name.startswith("label-bridge-") for p in default.iterdir()] == [True]
