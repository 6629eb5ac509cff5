"""The encoder interface every modality implements, and the small helpers they share.

Nothing here imports torch: the registry must be importable (and list its names) without
loading a deep-learning stack.
"""

from __future__ import annotations

import abc
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recsys.collector import collector_paused
from recsys.errors import InputError
from recsys.vectors import unit_vectors

MODALITIES = ("text", "image", "audio")


class Preprocessor:
    """Per-item CPU work before the forward pass: identity here, resize / log-mel in subclasses.

    Batch indexing runs it in DataLoader worker processes, so it must pickle without the encoder's
    network (hold sizes and constants; a small CPU model that is cheaper run beside the decoding,
    like YAMNet's few-MB ONNX graph in :class:`recsys.encoders.yamnet.YamnetScores`, may travel with
    it) and must not need the accelerator.
    ``collate`` joins the preprocessed items of one batch into what ``Encoder.forward_batch`` takes.
    ``min_image_side``: for image encoders that shrink pictures to a fixed size, the least side a
    picture must be decoded at (see :func:`recsys.media.load_image`'s ``min_side``); None decodes
    at the product's display size.
    Optional, for work better done on the model's device (:class:`recsys.encoders.jpeg.DeviceJpegResize`):
    ``source_input(path)`` gives a worker's item straight from the file (None: decode as usual), and
    ``finish_batch(inputs, device)`` completes a collated batch in the main process, returning it and
    {position: why that item failed}.
    """

    min_image_side: int | None = None

    def __call__(self, item: Any) -> Any:
        return item

    def collate(self, items: list[Any]) -> Any:
        return list(items)


