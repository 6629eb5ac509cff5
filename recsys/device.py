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


#: Items per forward pass when indexing, unless set (``batch_size``): per device kind, else ``cpu``'s.
#: On a GPU each batch costs the main process a fixed share (receiving and pinning it, queueing the
#: forward, reading outputs back, writing shards), so small batches leave the device idle: on an
#: H200, MiniLM indexed 3,363 sentences/s at 32 and 8,731 at 256, EfficientNet-Lite0 2,304 and
#: 3,270 images/s (docs/ENCODING.md). On 2 CPU cores the model sets the pace at 32, and a small
#: batch keeps a killed run's lost work small.
DEFAULT_BATCH_SIZES = {"cpu": 32, "cuda": 256}


def default_batch_size(device: str) -> int:
    """How many items to encode per forward pass on ``device`` when the user has not said."""
    kind = str(device).split(":", 1)[0]
    return DEFAULT_BATCH_SIZES.get(kind, DEFAULT_BATCH_SIZES["cpu"])


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
