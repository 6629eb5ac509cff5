"""aisfx's front end: one batched layout gives every clip's own spectrogram frames and windows, and
computing it on the model's device gives the same embeddings as the per-clip worker path."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.encoders.sfx import AisfxEncoder, ClipLayout, ClipSamples, LogMelWindows, _constants

from ._signals import noise, tone

# clip lengths around the frame hop (1,024 samples) and the window (100 frames)
LENGTHS = st.one_of(st.integers(1, 3_000), st.integers(95 * 1024, 160 * 1024))


@given(st.lists(LENGTHS, min_size=1, max_size=6))
def test_layout_frames_are_each_clips_own_centred_frames(lengths):
    from aisfx import preprocessing

    c = _constants()
    rng = np.random.default_rng(len(lengths))
    clips = [rng.uniform(-1, 1, n).astype(np.float32) for n in lengths]
    layout = ClipLayout.of(clips)
    grid = np.lib.stride_tricks.sliding_window_view(layout.signal, c.n_fft)[:: c.hop]
    got = grid[layout.frames]
    first = 0
    for clip in clips:
        own = np.lib.stride_tricks.sliding_window_view(np.pad(clip, c.n_fft // 2), c.n_fft)[:: c.hop]
        np.testing.assert_array_equal(got[first : first + len(own)], own)
        first += len(own)
    assert first == len(layout.frames)
    # windows: the package's blocking of each clip's row numbers (its zero padding -> -1 here)
    assert layout.counts.sum() == len(layout.windows) and len(layout.counts) == len(clips)
    first = start = 0
    for clip, count in zip(clips, layout.counts, strict=True):
        frames = 1 + len(clip) // c.hop
        rows = np.arange(first, first + frames, dtype=float)[:, None] + 1  # +1: 0 marks the padding
        theirs = preprocessing.blocking(rows, c.window, c.window_hop, drop_partial_block=True)[..., 0] - 1
        np.testing.assert_array_equal(layout.windows[start : start + count], theirs)
        first, start = first + frames, start + count


def test_the_spectrogram_goes_to_the_device_only_where_asked(audio_encoder):
    assert type(audio_encoder.preprocessor) is LogMelWindows  # "auto" on the CPU: in the workers
    on_device = AisfxEncoder(device="cpu", spectrogram="device")
    assert type(on_device.preprocessor) is ClipSamples
    assert type(pickle.loads(pickle.dumps(on_device.preprocessor))) is ClipSamples  # worker processes
    clip = tone(440.0, 3.0)
    windows, counts = audio_encoder.preprocessor.collate([audio_encoder.preprocess(clip)])
    assert windows.shape == (1, 100, 96) and counts.tolist() == [1]


@pytest.mark.slow
def test_device_spectrograms_give_the_worker_paths_embeddings(audio_encoder):
    """Mixed lengths and rates in one batch: shorter than a frame, than a window, several windows."""
    on_device = AisfxEncoder(device="cpu", spectrogram="device")
    clips = [
        noise(0.01, sr=44100, seed=1),
        tone(440.0, 1.0),
        noise(2.4, sr=16000, seed=2),
        noise(7.3, sr=44100, seed=3),
        tone(880.0, 0.3, sr=48000),
    ]
    expected = audio_encoder.encode(clips, batch_size=1)
    np.testing.assert_allclose(on_device.encode(clips, batch_size=5), expected, atol=1e-5)
    np.testing.assert_allclose(on_device.encode(clips, batch_size=2), expected, atol=1e-5)
    np.testing.assert_allclose(audio_encoder.encode(clips, batch_size=5), expected, atol=1e-5)


def test_long_batches_are_transformed_in_bounded_chunks_with_the_same_rows(monkeypatch):
    import torch

    from recsys.encoders import sfx

    layout = ClipLayout.of([noise(1.5, sr=44100, seed=5).samples, tone(220.0, 0.7, sr=44100).samples])
    signal, frames = torch.from_numpy(layout.signal), torch.from_numpy(layout.frames)
    whole = sfx.spectrogram(signal, frames)
    monkeypatch.setattr(sfx, "MAX_FRAMES_PER_FFT", 7)  # 96 frames: 14 chunks, the last one partial
    np.testing.assert_allclose(sfx.spectrogram(signal, frames).numpy(), whole.numpy(), atol=1e-6)
