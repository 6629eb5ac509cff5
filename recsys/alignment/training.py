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
from recsys.alignment.sources import item_text
from recsys.errors import CatalogueError, InputError

#: Per-modality head defaults, chosen on the grouped 5-fold benchmark (benchmarks/alignment.py).
DEFAULT_CONFIGS: dict[str, TrainConfig] = {
    "image": TrainConfig(),
    "audio": TrainConfig(center=True),
}


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


def encode_texts(text_encoder: Any, texts: list[str], batch_size: int = 64, *, cache_dir: Any = None) -> np.ndarray:
    """Embed texts once per distinct string (descriptions repeat across items).

    With ``cache_dir`` the vectors are read from and added to the text encoder's feature cache, keyed
    like item texts (sha256 of the exact string), so tens of thousands of titles are encoded once.
    """
    if not texts:
        return np.zeros((0, int(getattr(text_encoder, "dim", 0) or 0)), dtype=np.float32)
    unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    if cache_dir is None:
        emb = np.asarray(text_encoder.encode(unique.tolist(), batch_size=batch_size), dtype=np.float32)
    else:
        emb = _cached_encode(text_encoder, unique.tolist(), batch_size, cache_dir)
    return emb[inverse.reshape(-1)]


def _cached_encode(text_encoder: Any, texts: list[str], batch_size: int, cache_dir: Any) -> np.ndarray:
    from recsys.encoding import feature_id
    from recsys.encoding.cache import FeatureStore

    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    store = FeatureStore(cache_dir, feature_id(text_encoder, "embedding"), getattr(text_encoder, "dim", None))
    feats = store.load(keys)
    todo = np.flatnonzero(~feats.present)
    if len(todo) == 0:
        return feats.vectors
    new = np.asarray(text_encoder.encode([texts[i] for i in todo], batch_size=batch_size), dtype=np.float32)
    store.append([keys[i] for i in todo], new)
    out = feats.vectors if feats.vectors.shape[1] == new.shape[1] else np.zeros((len(texts), new.shape[1]), np.float32)
    out[todo] = new
    return out


def catalogue_pairs(
    catalogue: Any,
    modality: str,
    source_encoder: Any,
    text_encoder: Any,
    *,
    cache_dir: Any = None,
    progress: Callable[[int, int], None] | None = None,
    text_field: str = "description",
    min_pairs: int = 2,
) -> Pairs:
    """Every item with both ``modality`` media and a text (:func:`item_text`), as a training pair."""
    from recsys.encoding import catalogue_features

    feats = catalogue_features(catalogue, modality, source_encoder, cache_dir=cache_dir, progress=progress)["embedding"]
    texts = [item_text(item, text_field) for item in catalogue.items]
    rows = np.flatnonzero(feats.present & np.array([bool(t) for t in texts], dtype=bool))
    if len(rows) < min_pairs:
        raise CatalogueError(
            f"The catalogue at {catalogue.root} has {len(rows)} items with both {modality} and a {text_field}; "
            f"a projection head needs at least {min_pairs} such pairs."
        )
    kept = [texts[i] for i in rows]
    return Pairs(feats.vectors[rows], encode_texts(text_encoder, kept, cache_dir=cache_dir), kept, rows)


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


#: Weight of the label bridge in the shipped ensembles (the rest goes to the learned head), per modality.
#: Image: chosen on the grouped 5-fold benchmark. Audio (the YAMNet bridge beside the aisfx head): the
#: weight most outer folds of ``benchmarks/alignment.py --modalities audio --extra-pairs data/sounds``
#: chose on inner splits of their training items (its "ensemble, w_bridge tuned" row: 0.4 in 2 of 5
#: folds, 0.3 / 0.5 / 0.6 in one each).
DEFAULT_BRIDGE_WEIGHTS: dict[str, float] = {"image": 0.5, "audio": 0.4}


@dataclass
class Written:
    modality: str
    path: Any  # the spec to configure (ensemble or head .json)
    result: TrainResult


def train_catalogue_aligners(
    sources: Sequence[Any],
    modalities: Sequence[str],
    *,
    encoders: dict[str, Any],
    text_encoder: Any,
    out_dir: Any,
    prefix: str,
    config: TrainConfig | None = None,
    bridge_weight: float | None = None,
    text_field: str = "description",
    cache_dir: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    repeats: dict[str, int] | None = None,
) -> list[Written]:
    """Train and save one head per modality on the union of ``sources`` (:class:`~recsys.alignment.sources.Source`),
    plus the bridge+head ensemble for classifiers. Sources without the modality add nothing; a
    modality that no source has two pairs of is an :class:`InputError`. ``repeats`` (source name ->
    N) weighs a source's pairs N times against the others (its pairs repeated N times), e.g. a small
    catalogue beside many extra pairs. ``bridge_weight`` None: :data:`DEFAULT_BRIDGE_WEIGHTS`."""
    from pathlib import Path

    from recsys.alignment.factory import save_ensemble

    out_dir = Path(out_dir)
    written: list[Written] = []
    for modality in modalities:
        encoder = encoders[modality]

        def stage(done: int, total: int, _m: str = modality) -> None:
            if progress:
                progress(f"{_m} features", done, total)

        parts: dict[str, Pairs] = {}
        for source in sources:
            if source.catalogue.has_modality(modality).any():
                parts[source.name] = catalogue_pairs(
                    source.catalogue,
                    modality,
                    encoder,
                    text_encoder,
                    cache_dir=cache_dir,
                    progress=stage,
                    text_field=text_field,
                    min_pairs=0,
                )
        repeat = {name: max(1, int((repeats or {}).get(name, 1))) for name in parts}
        weighed = [p.subset(np.tile(np.arange(len(p)), repeat[n])) for n, p in parts.items()]
        pairs = Pairs.concat(weighed) if weighed else None
        if pairs is None or len(pairs) < 2:
            raise InputError(
                f"The sources {', '.join(s.name for s in sources)} hold {0 if pairs is None else len(pairs)} "
                f"items with both {modality} and a {text_field}; a projection head needs at least two."
            )
        info = {
            "sources": {
                name: {
                    "catalogue": _display_path(src.catalogue.root),
                    "pairs": len(parts[name]),
                    **({"repeat": repeat[name]} if repeat[name] > 1 else {}),
                }
                for name, src in ((s.name, s) for s in sources)
                if name in parts
            },
            "text_field": text_field,
            "pairs_sha256": pairs_sha256(pairs),
        }
        result = train_on_pairs(
            pairs, modality=modality, source_encoder=encoder, text_encoder=text_encoder, config=config, extra=info
        )
        has_classes = bool(getattr(encoder, "class_names", None)) and hasattr(encoder, "predict_proba")
        weight = DEFAULT_BRIDGE_WEIGHTS.get(modality, 0.5) if bridge_weight is None else bridge_weight
        if has_classes and weight > 0:
            head_path = result.aligner.save(out_dir / f"{prefix}-{modality}-projection")
            spec = save_ensemble(
                out_dir / f"{prefix}-{modality}",
                [("label-bridge", weight), (head_path.name, 1.0 - weight)],
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
