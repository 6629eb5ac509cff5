"""Per-modality encoders behind one registry: ``create_encoder(name)`` -> :class:`Encoder`.

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