class LazyNetwork:
    """An encoder's network, built on first use and once, whichever thread asks first.

    Why: a start that maps its engine snapshot encodes nothing, and building the offline networks
    imports their stacks (sentence-transformers with transformers and scikit-learn; timm with
    torchvision): ~3 s each on 2 cores, paid by every start and every CLI query before.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._network: Any = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._network is not None

    def get(self) -> Any:
        with self._lock:
            if self._network is None:
                with collector_paused():  # an import beside a large catalogue's items (recsys.collector)
                    self._network = self._build()
            return self._network


class StackPreprocessor(Preprocessor):
    """Fixed-shape arrays per item, collated into one ``(n, ...)`` array."""

    def collate(self, items: list[Any]) -> Any:
        return np.stack(items)


class Encoder(abc.ABC):
    """Maps a batch of inputs of one modality to L2-normalised float32 vectors.

    ``encoder_id`` names the weights (and changes when they change) so cached embeddings are
    never reused across models; ``space`` is shared by encoders whose vectors are natively
    comparable (the two towers of a CLIP or CLAP model); it defaults to ``encoder_id``.

    Work is split in two so that batch indexing can run the first half in worker processes:
    ``preprocessor`` (picklable, per item: decode-side work such as resizing or a log-mel) and
    ``forward_batch`` (the model, on a collated batch). ``outputs`` names everything one forward
    pass yields (``"embedding"``, plus ``"class_proba"`` for classifiers), so one pass over a
    catalogue fills every cache the product needs.
    """

    modality: str
    encoder_id: str
    space: str
    dim: int
    device: str
    outputs: tuple[str, ...] = ("embedding",)
    preprocessor: Preprocessor = Preprocessor()

    def encode(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Return an ``(len(inputs), dim)`` float32 array whose rows have unit L2 norm."""
        return self.encode_outputs(inputs, batch_size, ("embedding",))["embedding"]

    def encode_outputs(
        self, inputs: Sequence[Any], batch_size: int = 32, outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Every requested output (default: all of ``outputs``) of ``inputs``, in-process, one forward per batch."""
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
            raise InputError(f"{type(self).__name__}.encode expects a list of inputs, got {type(inputs).__name__}.")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}.")
        wanted = tuple(outputs or self.outputs)
        unknown = sorted(set(wanted) - set(self.outputs))
        if unknown:
            raise InputError(f"{self.encoder_id} has no output {', '.join(unknown)}; it has {', '.join(self.outputs)}.")
        if len(inputs) == 0:
            return {name: np.zeros((0, self.output_dims()[name]), dtype=np.float32) for name in wanted}
        self._check_inputs(inputs)
        pre = self.preprocessor
        parts = [self.forward_batch(pre.collate([pre(x) for x in chunk])) for chunk in batches(inputs, batch_size)]
        return {name: np.concatenate([p[name] for p in parts], axis=0).astype(np.float32) for name in wanted}

    def preprocess(self, item: Any) -> Any:
        """One decoded input -> what ``preprocessor.collate`` stacks (same as the worker processes do)."""
        return self.preprocessor(item)

    def forward_batch(self, batch: Any) -> dict[str, np.ndarray]:
        """Every output of one collated batch: ``{"embedding": (n, dim) unit rows, ...}``, float32."""
        return {"embedding": unit_vectors(self._encode_batch(batch))}

    def launch_batch(self, batch: Any) -> Callable[[], dict[str, np.ndarray]]:
        """Start :meth:`forward_batch` on one batch; the returned call gives its outputs.

        An encoder whose network runs on a GPU returns before the device is done (see
        :func:`host_outputs`), so the batch pipeline can queue the next batch while this one
        computes instead of leaving the device idle while the host reads back and fetches. Here:
        computed at once.
        """
        out = self.forward_batch(batch)
        return lambda: out

    def output_dims(self) -> dict[str, int]:
        """Width of each output (for empty results)."""
        return {"embedding": self.dim}

    @abc.abstractmethod
    def _encode_batch(self, batch: Any) -> np.ndarray:
        """Raw (not necessarily normalised) embeddings of one collated batch, shape ``(n, dim)``."""

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


def encoder_outputs(
    encoder: Any, inputs: Sequence[Any], outputs: Sequence[str], batch_size: int = 32
) -> dict[str, np.ndarray]:
    """``outputs`` of any encoder, from one pass where it can: :meth:`Encoder.encode_outputs`, else
    ``encode_and_predict``, else ``encode`` / ``predict_proba`` (duck-typed encoders, e.g. test fakes)."""
    if hasattr(encoder, "encode_outputs"):
        return encoder.encode_outputs(inputs, batch_size, tuple(outputs))
    wanted = tuple(dict.fromkeys(outputs))
    if set(wanted) == {"embedding", "class_proba"} and hasattr(encoder, "encode_and_predict"):
        emb, proba = encoder.encode_and_predict(list(inputs), batch_size=batch_size)
        return {"embedding": np.asarray(emb, np.float32), "class_proba": np.asarray(proba, np.float32)}
    out = {}
    for name in wanted:
        if name == "embedding":
            out[name] = np.asarray(encoder.encode(list(inputs), batch_size=batch_size), np.float32)
        elif name == "class_proba" and hasattr(encoder, "predict_proba"):
            out[name] = np.asarray(encoder.predict_proba(list(inputs), batch_size=batch_size), np.float32)
        else:
            raise InputError(f"{encoder.encoder_id} has no output {name!r}")
    return out


def output_width(encoder: Any, output: str) -> int | None:
    """Width of one output of any encoder (``output_dims``, else ``dim`` / ``class_names``); None if it
    does not say. Cache readers check cached vectors against it."""
    dims = encoder.output_dims() if hasattr(encoder, "output_dims") else {}
    if output in dims:
        return int(dims[output])
    if output == "embedding" and isinstance(getattr(encoder, "dim", None), int):
        return int(encoder.dim)
    if output == "class_proba" and getattr(encoder, "class_names", None):
        return len(encoder.class_names)
    return None


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


def host_outputs(tensors: Mapping[str, Any]) -> Callable[[], dict[str, np.ndarray]]:
    """Float32 host copies of a forward pass's output tensors, and on CUDA without waiting for them.

    On a GPU the copies are queued into pinned buffers behind the kernels that make them, with an
    event after them; the returned call waits for that event only. A plain ``.cpu()`` after the
    next batch was queued would wait for that batch's kernels too, which are ahead of it on the
    stream. On the CPU everything is done before this returns.
    """
    import torch

    devices = {t.device for t in tensors.values()}
    if len(devices) != 1 or next(iter(devices)).type != "cuda":  # CPU, MPS, or outputs on several devices
        # copies, as on a GPU: a forward pass may return buffers it overwrites (a replayed graph's)
        ready = {name: t.detach().float().cpu().numpy().copy() for name, t in tensors.items()}
        return lambda: ready
    device = next(iter(devices))
    host = {}
    with torch.cuda.device(device):  # the event must follow the stream the copies run on (cuda:N too)
        stream = torch.cuda.current_stream(device)
        for name, t in tensors.items():
            host[name] = torch.empty(tuple(t.shape), dtype=torch.float32, pin_memory=True)
            host[name].copy_(t.detach().float(), non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(stream)

    def wait() -> dict[str, np.ndarray]:
        copied.synchronize()
        return {name: buffer.numpy() for name, buffer in host.items()}

    return wait


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
