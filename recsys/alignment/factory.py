"""Entry point for cross-modal alignment: pick an aligner for an encoder by a short spec.

Specs: ``"label-bridge"`` (zero-shot through the classifier's class names), ``"native"``
(identity, for encoders already in the text encoder's space), a path to a saved head or
ensemble (``.json``; see :mod:`recsys.alignment.projection`), or ``"default"`` (native when the
spaces already agree, else :data:`DEFAULT_ALIGNERS` for the modality).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsys.alignment.base import Aligner, NativeAligner, aligner_inputs
from recsys.alignment.bridge import LabelBridge
from recsys.alignment.ensemble import EnsembleAligner
from recsys.alignment.projection import (
    FORMAT,
    ProjectionAligner,
    TrainConfig,
    check_encoder_ids,
    head_paths,
    load_projection,
    read_head_meta,
    train_projection,
)
from recsys.errors import RecsysError

__all__ = [
    "DEFAULT_ALIGNERS",
    "Aligner",
    "EnsembleAligner",
    "LabelBridge",
    "NativeAligner",
    "ProjectionAligner",
    "TrainConfig",
    "aligner_inputs",
    "build_aligner",
    "load_aligner",
    "save_ensemble",
    "train_projection",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ALIGNERS_DIR = REPO_ROOT / "data" / "aligners"

#: Shipped aligners for the demo catalogue and the default offline encoders (paths relative to the repo).
DEFAULT_ALIGNERS: dict[str, str] = {
    "image": "data/aligners/tuxpaint-image.json",
    "audio": "data/aligners/tuxpaint-audio.json",
}


#: Match-confidence calibrations of the shipped aligners (:mod:`recsys.alignment.confidence`), keyed
#: inside by encoder ids and each aligner's signature; an engine whose aligners are not in it shows none.
CONFIDENCE_FILE = ALIGNERS_DIR / "confidence.json"


def _resolve(spec: str, base: Path | None = None) -> Path:
    path = Path(spec)
    if path.is_absolute():
        return path
    for root in (base, Path.cwd(), REPO_ROOT):
        if root is not None and (root / path).exists():
            return root / path
    return (base or REPO_ROOT) / path


def native_aligner(source_encoder: Any, text_encoder: Any) -> NativeAligner:
    if getattr(source_encoder, "space", None) != text_encoder.space:
        raise RecsysError(
            f"The {source_encoder.modality} encoder {source_encoder.encoder_id} lives in space "
            f"{getattr(source_encoder, 'space', None)!r}, not the text encoder's {text_encoder.space!r}, so "
            "'native' alignment does not apply; use 'label-bridge' or a trained head (python -m recsys align)."
        )
    return NativeAligner(source_encoder.modality, source_encoder.encoder_id, text_encoder.space, source_encoder.dim)


def build_aligner(
    spec: str, *, source_encoder: Any, text_encoder: Any, catalogue: Any = None, cache_dir: Any = None
) -> Aligner:
    """Build the aligner named by ``spec`` for ``source_encoder`` into ``text_encoder``'s space.

    ``catalogue`` is accepted so callers can pass their context; saved heads carry everything
    they need, so none of the specs here trains on it. ``cache_dir`` is the feature cache's folder
    (None: the default), where a label bridge keeps its class texts' vectors.
    """
    del catalogue
    spec = spec.strip()
    if spec == "default":
        if getattr(source_encoder, "space", None) == text_encoder.space:
            return native_aligner(source_encoder, text_encoder)
        default = DEFAULT_ALIGNERS.get(source_encoder.modality)
        if default is None:
            raise RecsysError(f"No default aligner for modality {source_encoder.modality!r}.")
        return load_aligner(default, source_encoder=source_encoder, text_encoder=text_encoder, cache_dir=cache_dir)
    if spec == "native":
        return native_aligner(source_encoder, text_encoder)
    if spec == "label-bridge":
        return LabelBridge.from_encoders(source_encoder, text_encoder, cache_dir=cache_dir)
    return load_aligner(spec, source_encoder=source_encoder, text_encoder=text_encoder, cache_dir=cache_dir)


def load_aligner(path: str | Path, *, source_encoder: Any, text_encoder: Any, cache_dir: Any = None) -> Aligner:
    """Load a saved projection head or ensemble; refuses heads trained for other encoders.
    ``cache_dir``: as for :func:`build_aligner` (an ensemble's label-bridge members)."""
    json_path, _ = head_paths(_resolve(str(path)))
    meta = read_head_meta(json_path)
    check_encoder_ids(meta, json_path, source_encoder=source_encoder, text_encoder=text_encoder)
    if meta.get("kind") == "projection":
        return load_projection(json_path, source_encoder=source_encoder, text_encoder=text_encoder)
    if meta.get("kind") == "ensemble":
        members = [
            build_aligner(
                str(_resolve(m["spec"], json_path.parent))
                if m["spec"] not in ("label-bridge", "native")
                else m["spec"],
                source_encoder=source_encoder,
                text_encoder=text_encoder,
                cache_dir=cache_dir,
            )
            for m in meta["members"]
        ]
        return EnsembleAligner(members, [float(m["weight"]) for m in meta["members"]])
    raise RecsysError(
        f"{json_path} has unknown aligner kind {meta.get('kind')!r}; retrain with python -m recsys align."
    )


def save_ensemble(
    path: str | Path,
    members: list[tuple[str, float]],
    *,
    source_modality: str,
    source_encoder_id: str,
    text_encoder_id: str,
    target_space: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write an ensemble spec (member specs relative to its folder, with weights) atomically."""
    from recsys import atomic

    json_path, _ = head_paths(path)
    meta = {
        "format": FORMAT,
        "kind": "ensemble",
        "source_modality": source_modality,
        "source_encoder_id": source_encoder_id,
        "text_encoder_id": text_encoder_id,
        "target_space": target_space,
        "members": [{"spec": spec, "weight": float(w)} for spec, w in members],
        **(extra or {}),
    }
    atomic.write_text(json_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return json_path
