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

from recsys.alignment.base import Aligner, array_digest
from recsys.errors import InputError
from recsys.vectors import unit_vectors

#: Prompt templates averaged per class (CLIP-style prompt ensembling); the catalogue is clip-art,
#: so drawings are named next to photos.
TEMPLATES = ("a photo of a {}.", "a drawing of a {}.", "{}")
DEFAULT_TOP_T = 10

#: WordNet hypernyms of the ImageNet-1k classes (scripts/build_imagenet_hypernyms.py), keyed by WordNet id.
HIERARCHY_FILE = Path(__file__).resolve().parents[2] / "data" / "wordnet" / "imagenet-hypernyms.json"
#: The default bridge prompts with each class's nearest WordNet hypernym too, at this weight against
#: the class's own prompts: chosen on the label bridge alone across the tuxpaint, openclipart and
#: iconify sources (benchmarks/alignment.py --cross; 1-3 levels and weights 0.5-1 all did better than
#: none, more levels no better than one; centring the outputs against hubness did worse).
HYPERNYM_LEVELS = 1
HYPERNYM_WEIGHT = 0.5
#: Lexicographer files as words a user would type ("artifact" is WordNet's term for made things).
_LEXNAME_WORDS = {"artifact": "object", "communication": "sign"}


def class_parents(wnids: list[str], levels: int, lexname: bool = False, path: Path = HIERARCHY_FILE) -> list[list[str]]:
    """Per class, the first lemma of each of its ``levels`` nearest WordNet hypernyms, and with
    ``lexname`` its coarse kind ("animal", "food", "plant", "object"); [] for classes not listed."""
    import json

    doc = json.loads(path.read_text(encoding="utf-8"))
    by_id = {c["wnid"]: c for c in doc["classes"]}
    out = []
    for wnid in wnids:
        entry = by_id.get(wnid)
        if entry is None:
            out.append([])
            continue
        names = [h[0] for h in entry["hypernyms"][:levels]]
        if lexname:
            names.append(_LEXNAME_WORDS.get(entry["lexname"], entry["lexname"]))
        out.append(list(dict.fromkeys(names)))
    return out


def class_synonyms(name: str, max_synonyms: int = 3) -> list[str]:
    """ImageNet names are comma-separated synonym lists ("tailed frog, bell toad, ..."): keep a few."""
    parts = [p.strip().replace("_", " ") for p in name.split(",") if p.strip()]
    return parts[:max_synonyms] or [name]


def class_text_embeddings(
    class_names: list[str],
    text_encoder: Any,
    templates: tuple[str, ...] = TEMPLATES,
    parents: list[list[str]] | None = None,
    parent_weight: float = 0.5,
    encode: Any = None,
) -> np.ndarray:
    """(C, d_text) unit rows: the mean embedding of every template x synonym prompt of each class,
    plus ``parent_weight`` times the mean of its ``parents``' prompts (WordNet hypernyms, so that
    "fruit" reaches the apple classes). ``encode`` (texts -> rows) replaces ``text_encoder.encode``."""
    encode = encode or (lambda texts: text_encoder.encode(texts, batch_size=256))

    def mean_per_class(names_per_class: list[list[str]]) -> np.ndarray:
        prompts = [t.format(n) for names in names_per_class for n in names for t in templates]
        owner = np.repeat(np.arange(len(names_per_class)), [len(names) * len(templates) for names in names_per_class])
        emb = np.asarray(encode(prompts), dtype=np.float32)
        sums = np.zeros((len(names_per_class), emb.shape[1]), dtype=np.float64)
        np.add.at(sums, owner, emb)
        counts = np.maximum(np.bincount(owner, minlength=len(names_per_class)), 1)[:, None]
        return sums / counts

    own = mean_per_class([class_synonyms(name) for name in class_names])
    if parents is None or not any(parents) or parent_weight <= 0:
        return unit_vectors(own)
    return unit_vectors(unit_vectors(own) + parent_weight * unit_vectors(mean_per_class(parents)))


def bridge_class_names(source_encoder: Any) -> list[str] | None:
    """The class names a label bridge prompts with: full synonym lists ("tabby, tabby cat") where the
    encoder has them (richer prompts than the short labels), else its class names; None without any."""
    names = getattr(source_encoder, "class_synonyms", None) or getattr(source_encoder, "class_names", None)
    return list(names) if names else None


