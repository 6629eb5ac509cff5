"""open_clip image and text towers sharing one loaded model (natively aligned: same ``space``).

Names: ``open_clip:<model>:<pretrained>`` (image) and ``open_clip-text:<model>:<pretrained>`` (text),
``<pretrained>`` an open_clip tag (downloaded from the hub, needs internet once) or a checkpoint
file; ``open_clip:hf-hub:<org/repo>`` and ``open_clip:local-dir:<folder>`` use open_clip's schemas.
Loading uses ``require_pretrained=True``: open_clip never silently falls back to random weights.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoders.base import Encoder, StackPreprocessor, file_sha, folder_sha
from recsys.errors import InputError, MissingWeightsError

_SCHEMAS = ("hf-hub:", "local-dir:")


@dataclass(frozen=True)
class LoadedOpenClip:
    model: Any
    preprocess: Any
    tokenizer: Any
    space: str
    weights_key: str  # tag or hub id, or short sha of the checkpoint file / local folder
    label: str  # model name as shown in encoder ids
    dim: int
    device: str


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"<model>:<pretrained>"`` -> (model, pretrained); schema names keep their ``:`` and have no tag."""
    if spec.startswith(_SCHEMAS):
        return spec, None
    model, _, pretrained = spec.partition(":")
    if not model or not pretrained:
        raise InputError(
            f"open_clip encoders are named open_clip:<model>:<pretrained tag or checkpoint path>, "
            f"got {spec!r} (e.g. open_clip:ViT-B-32:laion2b_s34b_b79k)."
        )
    return model, pretrained


@functools.lru_cache(maxsize=8)
def load_open_clip(spec: str, device: str) -> LoadedOpenClip:
    """Load model, image transform and tokenizer once per (spec, device); both towers share them."""
    import open_clip
    import torch

    model_name, pretrained = parse_spec(spec)
    label, weights_key = model_name, pretrained or model_name
    if model_name.startswith("local-dir:"):
        folder = Path(model_name.removeprefix("local-dir:")).expanduser()
        if not folder.is_dir():
            raise MissingWeightsError(
                f"No open_clip model folder at {folder}; it needs open_clip_config.json and the weights."
            )
        label, weights_key = f"local-dir:{folder.name}", folder_sha(folder)
    elif model_name.startswith("hf-hub:"):
        label = weights_key = model_name
    if pretrained is not None:
        known_tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in known_tags:
            path = Path(pretrained).expanduser()
            if not path.is_file():
                if open_clip.get_model_config(model_name) is None:
                    raise InputError(
                        f"Unknown open_clip model {model_name!r}; open_clip.list_models() lists the valid ones."
                    )
                tags = ", ".join(known_tags) or "none"
                raise MissingWeightsError(
                    f"No open_clip checkpoint at {pretrained!r}, and it is not a pretrained tag of "
                    f"{model_name} (tags: {tags}). Put the checkpoint file there or use one of the tags "
                    "(needs internet once)."
                )
            pretrained = str(path)
            weights_key = file_sha(path)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=device, require_pretrained=True
        )
        tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as exc:  # download failures, missing local-dir weights, corrupt checkpoints
        raise MissingWeightsError(
            f"Could not load open_clip weights {spec!r} ({type(exc).__name__}: {exc}). A pretrained "
            f"tag needs internet access once (then it is cached); otherwise give a local checkpoint file."
        ) from exc
    model.eval()
    with torch.inference_mode():
        dim = int(model.encode_text(tokenizer([""]).to(device)).shape[-1])
    return LoadedOpenClip(model, preprocess, tokenizer, f"open_clip:{spec}", weights_key, label, dim, device)


class _OpenClipTower(Encoder):
    def __init__(self, loaded: LoadedOpenClip) -> None:
        self.loaded = loaded
        self.device = loaded.device
        self.dim = loaded.dim
        self.space = loaded.space
        self.encoder_id = f"{self.modality}/open_clip:{loaded.label}@{loaded.weights_key}"


class OpenClipTransform(StackPreprocessor):
    """open_clip's own image transform (resize, crop, normalise) as a float32 ``(3, H, W)`` array."""

    def __init__(self, transform: Any, image_size: int | None = None) -> None:
        self.transform = transform
        # twice the network's input, as for EfficientNet-Lite0 (recsys.encoders.efficientnet.SquareResize)
        self.min_image_side = 2 * image_size if image_size else None

    def __call__(self, image: Any) -> np.ndarray:
        return self.transform(image.convert("RGB")).numpy()


class OpenClipImageEncoder(_OpenClipTower):
    modality = "image"

    def __init__(self, loaded: LoadedOpenClip) -> None:
        super().__init__(loaded)
        size = getattr(loaded.model.visual, "image_size", None)
        side = max(size) if isinstance(size, tuple | list) else size
        self.preprocessor = OpenClipTransform(loaded.preprocess, side if isinstance(side, int) else None)

    def _encode_batch(self, batch: Any) -> np.ndarray:
        import torch

        pixels = torch.as_tensor(batch).to(self.device, non_blocking=True)
        with torch.inference_mode():
            return self.loaded.model.encode_image(pixels).float().cpu().numpy()


class OpenClipTextEncoder(_OpenClipTower):
    modality = "text"

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        import torch

        tokens = self.loaded.tokenizer(batch).to(self.device)
        with torch.inference_mode():
            return self.loaded.model.encode_text(tokens).float().cpu().numpy()
