"""Per-modality encoders behind one registry: ``create_encoder(name)`` -> :class:`Encoder`.

    >>> from recsys.encoders import create_encoder, list_encoders
    >>> text = create_encoder("minilm")                    # offline, 384-d
    >>> image = create_encoder("efficientnet-lite0")       # offline, 1280-d + ImageNet classes
    >>> audio = create_encoder("aisfx")                    # offline, 512-d sound effects
    >>> text.encode(["a red apple"]).shape
    (1, 384)

Every ``encode`` returns float32 rows with unit L2 norm. Encoders with equal ``space`` (the two
towers of ``open_clip:<model>:<pretrained>`` / ``open_clip-text:...``, or of ``clap:<folder>`` /
``clap-text:<folder>``) are natively comparable; others need an aligner (``recsys.alignment.factory``).
Missing weights raise :class:`recsys.errors.MissingWeightsError` saying what to install; there
is never a fallback to random weights. New families plug in with :func:`register_encoder`.

Importing this package is cheap: torch and the models load only when an encoder is built.
The Hugging Face libraries' per-tensor "Loading weights" bars are switched off (unless the user
set ``HF_HUB_DISABLE_PROGRESS_BARS``): the product shows its own progress where it matters.
"""

import os

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from recsys.encoders.base import ClassifierHead, Encoder
from recsys.encoders.registry import (
    DEFAULT_ENCODERS,
    EncoderConfig,
    clear_encoder_cache,
    create_encoder,
    encoder_modality,
    list_encoders,
    register_encoder,
)

__all__ = [
    "DEFAULT_ENCODERS",
    "ClassifierHead",
    "Encoder",
    "EncoderConfig",
    "clear_encoder_cache",
    "create_encoder",
    "encoder_modality",
    "list_encoders",
    "register_encoder",
]