def bridge_parents(source_encoder: Any, levels: int = HYPERNYM_LEVELS) -> list[list[str]] | None:
    """The WordNet hypernyms a label bridge adds to each class's prompts: for encoders whose classes
    carry WordNet ids (``class_wnids``, the ImageNet classifier), else None."""
    wnids = getattr(source_encoder, "class_wnids", None)
    return class_parents(list(wnids), levels) if wnids and levels > 0 else None


def class_text_cache_file(
    class_names: list[str],
    text_encoder: Any,
    cache_dir: Any = None,
    parents: list[list[str]] | None = None,
    parent_weight: float = HYPERNYM_WEIGHT,
) -> Path:
    """Where :func:`cached_class_text_embeddings` keeps them: named by :func:`class_text_key`, so
    other encoders or prompts never read these."""
    from recsys.encoding.cache import default_cache_dir

    key = class_text_key(class_names, text_encoder, parents, parent_weight)
    return Path(cache_dir or default_cache_dir()) / f"label-bridge-{key}.npz"


def class_text_key(
    class_names: list[str],
    text_encoder: Any,
    parents: list[list[str]] | None = None,
    parent_weight: float = HYPERNYM_WEIGHT,
) -> str:
    """A hash of what the class texts' vectors are computed from: the text encoder id, the
    templates, the class names and any hypernyms."""
    parts = [text_encoder.encoder_id, *TEMPLATES, *class_names]
    if parents and any(parents):
        parts += [f"parents x {parent_weight!r}", *("|".join(p) for p in parents)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def cached_class_text_embeddings(
    class_names: list[str],
    text_encoder: Any,
    cache_dir: Any = None,
    parents: list[list[str]] | None = None,
    parent_weight: float = HYPERNYM_WEIGHT,
) -> np.ndarray:
    """:func:`class_text_embeddings`, stored in the feature cache (thousands of prompts: ~20 s on a CPU)."""
    from recsys.cachefile import Spec, load_npz, save_npz

    path = class_text_cache_file(class_names, text_encoder, cache_dir, parents, parent_weight)
    width = getattr(text_encoder, "dim", None)
    spec = Spec((len(class_names), width if isinstance(width, int) else None))
    cached = load_npz(path, {"embeddings": spec}, what="label-bridge cache")
    if cached is not None:
        return cached["embeddings"].astype(np.float32)
    emb = class_text_embeddings(class_names, text_encoder, parents=parents, parent_weight=parent_weight)
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
        origin: str | None = None,
    ) -> None:
        """``origin``: :func:`class_text_key` of what ``class_embeddings`` were computed from, which
        then stands for them in :meth:`parameters_digest`."""
        self.origin = origin
        self.class_embeddings = np.asarray(class_embeddings, dtype=np.float32)
        self.source_modality = source_modality
        self.source_encoder_id = source_encoder_id
        self.target_space = target_space
        self.top_t = int(top_t)
        self.input_dim, self.output_dim = self.class_embeddings.shape

    @classmethod
    def from_encoders(
        cls,
        source_encoder: Any,
        text_encoder: Any,
        top_t: int = DEFAULT_TOP_T,
        cache_dir: Any = None,
        hypernym_levels: int = HYPERNYM_LEVELS,
    ) -> LabelBridge:
        names = bridge_class_names(source_encoder)
        if not names or not hasattr(source_encoder, "predict_proba"):
            raise InputError(
                f"The label bridge needs an encoder with class names; {source_encoder.encoder_id} has none. "
                "Use a learned projection instead (python -m recsys align)."
            )
        parents = bridge_parents(source_encoder, hypernym_levels)
        return cls(
            cached_class_text_embeddings(list(names), text_encoder, cache_dir, parents),
            source_modality=source_encoder.modality,
            source_encoder_id=source_encoder.encoder_id,
            target_space=text_encoder.space,
            top_t=top_t,
            origin=class_text_key(list(names), text_encoder, parents),
        )

    def parameters_digest(self) -> str:
        """What the class vectors come from when known, else their digest. Why: computed again in
        another cache dir or under another thread count, the same class texts' vectors differ in
        the last bits, and a digest of those made the CLI and the app keep two snapshots and two
        stores of one catalogue (a full store rewrite at each switch)."""
        made_from = f"class texts {self.origin}" if self.origin else array_digest(self.class_embeddings)
        return f"{made_from} top {self.top_t}"

    def _transform(self, features: np.ndarray) -> np.ndarray:
        t = min(self.top_t, features.shape[1])
        top = np.argpartition(-features, t - 1, axis=1)[:, :t]
        weights = np.zeros_like(features)
        rows = np.arange(len(features))[:, None]
        weights[rows, top] = features[rows, top]
        return weights @ self.class_embeddings
