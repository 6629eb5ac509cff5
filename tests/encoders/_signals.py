"""Synthetic signals and assertions shared by the encoder tests."""

from __future__ import annotations

import numpy as np

from recsys.media import Audio


def tone(freq: float, seconds: float, sr: int = 22050, amp: float = 0.5) -> Audio:
    t = np.arange(int(seconds * sr)) / sr
    return Audio((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


def noise(seconds: float, sr: int = 22050, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(rng.normal(0.0, 0.3, int(seconds * sr)).clip(-1, 1).astype(np.float32), sr)


def assert_unit_rows(x: np.ndarray, n: int, dim: int) -> None:
    assert x.shape == (n, dim)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
