"""The three offline encoders on real weights: contract (shape, dtype, norm, batching) and sanity."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from recsys.encoders import ClassifierHead, create_encoder
from recsys.errors import InputError

from ._signals import assert_unit_rows, noise, tone

SENTENCES = [
    "a red apple",
    "an apple fruit",
    "a racing car",
    "a fast sports car on a track",
    "a sleeping cat",
]


# -- text ------------------------------------------------------------------------------------------
def test_text_contract(text_encoder):
    assert text_encoder.modality == "text"
    assert text_encoder.dim == 384
    assert text_encoder.encoder_id.startswith("text/minilm@")
    assert text_encoder.space == text_encoder.encoder_id
    assert_unit_rows(text_encoder.encode(SENTENCES), len(SENTENCES), 384)


def test_text_batching_does_not_change_vectors(text_encoder):
    together = text_encoder.encode(SENTENCES, batch_size=32)
    one_by_one = np.concatenate([text_encoder.encode([s]) for s in SENTENCES])
    in_pairs = text_encoder.encode(SENTENCES, batch_size=2)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(together, in_pairs, atol=1e-5)


def test_text_semantics(text_encoder):
    apple, fruit, car, sports_car, _ = text_encoder.encode(SENTENCES)
    assert apple @ fruit > apple @ car + 0.3
    assert car @ sports_car > car @ fruit


def test_text_empty_list_and_wrong_types(text_encoder):
    assert text_encoder.encode([]).shape == (0, 384)
    with pytest.raises(InputError):
        text_encoder.encode("a bare string is not a batch")
    with pytest.raises(InputError, match="item 1"):
        text_encoder.encode(["ok", 3])


def test_factory_caches_per_device(text_encoder):
    assert create_encoder("minilm", device="cpu") is text_encoder


# -- image -----------------------------------------------------------------------------------------
def test_image_contract(image_encoder, photos):
    assert image_encoder.modality == "image"
    assert image_encoder.dim == 1280
    assert image_encoder.encoder_id.startswith("image/efficientnet-lite0@")
    assert isinstance(image_encoder, ClassifierHead)
    imgs = list(photos.values())
    assert_unit_rows(image_encoder.encode(imgs), len(imgs), 1280)


def test_image_batching_and_repeat(image_encoder, photos):
    imgs = [photos["china.jpg"], photos["flower.jpg"], photos["china.jpg"]]
    together = image_encoder.encode(imgs, batch_size=3)
    single = np.concatenate([image_encoder.encode([im], batch_size=1) for im in imgs])
    np.testing.assert_allclose(together, single, atol=1e-4)
    assert together[0] @ together[2] == pytest.approx(1.0, abs=1e-5)
    assert together[0] @ together[1] < 0.9


def test_image_classifier_on_real_photo(image_encoder, photos):
    names = image_encoder.class_names
    assert len(names) == 1000 and names[281] == "tabby" and names[285] == "Egyptian cat"
    proba = image_encoder.predict_proba(list(photos.values()))
    assert proba.shape == (2, 1000) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    top5 = [names[i] for i in np.argsort(-proba[0])[:5]]
    # china.jpg is a Chinese temple roof: buildings of that kind, confidently.
    assert top5[0] == "bell cote" and proba[0].max() > 0.3
    assert {"palace", "monastery", "stupa", "castle", "church", "boathouse", "dome"} & set(top5)


def test_encode_and_predict_matches_separate_calls(image_encoder, photos):
    imgs = list(photos.values())
    emb, proba = image_encoder.encode_and_predict(imgs)
    np.testing.assert_allclose(emb, image_encoder.encode(imgs), atol=1e-5)
    np.testing.assert_allclose(proba, image_encoder.predict_proba(imgs), atol=1e-6)


def test_image_accepts_any_mode_and_size(image_encoder):
    gray = Image.new("L", (50, 80), 128)
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 255))
    assert_unit_rows(image_encoder.encode([gray, rgba]), 2, 1280)


def test_image_encoder_folds_norms_and_runs_channels_last_with_the_plain_models_outputs(
    image_encoder, photos, monkeypatch
):
    """On the CPU the network runs in NHWC with its batch norms folded (faster there); the outputs are
    those of the network as loaded, in torch's default layout."""
    import torch

    from recsys.encoders import efficientnet

    assert image_encoder.memory_format is torch.channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in image_encoder.model.modules())
    monkeypatch.setattr(efficientnet, "fold_batch_norms", lambda model: 0)
    monkeypatch.setattr(efficientnet, "conv_memory_format", lambda device: torch.contiguous_format)
    plain = efficientnet.EfficientNetLite0Encoder(device="cpu")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    imgs = list(photos.values())
    ours, theirs = image_encoder.encode_outputs(imgs), plain.encode_outputs(imgs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-5)


