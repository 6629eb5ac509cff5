"""Training pairs from catalogues (item image or sound + its description) and head training.

Features come through :mod:`recsys.encoding` and its cache, so training after the catalogue was indexed (or
re-running the benchmark) costs no encoder passes. The text side is the item's description
(its title when it has none): that is what a user's query looks like.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.alignment.projection import TrainConfig, TrainResult, groups_from_targets, train_projection
from recsys.errors import CatalogueError

#: Per-modality head defaults, chosen on the grouped 5-fold benchmark (benchmarks/alignment.py).
DEFAULT_CONFIGS: dict[str, TrainConfig] = {
    "image": TrainConfig(),
    "audio": TrainConfig(center=True),
}


def item_description(item: Any) -> str:
    return (item.description or "").strip() or (item.title or "").strip()


@dataclass
class Pairs:
    """Aligned rows: ``source[i]`` (encoder features) goes with ``target[i]`` (text embedding)."""

    source: np.ndarray
    target: np.ndarray
    texts: list[str]
    item_index: np.ndarray  # row -> catalogue item index

    def __len__(self) -> int:
        return len(self.source)

    def subset(self, rows: np.ndarray) -> Pairs:
        return Pairs(self.source[rows], self.target[rows], [self.texts[i] for i in rows], self.item_index[rows])

    @staticmethod
    def concat(parts: Sequence[Pairs]) -> Pairs:
        return Pairs(
            np.concatenate([p.source for p in parts]),
            np.concatenate([p.target for p in parts]),
            [t for p in parts for t in p.texts],
            np.concatenate([p.item_index for p in parts]),
        )


def encode_texts(text_encoder: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Embed texts once per distinct string (descriptions repeat across items)."""
    unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    emb = np.asarray(text_encoder.encode(unique.tolist(), batch_size=batch_size), dtype=np.float32)
    return emb[inverse.reshape(-1)]


def catalogue_pairs(
    catalogue: Any,
    modality: str,
    source_encoder: Any,
    text_encoder: Any,
    *,
    cache_dir: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> Pairs:
    """Every item with both ``modality`` media and a description, as a training pair."""
    from recsys.encoding import catalogue_features

    feats = catalogue_features(catalogue, modality, source_encoder, cache_dir=cache_dir, progress=progress)["embedding"]
    texts = [item_description(item) for item in catalogue.items]
    rows = np.flatnonzero(feats.present & np.array([bool(t) for t in texts]))
    if len(rows) < 2:
        raise CatalogueError(
            f"The catalogue at {catalogue.root} has {len(rows)} items with both {modality} and a description; "
            "a projection head needs at least two such pairs."
        )
    kept = [texts[i] for i in rows]
    return Pairs(feats.vectors[rows], encode_texts(text_encoder, kept), kept, rows)


def pairs_sha256(pairs: Pairs) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pairs.source).tobytes())
    h.update("\n".join(pairs.texts).encode("utf-8"))
    return h.hexdigest()


def train_on_pairs(
    pairs: Pairs,
    *,
    modality: str,
    source_encoder: Any,
    text_encoder: Any,
    config: TrainConfig | None = None,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a head on ``pairs``; items sharing a description are positives of each other."""
    return train_projection(
        pairs.source,
        pairs.target,
        groups=groups_from_targets(pairs.target),
        source_modality=modality,
        source_encoder_id=source_encoder.encoder_id,
        text_encoder_id=text_encoder.encoder_id,
        target_space=text_encoder.space,
        config=config or DEFAULT_CONFIGS.get(modality, TrainConfig()),
        extra=extra,
    )


#: Weight of the label bridge in the shipped image ensemble (the rest goes to the learned head);
#: chosen on the grouped 5-fold benchmark.
DEFAULT_BRIDGE_WEIGHT = 0.5


@dataclass
class Written:
    modality: str
    path: Any  # the spec to configure (ensemble or head .json)
    result: TrainResult


def train_catalogue_aligners(
    catalogue: Any,
    modalities: Sequence[str],
    *,
    encoders: dict[str, Any],
    text_encoder: Any,
    out_dir: Any,
    prefix: str,
    extra_catalogues: Sequence[Any] = (),
    config: TrainConfig | None = None,
    bridge_weight: float = DEFAULT_BRIDGE_WEIGHT,
    cache_dir: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Written]:
    """Train and save one head per modality (plus the bridge+head ensemble for classifiers)."""
    from pathlib import Path

    from recsys.align import save_ensemble

    out_dir = Path(out_dir)
    written: list[Written] = []
    for modality in modalities:
        encoder = encoders[modality]

        def stage(done: int, total: int, _m: str = modality) -> None:
            if progress:
                progress(f"{_m} features", done, total)

        parts = [catalogue_pairs(catalogue, modality, encoder, text_encoder, cache_dir=cache_dir, progress=stage)]
        for extra_cat in extra_catalogues:
            if extra_cat.has_modality(modality).any():
                parts.append(catalogue_pairs(extra_cat, modality, encoder, text_encoder, cache_dir=cache_dir))
        pairs = Pairs.concat(parts)
        info = {
            "catalogue": _display_path(catalogue.root),
            "catalogue_pairs": len(parts[0]),
            "extra_pairs": {_display_path(c.root): len(p) for c, p in zip(extra_catalogues, parts[1:], strict=False)},
            "pairs_sha256": pairs_sha256(pairs),
        }
        result = train_on_pairs(
            pairs, modality=modality, source_encoder=encoder, text_encoder=text_encoder, config=config, extra=info
        )
        has_classes = bool(getattr(encoder, "class_names", None)) and hasattr(encoder, "predict_proba")
        if has_classes and bridge_weight > 0:
            head_path = result.aligner.save(out_dir / f"{prefix}-{modality}-projection")
            spec = save_ensemble(
                out_dir / f"{prefix}-{modality}",
                [("label-bridge", bridge_weight), (head_path.name, 1.0 - bridge_weight)],
                source_modality=modality,
                source_encoder_id=encoder.encoder_id,
                text_encoder_id=text_encoder.encoder_id,
                target_space=text_encoder.space,
            )
        else:
            spec = result.aligner.save(out_dir / f"{prefix}-{modality}")
        written.append(Written(modality, spec, result))
    return written


def _display_path(path: Any) -> str:
    """A path relative to the working directory when inside it (no machine-specific prefixes in heads)."""
    from pathlib import Path

    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name
