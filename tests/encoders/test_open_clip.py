"""The open_clip loading path on a tiny RANDOMLY INITIALISED CLIP model.

No CLIP weights can be downloaded here, so the test registers a tiny model config with
``open_clip.add_model_config``, saves a random model's state dict as a checkpoint file and loads
it through ``open_clip:<model>:<checkpoint path>``. Random weights only exercise the loading
path and the contract (shared model and space, shape, norm, batching); not retrieval quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from recsys.encoders import create_encoder
from recsys.errors import MissingWeightsError

from ._signals import assert_unit_rows

MODEL = "recsys-test-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config_path = folder / f"{MODEL}.json"
    config_path.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config_path)
    torch.manual_seed(0)
    model = open_clip.create_model(MODEL, pretrained=None)
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)) for _ in range(3)]


def test_towers_share_model_and_space(checkpoint):
    image = create_encoder(f"open_clip:{MODEL}:{checkpoint}", device="cpu")
    text = create_encoder(f"open_clip-text:{MODEL}:{checkpoint}", device="cpu")
    assert image.modality == "image" and text.modality == "text"
    assert image.loaded is text.loaded
    assert image.space == text.space == f"open_clip:{MODEL}:{checkpoint}"
    assert image.dim == text.dim == 16
    assert image.encoder_id.startswith(f"image/open_clip:{MODEL}@")
    assert text.encoder_id.startswith(f"text/open_clip:{MODEL}@")


def test_image_and_text_contract(checkpoint, images):
    image = create_encoder(f"open_clip:{MODEL}:{checkpoint}", device="cpu")
    text = create_encoder(f"open_clip-text:{MODEL}:{checkpoint}", device="cpu")
    batch = image.encode(images, batch_size=2)
    assert_unit_rows(batch, 3, 16)
    np.testing.assert_allclose(batch, np.concatenate([image.encode([im]) for im in images]), atol=1e-5)
    words = text.encode(["a cat", "a dog", "a cat"])
    assert_unit_rows(words, 3, 16)
    assert words[0] @ words[2] == pytest.approx(1.0, abs=1e-5)


def test_loads_the_saved_weights(checkpoint, images):
    """The registry's image vector equals the saved model's own: the checkpoint really was loaded."""
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=str(checkpoint))
    model.eval()
    with torch.inference_mode():
        ref = model.encode_image(preprocess(images[0])[None], normalize=True).numpy()
    got = create_encoder(f"open_clip:{MODEL}:{checkpoint}", device="cpu").encode(images[:1])
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_corrupt_checkpoint_is_missing_weights(checkpoint, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="Could not load open_clip weights"):
        create_encoder(f"open_clip:{MODEL}:{bad}", device="cpu")


def test_local_dir_schema(checkpoint, tmp_path, images):
    """``open_clip:local-dir:<folder>`` (open_clip_config.json + weights) loads the same weights."""
    folder = tmp_path / "tiny-clip-dir"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    (folder / "open_clip_pytorch_model.bin").write_bytes(checkpoint.read_bytes())
    enc = create_encoder(f"open_clip:local-dir:{folder}", device="cpu")
    assert enc.encoder_id.startswith("image/open_clip:local-dir:tiny-clip-dir@")
    ref = create_encoder(f"open_clip:{MODEL}:{checkpoint}", device="cpu")
    np.testing.assert_allclose(enc.encode(images), ref.encode(images), atol=1e-5)


def test_local_dir_without_weights_is_missing_weights(tmp_path):
    """open_clip would build a random model from the config alone; the registry refuses."""
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    with pytest.raises(MissingWeightsError):
        create_encoder(f"open_clip-text:local-dir:{tmp_path}", device="cpu")
    with pytest.raises(MissingWeightsError, match="No open_clip model folder"):
        create_encoder(f"open_clip:local-dir:{tmp_path / 'absent'}", device="cpu")
