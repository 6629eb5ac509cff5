"""Offline sound-effects encoder: the ``aisfx`` package's X-Sequential-CE CNN (512-d).

Preprocessing reproduces the package's librosa path (``aisfx.spectrogram.spectrogram_librosa``)
on in-memory samples, with its own constants and helpers: resample to 44.1 kHz, peak-normalise,
96-band HTK mel power spectrogram (2048 window, 1024 hop), ``log10(1e4 x + 1)``, the package's
"original" min-max scaling, then 100-frame windows (~2.3 s) with a 50% hop (the package's default
``emb_hop_size=0.5``). Clips shorter than one window are padded with silence, as the package does.
Each window is embedded and the clip embedding is the mean over windows, L2-normalised.

Where the spectrogram is computed depends on the device. On the CPU each batch-indexing worker
process computes a batch's windows as it collates the batch (:class:`LogMelWindows`), in parallel
with the model. On a GPU
the workers only decode, resample and normalise (:class:`ClipSamples`) and the model's device
computes a whole batch's spectrograms in one batched STFT: measured on an H200 host, the log-mel
was a third of a worker's ~3 ms of CPU per clip, while the GPU embeds ~12,000 clips/s. Both
places run the same code (:func:`spectrogram` and :func:`clip_windows` over a :class:`ClipLayout`).

The embeddings are non-negative (ReLU then max-pooling), so raw cosines between unrelated
sounds are high (~0.8). The encoder does NOT centre them: centring needs catalogue statistics
and is the aligner's job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsys.device import conv_memory_format
from recsys.encoders.base import Encoder, Preprocessor, file_sha, host_outputs
from recsys.encoders.folding import fold_batch_norms
from recsys.errors import MissingWeightsError
from recsys.media import resampled
from recsys.vectors import unit_vectors

PACKAGE = "aisfx==0.1.2"
WINDOW_HOP = 0.5  # fraction of a window, the package's default emb_hop_size
MAX_WINDOWS_PER_FORWARD = 64  # bounds activation memory for long clips
MAX_FRAMES_PER_FFT = 16_384  # bounds the STFT's working memory (~270 MB) for batches of long clips
SpectrogramPlace = Literal["auto", "host", "device"]


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


@dataclass(frozen=True)
class _Constants:
    """The package's front-end settings, read once (the package is imported lazily)."""

    sample_rate: int
    n_fft: int
    hop: int
    window: int  # spectrogram frames per embedded window
    window_hop: int


@functools.lru_cache(maxsize=1)
def _constants() -> _Constants:
    from aisfx import inference

    window = int(inference.EMB_BLOCK_LENGTH)
    return _Constants(
        sample_rate=int(inference.SAMPLE_RATE),
        n_fft=int(inference.SPEC_BLOCK_LENGTH),
        hop=int(inference.SPEC_HOP_LENGTH),
        window=window,
        window_hop=max(1, round(window * WINDOW_HOP)),
    )


