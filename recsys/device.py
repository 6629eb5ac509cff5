"""Device choice: CUDA when present, never required."""

from __future__ import annotations

import os


def pick_device(preferred: str | None = None) -> str:
    """Return ``preferred`` if given, else ``RECSYS_DEVICE``, else ``cuda`` when available, else ``cpu``."""
    choice = preferred or os.environ.get("RECSYS_DEVICE")
    if choice:
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

