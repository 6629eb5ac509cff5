"""On-disk cache of per-item features, keyed by content hash and feature extractor id.

Keys are hashes of the item's *content* (the text, or the media file's bytes), so renaming or
reordering a catalogue reuses everything, editing one item recomputes one item, and a new
encoder (new ``feature_id``) never reads stale vectors. One ``.npz`` per extractor, rewritten
atomically after every chunk, so an interrupted build keeps what it finished and never leaves a
corrupt file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recsys import atomic, media
from recsys.catalogue import Catalogue, Item
from recsys.errors import InputError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
CHUNK_SIZE = 128


class FeatureExtractor(Protocol):
    """Anything that turns a batch of decoded inputs into a (n, d) float32 matrix."""

    feature_id: str
    modality: str

    def __call__(self, inputs: Sequence[Any]) -> np.ndarray: ...


@dataclass(frozen=True)
class Features:
    """Per-item features in catalogue order; rows of items lacking the modality are zero."""

    vectors: np.ndarray
    present: np.ndarray


@dataclass(frozen=True)
class _EncoderExtractor:
    encoder: Any
    batch_size: int = 32

    @property
    def feature_id(self) -> str:
        return self.encoder.encoder_id

    @property
    def modality(self) -> str:
        return self.encoder.modality

    def __call__(self, inputs: Sequence[Any]) -> np.ndarray:
        return self.encoder.encode(list(inputs), batch_size=self.batch_size)


@dataclass(frozen=True)
class _ClassProbaExtractor:
    encoder: Any
    batch_size: int = 32

    @property
    def feature_id(self) -> str:
        return f"{self.encoder.encoder_id}#class-proba"

    @property
    def modality(self) -> str:
        return self.encoder.modality

    def __call__(self, inputs: Sequence[Any]) -> np.ndarray:
        return self.encoder.predict_proba(list(inputs), batch_size=self.batch_size)


def encoder_extractor(encoder: Any, batch_size: int = 32) -> FeatureExtractor:
    """Embeddings of an :class:`recsys.encoders.Encoder`."""
    return _EncoderExtractor(encoder, batch_size)


def class_proba_extractor(encoder: Any, batch_size: int = 32) -> FeatureExtractor:
    """Class probabilities of an image encoder that carries a classifier head."""
    return _ClassProbaExtractor(encoder, batch_size)


def default_cache_dir() -> Path:
    """``RECSYS_CACHE_DIR`` if set, else ``~/.cache/recsys``."""
    env = os.environ.get("RECSYS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "recsys"


def content_key(item: Item, modality: str) -> str | None:
    """Hash of what the encoder of ``modality`` would see for ``item``; None if it has none."""
    if modality == "text":
        text = item.text.strip()
        return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None
    path = getattr(item, modality)
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode(item: Item, modality: str) -> Any:
    """The decoded input an encoder of ``modality`` takes for ``item``."""
    if modality == "text":
        return item.text
    if modality == "image":
        return media.load_image(item.image)
    if modality == "audio":
        return media.load_audio(item.audio)
    raise InputError(f"unknown modality '{modality}'; expected text, image or audio")


def _cache_file(cache_dir: Path, feature_id: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", feature_id).strip("_")[:80]
    digest = hashlib.sha256(feature_id.encode("utf-8")).hexdigest()[:12]
    return cache_dir / f"{slug}-{digest}.npz"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable feature cache %s (%s); it will be rebuilt", path, exc)
        return {}


def _write(path: Path, store: dict[str, np.ndarray]) -> None:
    keys = np.array(sorted(store), dtype=str)
    vectors = np.stack([store[k] for k in keys.tolist()]).astype(np.float32)
    atomic.write_npz(path, keys=keys, vectors=vectors)


def catalogue_features(
    catalogue: Catalogue,
    modality: str,
    extractor: FeatureExtractor,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Features:
    """Features of every catalogue item for ``modality``, computing only what the cache lacks."""
    cache_path = _cache_file(Path(cache_dir) if cache_dir else default_cache_dir(), extractor.feature_id)
    store = _read(cache_path)
    keys = [content_key(item, modality) for item in catalogue.items]
    todo = sorted({k: i for i, k in enumerate(keys) if k is not None and k not in store}.items(), key=lambda kv: kv[1])
    done = 0
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), CHUNK_SIZE):
        chunk = todo[start : start + CHUNK_SIZE]
        inputs, chunk_keys = [], []
        for key, index in chunk:
            try:
                inputs.append(decode(catalogue.items[index], modality))
                chunk_keys.append(key)
            except InputError as exc:
                log.warning("skipping %s of item %s: %s", modality, catalogue.items[index].id, exc)
        if inputs:
            vectors = np.asarray(extractor(inputs), dtype=np.float32)
            store.update(zip(chunk_keys, vectors, strict=True))
            _write(cache_path, store)
        done += len(chunk)
        if progress:
            progress(done, len(todo))
    dim = next(iter(store.values())).shape[0] if store else 0
    present = np.array([k is not None and k in store for k in keys], dtype=bool)
    vectors = np.zeros((len(keys), dim), dtype=np.float32)
    for i, key in enumerate(keys):
        if present[i]:
            vectors[i] = store[key]
    return Features(vectors, present)