def clip_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The clip at the model's rate, peak-normalised: what the spectrogram is computed from."""
    y = resampled(samples, sample_rate, _constants().sample_rate)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return (y / (peak if peak > 0 else 1.0)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class ClipLayout:
    """Several clips laid out so that one STFT and one gather give all their windows.

    ``signal`` holds each clip centred in zeros (librosa's ``center=True, pad_mode="constant"``),
    each clip's stretch a whole number of hops long, so every STFT frame of every clip starts on
    one common hop grid and never reaches into the next clip: ``frames`` are the grid positions of
    the clips' frames, in order. ``windows`` indexes those frames' spectrogram rows for each
    embedded window (``-1`` past a clip's end: silence, the package's padding); ``counts`` is the
    number of windows per clip.
    """

    signal: np.ndarray  # (samples,) float32
    frames: np.ndarray  # (total frames,) int64
    windows: np.ndarray  # (total windows, frames per window) int64
    counts: np.ndarray  # (clips,) int64

    @classmethod
    def of(cls, clips: Sequence[np.ndarray]) -> ClipLayout:
        c = _constants()
        pad = c.n_fft // 2
        counts = [1 + len(y) // c.hop for y in clips]  # librosa's centred frame count (n_fft even)
        spans = [  # each clip's stretch: its frames and the clip itself, rounded up to whole hops
            -(-max((count - 1) * c.hop + c.n_fft, pad + len(y)) // c.hop) * c.hop
            for count, y in zip(counts, clips, strict=True)
        ]
        offsets = np.cumsum([0, *spans[:-1]])
        rows = np.cumsum([0, *counts[:-1]])  # each clip's first spectrogram row
        signal = np.zeros(sum(spans), dtype=np.float32)  # one allocation: fresh pages cost a fault each
        for offset, y in zip(offsets, clips, strict=True):
            signal[offset + pad : offset + pad + len(y)] = y
        windows = [_window_rows(int(r), n, c.window, c.window_hop) for r, n in zip(rows, counts, strict=True)]
        return cls(
            signal=signal,
            frames=np.concatenate([o // c.hop + np.arange(n) for o, n in zip(offsets, counts, strict=True)]),
            windows=np.concatenate(windows).astype(np.int64),
            counts=np.array([len(w) for w in windows], dtype=np.int64),
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.signal, self.frames, self.windows, self.counts


def window_count(frames: int, size: int, hop: int) -> int:
    """Windows of ``size`` frames every ``hop`` frames, a partial last one dropped, at least one
    (the package's ``preprocessing.blocking`` with ``drop_partial_block=True``)."""
    return (frames - size) // hop + 1 if frames >= size else 1


def _window_rows(first: int, frames: int, size: int, hop: int) -> np.ndarray:
    rows = first + hop * np.arange(window_count(frames, size, hop))[:, None] + np.arange(size)[None, :]
    return np.where(rows < first + frames, rows, -1)


def spectrogram(signal: Any, frames: Any) -> Any:
    """``(len(frames), 96)`` scaled log-mel rows of a :class:`ClipLayout`'s frames, on ``signal``'s device.

    Computed in float32 outside any autocast: a bf16 matmul here would move the mel energies
    the model was trained on.
    """
    import torch
    from aisfx import preprocessing

    c = _constants()
    device = signal.device
    with torch.autocast(device.type, enabled=False):
        grid = signal.unfold(0, c.n_fft, c.hop)
        hann, mel = _hann(device), _mel_filters(device)
        rows = []
        for start in range(0, len(frames), MAX_FRAMES_PER_FFT):
            spectrum = torch.fft.rfft(grid[frames[start : start + MAX_FRAMES_PER_FFT]] * hann, dim=1)
            power = torch.view_as_real(spectrum).square().sum(dim=-1)
            rows.append(torch.log10(power @ mel.T * 10000.0 + 1.0))
        return preprocessing.spectrogram_normalize(torch.cat(rows), spec_norm="original")


def clip_windows(spec: Any, windows: Any) -> Any:
    """``(len(windows), frames per window, 96)`` blocks of ``spec``; rows past a clip's end are silence (0)."""
    silence = spec.new_zeros((1, spec.shape[1]))
    padded = spec.new_empty((spec.shape[0] + 1, spec.shape[1]))
    padded[:-1], padded[-1:] = spec, silence
    return padded[windows]  # -1 picks the silent last row


@functools.lru_cache(maxsize=8)
def _hann(device: Any) -> Any:
    """Periodic Hann window (scipy's ``get_window("hann", n)``, librosa's default)."""
    import torch

    return torch.hann_window(_constants().n_fft, periodic=True, dtype=torch.float32, device=device)


@functools.lru_cache(maxsize=8)
def _mel_filters(device: Any) -> Any:
    import librosa
    import torch
    from aisfx import inference

    c = _constants()
    mel = librosa.filters.mel(
        sr=c.sample_rate,
        n_fft=c.n_fft,
        n_mels=inference.MEL_BINS,
        fmin=inference.F_MIN,
        fmax=inference.F_MAX,
        htk=True,
        norm=1.0,
    )
    return torch.as_tensor(mel, dtype=torch.float32, device=device)


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, 96)`` scaled log-mel spectrogram of one clip, as aisfx's librosa path computes it (transposed)."""
    import torch

    layout = ClipLayout.of([clip_samples(samples, sample_rate)])
    return spectrogram(torch.from_numpy(layout.signal), torch.from_numpy(layout.frames)).numpy()


def log_mel_windows(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(n_windows, 100, 96)`` log-mel windows of one clip, computed here (on the CPU)."""
    return _host_windows(ClipLayout.of([clip_samples(samples, sample_rate)]))


def _host_windows(layout: ClipLayout) -> np.ndarray:
    import torch

    spec = spectrogram(torch.from_numpy(layout.signal), torch.from_numpy(layout.frames))
    return clip_windows(spec, torch.from_numpy(layout.windows)).numpy()


class ClipSamples(Preprocessor):
    """GPU: a clip -> its normalised samples; a batch -> a :class:`ClipLayout`'s arrays, whose
    spectrograms the encoder computes on its device."""

    def __call__(self, audio: Any) -> np.ndarray:
        return clip_samples(audio.samples, audio.sample_rate)

    def collate(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return ClipLayout.of(items).arrays()


class LogMelWindows(ClipSamples):
    """CPU: a clip -> its normalised samples; a batch -> (all its clips' ``(100, 96)`` log-mel windows,
    windows per clip), computed where the batch is collated (a batch worker process).

    One STFT per batch rather than per clip: per clip, torch's small ops cost more than the
    transform, and interleaved with another front end's numpy (YAMNet's, in ``aisfx+yamnet``) torch's
    and OpenBLAS's thread pools took turns spinning: 12-20 ms a clip on 2 threads instead of ~3.
    """

    def collate(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        layout = ClipLayout.of(items)
        return _host_windows(layout), layout.counts


class AisfxEncoder(Encoder):
    """512-d sound-effect embeddings (mean over ~2.3 s windows).

    ``spectrogram`` says where log-mel spectrograms are computed: ``"host"`` (by the preprocessor,
    in the batch workers), ``"device"`` (by the model's device, from a batch of samples), or
    ``"auto"``: on the device when it is a GPU.
    """

    modality = "audio"
    dim = 512

    def __init__(self, *, device: str, spectrogram: SpectrogramPlace = "auto") -> None:
        import torch
        from aisfx import inference

        ckpt = checkpoint_path()
        # The checkpoint pickles numpy scalars in ds_dict, so weights_only=True refuses it; it is the
        # file shipped inside the installed package, not user input.
        state, ds_dict = torch.load(ckpt, map_location="cpu", weights_only=False)
        # The package's CrossNet; only its get_embedding (the shared trunk) is used, not the heads.
        model = inference.load_bestModel(state, ds_dict, "cpu")
        fold_batch_norms(model.embedding_net)  # what get_embedding runs
        self.model = model.to(device, memory_format=conv_memory_format(device)).eval()
        self.device = device
        self.sample_rate = int(inference.SAMPLE_RATE)
        self.encoder_id = f"audio/aisfx@{file_sha(ckpt)}"
        self.space = self.encoder_id
        on_device = spectrogram == "device" or (spectrogram == "auto" and str(device).startswith("cuda"))
        self.preprocessor: Preprocessor = ClipSamples() if on_device else LogMelWindows()

    def window_embeddings(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Raw (unnormalised) ``(n_windows, 512)`` embeddings of one clip."""
        import torch

        blocks = torch.from_numpy(log_mel_windows(samples, sample_rate))
        with torch.inference_mode():
            return self._embed(blocks.to(self.device)).float().cpu().numpy()

    def forward_batch(self, batch: Any) -> dict[str, np.ndarray]:
        return self.launch_batch(batch)()

    def launch_batch(self, batch: Any) -> Callable[[], dict[str, np.ndarray]]:
        """Mean window embedding per clip of a collated batch: ``(windows, counts)`` from
        :class:`LogMelWindows` or a layout from :class:`ClipSamples`. On a GPU nothing waits for the
        device (:func:`~recsys.encoders.base.host_outputs`)."""
        import torch

        with torch.inference_mode():
            parts = [torch.as_tensor(a).to(self.device, non_blocking=True) for a in batch]
            if len(parts) == 4:
                signal, frames, windows, counts = parts
                blocks = clip_windows(spectrogram(signal, frames), windows)
            else:
                blocks, counts = parts
            emb = self._embed(blocks).float()
            clip_of_window = torch.repeat_interleave(
                torch.arange(len(counts), device=emb.device), counts, output_size=len(emb)
            )
            sums = emb.new_zeros((len(counts), emb.shape[1])).index_add_(0, clip_of_window, emb)
            outputs = host_outputs({"embedding": sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)})
        return lambda: {"embedding": unit_vectors(outputs()["embedding"])}

    def _embed(self, blocks: Any) -> Any:
        """Raw window embeddings on the device, a bounded number of windows per forward pass."""
        import torch

        chunks = [
            self.model.get_embedding(blocks[start : start + MAX_WINDOWS_PER_FORWARD])
            for start in range(0, len(blocks), MAX_WINDOWS_PER_FORWARD)
        ]
        return torch.cat(chunks)

    def _encode_batch(self, batch: Any) -> np.ndarray:
        return self.forward_batch(batch)["embedding"]
