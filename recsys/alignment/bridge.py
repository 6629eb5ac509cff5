"""Label bridge (ConSE, Norouzi et al. 2014): zero-shot image -> text through a classifier's labels.

An image's top-T class probabilities weight the text embeddings of those class names, so the
image lands in the text space with no training at all. It needs an encoder with
``class_names`` and ``predict_proba`` (the offline ImageNet-1k EfficientNet-Lite0).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from recsys.alignment.base import Aligner, l2_normalise
from recsys.errors import InputError

#: Prompt templates averaged per class (CLIP-style prompt ensembling); the catalogue is clip-art,
#: so drawings are named next to photos.
TEMPLATES = ("a photo of a {}.", "a drawing of a {}.", "{}")
DEFAULT_TOP_T = 10


def class_synonyms(name: str, max_synonyms: int = 3) -> list[str]:
    """ImageNet names are comma-separated synonym lists ("tailed frog, bell toad, ..."): keep a few."""
    parts = [p.strip().replace("_", " ") for p in name.split(",") if p.strip()]
    return parts[:max_synonyms] or [name]


def class_text_embeddings(
    class_names: list[str], text_encoder: Any, templates: tuple[str, ...] = TEMPLATES
) -> np.ndarray:
    """(C, d_text) unit rows: the mean embedding of every template x synonym prompt of each class."""
    prompts: list[str] = []
    owner: list[int] = []
    for c, name in enumerate(class_names):
        for syn in class_synonyms(name):
            for template in templates:
                prompts.append(template.format(syn))
                owner.append(c)
    emb = np.asarray(text_encoder.encode(prompts, batch_size=256), dtype=np.float32)
    sums = np.zeros((len(class_names), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owner), emb)
    return l2_normalise(sums)


def bridge_class_names(source_encoder: Any) -> list[str] | None:
    """The class names a label bridge prompts with: full synonym lists ("tabby, tabby cat") where the
    encoder has them (richer prompts than the short labels), else its class names; None without any."""
    names = getattr(source_encoder, "class_synonyms", None) or getattr(source_encoder, "class_names", None)
    return list(names) if names else None


def class_text_cache_file(class_names: list[str], text_encoder: Any, cache_dir: Any = None) -> Path:
    """Where :func:`cached_class_text_embeddings` keeps them: named by a hash of the text encoder id,
    the templates and the class names, so other encoders or prompts never read these."""
    from recsys.cache import default_cache_dir

    key = hashlib.sha256("\n".join([text_encoder.encoder_id, *TEMPLATES, *class_names]).encode("utf-8")).hexdigest()[
        :16
    ]
    return Path(cache_dir or default_cache_dir()) / f"label-bridge-{key}.npz"


def cached_class_text_embeddings(class_names: list[str], text_encoder: Any, cache_dir: Any = None) -> np.ndarray:
    """:func:`class_text_embeddings`, stored in the feature cache (thousands of prompts: ~20 s on a CPU)."""
    from recsys.cachefile import Spec, load_npz, save_npz

    path = class_text_cache_file(class_names, text_encoder, cache_dir)
    width = getattr(text_encoder, "dim", None)
    spec = Spec((len(class_names), width if isinstance(width, int) else None))
    cached = load_npz(path, {"embeddings": spec}, what="label-bridge cache")
    if cached is not None:
        return cached["embeddings"].astype(np.float32)
    emb = class_text_embeddings(class_names, text_encoder)
    save_npz(path, what="label-bridge cache", embeddings=emb)
    return emb


class LabelBridge(Aligner):
    """ConSE: ``normalise(sum_{t in top-T} p_t * text(class_t))``."""

    name = "label-bridge"
    input_kind = "class_proba"

    def __init__(
        self,
        class_embeddings: np.ndarray,
        *,
        source_modality: str,
        source_encoder_id: str,
        target_space: str,
        top_t: int = DEFAULT_TOP_T,
    ) -> None:
        self.class_embeddings = np.asarray(class_embeddings, dtype=np.float32)
        self.source_modality = source_modality
        self.source_encoder_id = source_encoder_id
        self.target_space = target_space
        self.top_t = int(top_t)
        self.input_dim, self.output_dim = self.class_embeddings.shape

    @classmethod
    def from_encoders(
        cls, source_encoder: Any, text_encoder: Any, top_t: int = DEFAULT_TOP_T, cache_dir: Any = None
    ) -> LabelBridge:
        names = bridge_class_names(source_encoder)
        if not names or not hasattr(source_encoder, "predict_proba"):
            raise InputError(
                f"The label bridge needs an encoder with class names; {source_encoder.encoder_id} has none. "
                "Use a learned projection instead (python -m recsys align)."
            )
        return cls(
            cached_class_text_embeddings(list(names), text_encoder, cache_dir),
            source_modality=source_encoder.modality,
            source_encoder_id=source_encoder.encoder_id,
            target_space=text_encoder.space,
            top_t=top_t,
        )

    def _transform(self, features: np.ndarray) -> np.ndarray:
        t = min(self.top_t, features.shape[1])
        top = np.argpartition(-features, t - 1, axis=1)[:, :t]
        weights = np.zeros_like(features)
        rows = np.arange(len(features))[:, None]
        weights[rows, top] = features[rows, top]
        return weights @ self.class_embeddings
