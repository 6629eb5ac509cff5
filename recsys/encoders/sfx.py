"""Offline sound-effects encoder: the ``aisfx`` package's X-Sequential-CE CNN (512-d).

Preprocessing reproduces the package's librosa path (``aisfx.spectrogram.spectrogram_librosa``)
on in-memory samples, with its own constants and helpers: resample to 44.1 kHz, peak-normalise,
96-band HTK mel power spectrogram (2048 window, 1024 hop), ``log10(1e4 x + 1)``, the package's
"original" min-max scaling, then 100-frame windows (~2.3 s) with a 50% hop (the package's default
``emb_hop_size=0.5``). Clips shorter than one window are padded with silence, as the package does.
Each window is embedded and the clip embedding is the mean over windows, L2-normalised.

The embeddings are non-negative (ReLU then max-pooling), so raw cosines between unrelated
sounds are high (~0.8). The encoder does NOT centre them: centring needs catalogue statistics
and is the aligner's job.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, Preprocessor, file_sha
from recsys.errors import MissingWeightsError
from recsys.media import resampled

PACKAGE = "aisfx==0.1.2"
WINDOW_HOP = 0.5  # fraction of a window, the package's default emb_hop_size
MAX_WINDOWS_PER_FORWARD = 64  # bounds activation memory for long clips


def checkpoint_path() -> Path:
    try:
        from aisfx import inference
    except ImportError as exc:
        raise MissingWeightsError(
            f"The offline audio encoder 'aisfx' needs its package (installed without its old pins): "
            f"pip install --no-deps {PACKAGE}"
        ) from exc
    path = Path(inference.get_path_modelWeights())
    if not path.is_file():
        raise MissingWeightsError(
            f"The aisfx checkpoint {path} is missing; reinstall it: pip install --no-deps --force-reinstall {PACKAGE}"
        )
    return path


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, 96)`` scaled log-mel spectrogram, as aisfx's librosa path computes it (transposed).

    The STFT (centred, zero-padded, periodic Hann window) is plain numpy and the mel filters are
    built once per process: librosa's per-call checks, filter construction and JIT warm-up cost
    more than the transform itself, in every worker process of a batch run.
    """
    from aisfx import inference, preprocessing

    y = resampled(samples, sample_rate, int(inference.SAMPLE_RATE))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    y = y / (peak if peak > 0 else 1.0)
    spec = _mel_filters() @ _power_spectrogram(y)
    spec = np.log10(spec * 10000.0 + 1.0).T
    return preprocessing.spectrogram_normalize(spec, spec_norm="original").astype(np.float32)


def _power_spectrogram(y: np.ndarray) -> np.ndarray:
    """``|STFT|^2``, ``(1 + n_fft / 2, frames)``: librosa's ``stft(center=True, pad_mode="constant")``."""
    from aisfx import inference

    n_fft, hop = int(inference.SPEC_BLOCK_LENGTH), int(inference.SPEC_HOP_LENGTH)
    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * _hann(n_fft), axis=1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32).T


@functools.lru_cache(maxsize=1)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy's ``get_window("hann", n)``, librosa's default)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    import librosa
    from aisfx import inference

    return librosa.filters.mel(
        sr=int(inference.SAMPLE_RATE),
        n_fft=int(inference.SPEC_BLOCK_LENGTH),
        n_mels=inference.MEL_BINS,
        fmin=inference.F_MIN,
        fmax=inference.F_MAX,
        htk=True,
        norm=1.0,
    )


def windows(spec: np.ndarray) -> np.ndarray:
    """``(n_windows, 100, 96)`` blocks of the spectrogram, via the package's own ``blocking``."""
    from aisfx import inference, preprocessing

    size = inference.EMB_BLOCK_LENGTH
    hop = max(1, round(size * WINDOW_HOP))
    return preprocessing.blocking(spec, block_size=size, hop_size=hop, drop_partial_block=True).astype(np.float32)


class LogMelWindows(Preprocessor):
    """A clip -> its ``(n_windows, 100, 96)`` log-mel windows; a batch -> (all windows, windows per clip)."""

    def __call__(self, audio: Any) -> np.ndarray:
        return windows(log_mel(audio.samples, audio.sample_rate))

    def collate(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(items, axis=0), np.array([len(w) for w in items], dtype=np.int64)


class AisfxEncoder(Encoder):
    """512-d sound-effect embeddings (mean over ~2.3 s windows)."""

    modality = "audio"
    dim = 512
    preprocessor = LogMelWindows()

    def __init__(self, *, device: str) -> None:
        import torch
        from aisfx import inference

        ckpt = checkpoint_path()
        # The checkpoint pickles numpy scalars in ds_dict, so weights_only=True refuses it; it is the
        # file shipped inside the installed package, not user input.
        state, ds_dict = torch.load(ckpt, map_location="cpu", weights_only=False)
        # The package's CrossNet; only its get_embedding (the shared trunk) is used, not the heads.
        self.model = inference.load_bestModel(state, ds_dict, "cpu").to(device).eval()
        self.device = device
        self.sample_rate = int(inference.SAMPLE_RATE)
        self.encoder_id = f"audio/aisfx@{file_sha(ckpt)}"
        self.space = self.encoder_id

    def window_embeddings(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Raw (unnormalised) ``(n_windows, 512)`` embeddings of one clip."""
        return self._embed_windows(windows(log_mel(samples, sample_rate)))

    def _embed_windows(self, blocks: Any) -> np.ndarray:
        import torch

        out = []
        blocks = torch.as_tensor(blocks)
        with torch.inference_mode():
            for start in range(0, len(blocks), MAX_WINDOWS_PER_FORWARD):
                x = blocks[start : start + MAX_WINDOWS_PER_FORWARD].to(self.device, non_blocking=True)
                out.append(self.model.get_embedding(x).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def _encode_batch(self, batch: tuple[Any, Any]) -> np.ndarray:
        """Mean window embedding per clip of a collated ``(windows, counts)`` batch."""
        blocks, counts = batch
        emb = self._embed_windows(blocks)
        bounds = np.cumsum([0, *np.asarray(counts).tolist()])
        return np.stack([emb[bounds[i] : bounds[i + 1]].mean(axis=0) for i in range(len(bounds) - 1)])