def test_weight_mapping_is_complete():
    """The checkpoint's keys map one-to-one onto timm's tf_efficientnet_lite0."""
    import timm
    import torch

    from recsys.encoders.efficientnet import timm_state_dict, weights_path

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    names = [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    mapped = timm_state_dict(state, names)
    assert set(mapped) == set(model.state_dict())
    assert all(mapped[k].shape == v.shape for k, v in model.state_dict().items())


# -- audio -----------------------------------------------------------------------------------------
def test_audio_contract(audio_encoder):
    assert audio_encoder.modality == "audio"
    assert audio_encoder.dim == 512
    assert audio_encoder.encoder_id.startswith("audio/aisfx@")
    clips = [tone(440, 3.0), noise(1.0), tone(880, 0.3, sr=16000)]
    assert_unit_rows(audio_encoder.encode(clips), 3, 512)


def test_audio_batching_and_resampling(audio_encoder):
    clips = [tone(440, 2.0), noise(4.0), tone(660, 7.5, sr=48000)]
    together = audio_encoder.encode(clips, batch_size=8)
    single = np.concatenate([audio_encoder.encode([c], batch_size=1) for c in clips])
    np.testing.assert_allclose(together, single, atol=1e-5)
    # The same sound at another sample rate lands on (almost) the same vector.
    a = audio_encoder.encode([tone(440, 3.0, sr=22050), tone(440, 3.0, sr=44100)])
    assert a[0] @ a[1] > 0.99


def test_audio_semantics(audio_encoder):
    """Two close pitches are nearer each other than either is to noise (raw, uncentred cosines)."""
    t440, t470, hiss = audio_encoder.encode([tone(440, 3.0), tone(470, 3.0), noise(3.0)])
    assert t440 @ t470 > t440 @ hiss + 0.1
    assert t440 @ t470 > t470 @ hiss + 0.1


def test_audio_is_loudness_invariant(audio_encoder):
    loud, quiet = audio_encoder.encode([tone(440, 3.0, amp=0.9), tone(440, 3.0, amp=0.05)])
    assert loud @ quiet > 0.999


def test_audio_encoder_folds_norms_and_runs_channels_last_with_the_plain_models_outputs(audio_encoder, monkeypatch):
    import torch

    from recsys.encoders import sfx

    conv = [m for m in audio_encoder.model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert conv.in_channels > 1 and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in audio_encoder.model.embedding_net.modules())
    monkeypatch.setattr(sfx, "fold_batch_norms", lambda model: 0)
    monkeypatch.setattr(sfx, "conv_memory_format", lambda device: torch.contiguous_format)
    plain = sfx.AisfxEncoder(device="cpu")
    clips = [noise(3.0, seed=4), tone(330.0, 1.2)]
    np.testing.assert_allclose(audio_encoder.encode(clips), plain.encode(clips), atol=1e-5)
    np.testing.assert_allclose(
        audio_encoder.window_embeddings(clips[0].samples, clips[0].sample_rate),
        plain.window_embeddings(clips[0].samples, clips[0].sample_rate),
        rtol=1e-4,
        atol=1e-4,
    )


def test_audio_rejects_empty_clip(audio_encoder):
    from recsys.media import Audio

    with pytest.raises(InputError, match="no samples"):
        audio_encoder.encode([Audio(np.zeros(0, np.float32), 16000)])


def test_sentence_transformers_local_folder_matches_minilm(text_encoder):
    from recsys.encoders.text import minilm_folder

    folder = minilm_folder()
    other = create_encoder(f"sentence-transformers:{folder}", device="cpu")
    assert other.encoder_id.startswith(f"text/sentence-transformers:{folder.name}@")
    assert other.encoder_id.split("@")[1] == text_encoder.encoder_id.split("@")[1]
    np.testing.assert_allclose(other.encode(SENTENCES), text_encoder.encode(SENTENCES), atol=1e-5)


def test_audio_preprocessing_matches_the_package(audio_encoder, tmp_path):
    """Our in-memory pipeline equals aisfx's own file-based librosa path and its embedding helper."""
    import soundfile as sf
    import torch
    from aisfx import inference, preprocessing
    from aisfx.spectrogram import spectrogram_librosa

    from recsys.encoders.sfx import log_mel

    clip = noise(5.0, sr=44100, seed=3)
    path = tmp_path / "clip.wav"
    sf.write(path, clip.samples, clip.sample_rate, subtype="FLOAT")
    theirs = spectrogram_librosa.compute_spectrogram(
        str(path),
        sr=inference.SAMPLE_RATE,
        block_size=inference.SPEC_BLOCK_LENGTH,
        hop_size=inference.SPEC_HOP_LENGTH,
        n_mels=inference.MEL_BINS,
        f_min=inference.F_MIN,
        f_max=inference.F_MAX,
    )
    # The package returns (bands, frames) but its model and blocking expect (frames, bands).
    theirs = preprocessing.spectrogram_normalize(theirs.T, spec_norm="original")
    ours = log_mel(clip.samples, clip.sample_rate)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    ref = inference.model_get_embedding(theirs.astype(np.float32), 0.5, True, audio_encoder.model, "cpu")
    assert isinstance(ref, torch.Tensor)
    got = audio_encoder.window_embeddings(clip.samples, clip.sample_rate)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-5)
