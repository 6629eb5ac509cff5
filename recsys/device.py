"""Device choice: CUDA when present, never required."""

from __future__ import annotations

import os
from typing import Any

from recsys.errors import ConfigError

#: Device kinds the encoders can run on, and how torch says whether this machine has one.
USABLE = {
    "cpu": lambda torch: True,
    "cuda": lambda torch: torch.cuda.is_available(),
    "mps": lambda torch: torch.backends.mps.is_available(),
}


def device_problem(name: str) -> str | None:
    """Why torch device ``name`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) cannot be used here, or None.

    Checked up front: torch's own error for ``bogus`` comes only once a model is being loaded.
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError, OverflowError):
        return "is not a device: use cpu, cuda, cuda:N or mps"
    if device.type not in USABLE:
        return f"is a {device.type} device, which the encoders cannot use: use cpu, cuda, cuda:N or mps"
    if not USABLE[device.type](torch):
        return f"is not available on this machine (torch finds no {device.type.upper()} device); use cpu"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


def check_device(name: str, where: str = "device") -> str:
    """``name`` if :func:`device_problem` finds nothing, else :class:`ConfigError` naming ``where``."""
    problem = device_problem(name)
    if problem is not None:
        raise ConfigError(f"{where} {name!r} {problem}.")
    return name


def pick_device(preferred: str | None = None) -> str:
    """Return ``preferred`` if given, else ``RECSYS_DEVICE``, else ``cuda`` when available, else ``cpu``.

    An explicit choice is checked (:class:`ConfigError` for one this machine cannot use).
    """
    if preferred:
        return check_device(preferred)
    env = os.environ.get("RECSYS_DEVICE")
    if env:
        return check_device(env, "environment variable RECSYS_DEVICE")
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def conv_memory_format(device: str) -> Any:
    """The memory layout convolutional encoders run in on ``device`` (a ``torch.memory_format``).

    ``channels_last`` on the CPU, where oneDNN's NHWC kernels ran EfficientNet-Lite0 1.5x and the
    aisfx CNN 1.35x faster (2 cores, 1 or 2 threads), with the same outputs to 1e-5; torch's default
    elsewhere, where it has not been measured against it.
    """
    import torch

    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
