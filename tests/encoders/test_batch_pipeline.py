"""The worker-process indexing path equals ``encode()`` on real demo items, for every offline encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.catalogue import Catalogue, load_catalogue
from recsys.encoding import BatchOptions, catalogue_features
from recsys.encoding.cache import decode

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "data" / "tuxpaint"


@pytest.fixture(scope="module")
def audio_encoder_device_spectrogram():
    """aisfx as on a GPU: workers send samples, the model's device computes the spectrograms."""
    from recsys.encoders.sfx import AisfxEncoder

    return AisfxEncoder(device="cpu", spectrogram="device")


@pytest.fixture(scope="module")
def audio_encoder_tagged():
    """The default audio encoder: aisfx embeddings, YAMNet's class scores computed in the workers."""
    from recsys.encoders import create_encoder

    return create_encoder("aisfx+yamnet", device="cpu")


def _subset(modality: str, n: int) -> Catalogue:
    demo = load_catalogue(DEMO)
    items = [it for it, ok in zip(demo.items, demo.has_modality(modality), strict=True) if ok][:n]
    return Catalogue(demo.root, items, [])


@pytest.mark.parametrize(
    ("fixture", "modality", "n"),
    [
        ("image_encoder", "image", 20),
        ("audio_encoder", "audio", 10),
        ("audio_encoder_device_spectrogram", "audio", 10),
        ("audio_encoder_tagged", "audio", 10),
        ("text_encoder", "text", 20),
    ],
)
def test_worker_pipeline_matches_encode(request, tmp_path, fixture, modality, n):
    encoder = request.getfixturevalue(fixture)
    catalogue = _subset(modality, n)
    options = BatchOptions(batch_size=4, chunk_size=8, workers=1)
    feats = catalogue_features(catalogue, modality, encoder, encoder.outputs, cache_dir=tmp_path, options=options)
    inputs = [decode(it, modality) for it in catalogue.items]
    expected = encoder.encode_outputs(inputs, batch_size=4)
    for name in encoder.outputs:
        assert feats[name].present.all()
        np.testing.assert_allclose(feats[name].vectors, expected[name], atol=1e-5)
    np.testing.assert_allclose(feats["embedding"].vectors, encoder.encode(inputs, batch_size=4), atol=1e-5)


def test_efficientnet_outputs_match_the_separate_calls(image_encoder, photos):
    imgs = list(photos.values())
    both = image_encoder.encode_outputs(imgs)
    np.testing.assert_allclose(both["embedding"], image_encoder.encode(imgs), atol=1e-6)
    np.testing.assert_allclose(both["class_proba"], image_encoder.predict_proba(imgs), atol=1e-6)
    pixels = image_encoder.preprocess(imgs[0])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 224, 224)


def test_big_jpeg_photos_are_decoded_at_a_reduced_scale_with_the_same_vectors(image_encoder, tmp_path):
    """Indexing decodes a photo no larger than the encoder needs (twice its input side): the vectors
    are those of that decode exactly, and those of a full-size decode (what a query upload gets) to
    cosine 0.999."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from recsys.catalogue import Item
    from recsys.media import load_image

    items = []
    for i, (name, size) in enumerate([("china.jpg", (2400, 1800)), ("flower.jpg", (1600, 2000))]):
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(load_sample_image(name)).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        items.append(Item(f"p{i}", f"photo {i}", "", "photos", path, None))
    catalogue = Catalogue(tmp_path, items, [])
    options = BatchOptions(batch_size=2, workers=0)
    got = catalogue_features(catalogue, "image", image_encoder, cache_dir=tmp_path / "cache", options=options)
    vectors = got["embedding"].vectors
    side = image_encoder.preprocessor.min_image_side
    assert side == 448
    reduced = image_encoder.encode([load_image(it.image, min_side=side) for it in items])
    np.testing.assert_allclose(vectors, reduced, atol=1e-5)
    full = image_encoder.encode([load_image(it.image) for it in items])
    assert (np.sum(vectors * full, axis=1) > 0.999).all()
