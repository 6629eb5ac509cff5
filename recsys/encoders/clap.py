"""CLAP audio and text towers (transformers ``ClapModel``) from a local model folder.

Names: ``clap:<folder>`` (audio) and ``clap-text:<folder>`` (text); both share one loaded model and
live in the space ``clap:<folder>``. The folder is what ``ClapModel.save_pretrained`` plus
``ClapProcessor.save_pretrained`` write (e.g. a download of ``laion/clap-htsat-unfused``).

The feature extractor crops clips longer than its ``max_length_s`` at random; to stay
deterministic, long clips are cut into ``max_length_s`` windows here, each window is embedded,
and the clip vector is the duration-weighted mean of the window vectors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, Preprocessor, folder_sha
from recsys.errors import MissingWeightsError


@dataclass(frozen=True)
class LoadedClap:
    model: Any
    processor: Any
    folder: str
    weights_key: str
    dim: int
    device: str


@functools.lru_cache(maxsize=4)
def load_clap(folder: str, device: str) -> LoadedClap:
    from transformers import ClapModel, ClapProcessor

    path = Path(folder).expanduser()
    if not (path / "config.json").is_file():
        raise MissingWeightsError(
            f"No CLAP model folder at {folder} (config.json missing). Put a transformers CLAP model "
            f"there, e.g. `hf download laion/clap-htsat-unfused --local-dir {folder}` "
            "on a machine with internet."
        )
    try:
        model = ClapModel.from_pretrained(str(path), local_files_only=True)
        processor = ClapProcessor.from_pretrained(str(path), local_files_only=True)
    except OSError as exc:  # weights or processor files missing from the folder
        raise MissingWeightsError(
            f"The CLAP folder {folder} is incomplete ({exc}). It needs the model weights and the processor "
            f"files (ClapModel.save_pretrained and ClapProcessor.save_pretrained)."
        ) from exc
    model = model.to(device).eval()
    return LoadedClap(model, processor, str(path), folder_sha(path), int(model.config.projection_dim), device)


def _pooled(output: Any) -> Any:
    """transformers 5 returns a model output whose ``pooler_output`` is the embedding; 4.x a tensor."""
    return output if hasattr(output, "shape") else output.pooler_output


class _ClapTower(Encoder):
    def __init__(self, loaded: LoadedClap) -> None:
        self.loaded = loaded
        self.device = loaded.device
        self.dim = loaded.dim
        self.space = f"clap:{loaded.folder}"
        self.encoder_id = f"{self.modality}/clap@{loaded.weights_key}"


class ClapWindows(Preprocessor):
    """A clip -> mono samples at the model's rate, cut into windows of at most ``max_length_s``."""

    def __init__(self, sample_rate: int, window: int) -> None:
        self.sample_rate = sample_rate
        self.window = window

    def __call__(self, audio: Any) -> list[np.ndarray]:
        from recsys.media import resampled

        y = resampled(audio.samples, audio.sample_rate, self.sample_rate)
        return [y[start : start + self.window] for start in range(0, len(y), self.window)]


class ClapAudioEncoder(_ClapTower):
    modality = "audio"

    def __init__(self, loaded: LoadedClap) -> None:
        super().__init__(loaded)
        extractor = loaded.processor.feature_extractor
        self.preprocessor = ClapWindows(int(extractor.sampling_rate), int(extractor.nb_max_samples))

    @property
    def sample_rate(self) -> int:
        return self.preprocessor.sample_rate

    def _encode_batch(self, per_clip: list[list[np.ndarray]]) -> np.ndarray:
        import torch

        flat = [w for clip in per_clip for w in clip]
        # Windows never exceed max_length_s, so neither mode crops at random; the mode must match
        # the model (fusion models take 4 stacked mels, the others one).
        fusion = bool(getattr(self.loaded.model.config.audio_config, "enable_fusion", False))
        features = self.loaded.processor.feature_extractor(
            flat,
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            truncation="fusion" if fusion else "rand_trunc",
        )
        inputs = {k: v.to(self.device) for k, v in features.items() if k in ("input_features", "is_longer")}
        with torch.inference_mode():
            emb = _pooled(self.loaded.model.get_audio_features(**inputs)).float().cpu().numpy()
        out, start = [], 0
        for clip in per_clip:
            weights = np.array([len(w) for w in clip], dtype=np.float64)
            out.append((emb[start : start + len(clip)] * (weights / weights.sum())[:, None]).sum(axis=0))
            start += len(clip)
        return np.stack(out)


class ClapTextEncoder(_ClapTower):
    modality = "text"

    def _encode_batch(self, batch: list[Any]) -> np.ndarray:
        import torch

        tokens = self.loaded.processor.tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            return _pooled(self.loaded.model.get_text_features(**inputs)).float().cpu().numpy()
