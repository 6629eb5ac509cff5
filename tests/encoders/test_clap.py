"""The CLAP loading path (``clap:`` / ``clap-text:``) on a tiny RANDOMLY INITIALISED ClapModel.

No CLAP weights can be downloaded here, so the test builds a tiny random model, a character-level
RoBERTa tokenizer and a feature extractor, saves them with ``save_pretrained`` and loads the
folder through the registry. Random weights only exercise loading, resampling, windowing and the
contract (shape, norm, shared space); they say nothing about audio-text quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.encoders import create_encoder
from recsys.errors import MissingWeightsError

from ._signals import assert_unit_rows, noise, tone


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    folder = tmp_path_factory.mktemp("tiny-clap")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in sorted(ByteLevel.alphabet()):
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    torch.manual_seed(0)
    config = ClapConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 80,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        audio_config={
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [1, 1, 1, 1],
            "patch_embeds_hidden_size": 8,
            "hidden_size": 64,
        },
        projection_dim=16,
    )
    model = ClapModel(config).eval()
    processor = ClapProcessor(feature_extractor=ClapFeatureExtractor(max_length_s=4), tokenizer=tokenizer)
    model_dir = folder / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    return model_dir


def test_clap_towers_share_model_and_space(clap_folder):
    audio = create_encoder(f"clap:{clap_folder}", device="cpu")
    text = create_encoder(f"clap-text:{clap_folder}", device="cpu")
    assert audio.modality == "audio" and text.modality == "text"
    assert audio.space == text.space == f"clap:{clap_folder}"
    assert audio.loaded is text.loaded
    assert audio.dim == text.dim == 16
    assert audio.encoder_id.startswith("audio/clap@") and text.encoder_id.startswith("text/clap@")
    assert audio.sample_rate == 48000


def test_clap_audio_contract(clap_folder):
    """Clips at other rates are resampled; a 9 s clip (> max_length_s=4) is windowed, not cropped."""
    enc = create_encoder(f"clap:{clap_folder}", device="cpu")
    clips = [tone(440, 2.0), noise(9.0), tone(300, 1.0, sr=48000)]
    together = enc.encode(clips, batch_size=3)
    assert_unit_rows(together, 3, 16)
    single = np.concatenate([enc.encode([c]) for c in clips])
    np.testing.assert_allclose(together, single, atol=1e-4)
    np.testing.assert_allclose(enc.encode([clips[1]]), enc.encode([clips[1]]), atol=1e-6)


def test_clap_text_contract(clap_folder):
    enc = create_encoder(f"clap-text:{clap_folder}", device="cpu")
    texts = ["a dog barks", "rain on a roof", "a dog barks"]
    out = enc.encode(texts)
    assert_unit_rows(out, 3, 16)
    assert out[0] @ out[2] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(out, np.concatenate([enc.encode([t]) for t in texts]), atol=1e-5)


def test_clap_loads_the_saved_weights(clap_folder):
    """The registry's vectors equal those of the saved model run directly: no random re-init."""
    import torch
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(str(clap_folder)).eval()
    tokens = ClapProcessor.from_pretrained(str(clap_folder)).tokenizer(["a dog barks"], return_tensors="pt")
    with torch.inference_mode():
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    ref = out.pooler_output.numpy() if hasattr(out, "pooler_output") else out.numpy()
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    got = create_encoder(f"clap-text:{clap_folder}", device="cpu").encode(["a dog barks"])
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_clap_folder_without_weights(tmp_path, clap_folder):
    (tmp_path / "config.json").write_text((clap_folder / "config.json").read_text())
    with pytest.raises(MissingWeightsError, match="incomplete"):
        create_encoder(f"clap:{tmp_path}", device="cpu")
