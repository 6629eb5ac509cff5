"""The encoder interface every modality implements, and the small helpers they share.

Nothing here imports torch: the registry must be importable (and list its names) without
loading a deep-learning stack.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recsys.errors import InputError

MODALITIES = ("text", "image", "audio")


class Encoder(abc.ABC):
    """Maps a batch of inputs of one modality to L2-normalised float32 vectors.

    ``encoder_id`` names the weights (and changes when they change) so cached embeddings are
    never reused across models; ``space`` is shared by encoders whose vectors are natively
    comparable (the two towers of a CLIP or CLAP model); it defaults to ``encoder_id``.
    """

    modality: str
    encoder_id: str
    space: str
    dim: int
    device: str

    def encode(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Return an ``(len(inputs), dim)`` float32 array whose rows have unit L2 norm."""
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
            raise InputError(f"{type(self).__name__}.encode expects a list of inputs, got {type(inputs).__name__}.")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}.")
        if len(inputs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._check_inputs(inputs)
        parts = [self._encode_batch(list(chunk)) for chunk in batches(inputs, batch_size)]
        return l2_normalize(np.concatenate(parts, axis=0))

    @abc.abstractmethod
    def _encode_batch(self, batch: list[Any]) -> np.ndarray:
        """Raw (not necessarily normalised) embeddings of one batch, shape ``(len(batch), dim)``."""

    def _check_inputs(self, inputs: Sequence[Any]) -> None:
        """Reject inputs of the wrong type with a message naming the expected one."""
        expected = _EXPECTED_TYPES[self.modality]
        for i, item in enumerate(inputs):
            if not isinstance(item, expected()):
                raise InputError(
                    f"{self.modality} encoder {self.encoder_id!r} expects {_EXPECTED_NAMES[self.modality]} "
                    f"inputs; item {i} is a {type(item).__name__}."
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(encoder_id={self.encoder_id!r}, dim={self.dim}, device={self.device!r})"


@runtime_checkable
class ClassifierHead(Protocol):
    """An image encoder that also carries class logits (used by the label-bridge aligner)."""

    class_names: list[str]

    def predict_proba(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Return ``(n, len(class_names))`` float32 class probabilities (rows sum to 1)."""
        ...


def _pil_image_type() -> type:
    from PIL import Image

    return Image.Image


def _audio_type() -> type:
    from recsys.media import Audio

    return Audio


_EXPECTED_TYPES = {"text": lambda: str, "image": _pil_image_type, "audio": _audio_type}
_EXPECTED_NAMES = {"text": "str", "image": "PIL.Image.Image", "audio": "recsys.media.Audio"}


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (all-zero rows stay zero) as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha(path: str | os.PathLike[str], length: int = 12) -> str:
    """Short sha256 of a file's bytes; memoised on (path, size, mtime) so ids are cheap to recompute."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key][:length]


def folder_sha(folder: str | os.PathLike[str], length: int = 12) -> str:
    """Short sha256 over the weight and config files of a model folder (name + content hash)."""
    root = Path(folder)
    suffixes = {".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        h.update(file_sha(p, length=64).encode())
    return h.hexdigest()[:length]
