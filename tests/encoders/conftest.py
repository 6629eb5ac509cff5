"""Shared fixtures: each offline model loads once per test session; the hub is never contacted."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from recsys.encoders import Encoder, create_encoder  # noqa: E402


@pytest.fixture(scope="session")
def text_encoder() -> Encoder:
    return create_encoder("minilm", device="cpu")


@pytest.fixture(scope="session")
def image_encoder() -> Encoder:
    return create_encoder("efficientnet-lite0", device="cpu")


@pytest.fixture(scope="session")
def audio_encoder() -> Encoder:
    return create_encoder("aisfx", device="cpu")


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real photographs shipped with scikit-learn, padded to a square like media.load_image does."""
    from sklearn.datasets import load_sample_image

    out = {}
    for name in ("china.jpg", "flower.jpg"):
        img = Image.fromarray(load_sample_image(name))
        side = max(img.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
        out[name] = square
    return out
