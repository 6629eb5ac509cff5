"""Learned projection heads: a frozen encoder's output -> the text space, trained contrastively.

As in LiT (Zhai et al. 2022) both encoders stay frozen; only a small head (linear or one hidden
layer) on the source side learns, with a symmetric InfoNCE loss and a learnable temperature
(CLIP). Items that share a description are all positives of each other, so duplicate texts in a
batch are not pushed apart. A head is saved as two small files: ``NAME.pt`` (a plain torch state
dict) and ``NAME.json`` (config: encoder ids, hyperparameters, a sha256 of the training data and
of the weights file), and reloads bit-identically.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys import atomic
from recsys.alignment.base import Aligner, array_digest
from recsys.errors import InputError, RecsysError
from recsys.vectors import unit_vectors

if TYPE_CHECKING:
    import torch

FORMAT = "recsys-aligner/1"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one head; stored in the head's JSON so a run can be reproduced."""

    hidden: int = 0  # 0: linear head; >0: one hidden layer of this width (GELU)
    epochs: int = 60
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    dropout: float = 0.1  # on the (frozen) input features
    init_temperature: float = 0.07
    center: bool = False  # subtract the training mean first (audio: raw cosines sit near 0.8)
    seed: int = 0


@dataclass
class TrainResult:
    aligner: ProjectionAligner
    losses: list[float] = field(default_factory=list)  # mean loss per epoch


def _torch() -> Any:
    import torch

    return torch


def _make_head(in_dim: int, out_dim: int, config: TrainConfig) -> torch.nn.Module:
    torch = _torch()
    nn = torch.nn

    class ProjectionHead(nn.Module):
        """(x - centre) -> renormalise -> dropout -> linear / MLP -> unit rows."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("center", torch.zeros(in_dim))
            self.drop = nn.Dropout(config.dropout)
            if config.hidden > 0:
                self.net = nn.Sequential(nn.Linear(in_dim, config.hidden), nn.GELU(), nn.Linear(config.hidden, out_dim))
            else:
                self.net = nn.Linear(in_dim, out_dim)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.normalize(x - self.center, dim=1)
            return torch.nn.functional.normalize(self.net(self.drop(x)), dim=1)

    return ProjectionHead()


def contrastive_loss(z: torch.Tensor, t: torch.Tensor, positives: torch.Tensor, logit_scale: torch.Tensor):
    """Symmetric InfoNCE with soft targets spread evenly over each row's positives."""
    torch = _torch()
    logits = logit_scale.clamp(max=math.log(100.0)).exp() * z @ t.T
    pos = positives.float()
    loss_a = -(pos / pos.sum(1, keepdim=True) * torch.log_softmax(logits, dim=1)).sum(1).mean()
    loss_b = -(pos.T / pos.T.sum(1, keepdim=True) * torch.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_a + loss_b) / 2


def data_sha256(source: np.ndarray, target: np.ndarray, groups: np.ndarray) -> str:
    """Identity of a training set: the exact feature bytes of both sides and the positive groups."""
    h = hashlib.sha256()
    for arr in (source, target, groups):
        arr = np.ascontiguousarray(arr)
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def groups_from_targets(target: np.ndarray) -> np.ndarray:
    """Pairs whose text embeddings are identical (same description) share a group id."""
    _, inverse = np.unique(np.ascontiguousarray(target, dtype=np.float32), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


class ProjectionAligner(Aligner):
    """A trained head applied on the CPU (bit-identical after reload)."""

    name = "projection"
    input_kind = "embedding"

    def __init__(self, head: torch.nn.Module, meta: dict[str, Any]) -> None:
        self.head = head.eval().cpu()
        self.meta = meta
        self.source_modality = meta["source_modality"]
        self.source_encoder_id = meta["source_encoder_id"]
        self.text_encoder_id = meta["text_encoder_id"]
        self.target_space = meta["target_space"]
        self.input_dim = int(meta["input_dim"])
        self.output_dim = int(meta["output_dim"])

    def _transform(self, features: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            return self.head(torch.from_numpy(np.ascontiguousarray(features))).numpy()

    def state_dict(self) -> dict[str, Any]:
        return {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()}

    def parameters_digest(self) -> str:
        state = self.head.state_dict()
        return array_digest(*(state[k].detach().cpu().float().numpy() for k in sorted(state)))

    def save(self, path: str | Path) -> Path:
        """Write ``NAME.pt`` then ``NAME.json`` (which pins the .pt's sha256), each atomically."""
        torch = _torch()
        json_path, pt_path = head_paths(path)
        with atomic.atomic_path(pt_path) as tmp:
            torch.save(self.state_dict(), tmp)
        meta = dict(self.meta, weights_file=pt_path.name, weights_sha256=_file_sha256(pt_path))
        atomic.write_json(json_path, meta)
        return json_path


def head_paths(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.json`` or ``x.pt`` -> (``x.json``, ``x.pt``)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".pt") else path
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".pt")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_projection(
    source: np.ndarray,
    target: np.ndarray,
    *,
    source_modality: str,
    source_encoder_id: str,
    text_encoder_id: str,
    target_space: str,
    groups: np.ndarray | None = None,
    config: TrainConfig = TrainConfig(),
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit a head mapping ``source`` rows onto their paired ``target`` (text) rows.

    ``groups`` marks pairs that are positives of each other (default: identical targets).
    Seeded and run on the CPU with torch's global RNG state restored afterwards.
    """
    torch = _torch()
    source = np.ascontiguousarray(source, dtype=np.float32)
    target = unit_vectors(target)
    if source.ndim != 2 or target.ndim != 2 or len(source) != len(target):
        raise InputError(
            f"Training pairs must be two matrices with one row per pair, got {source.shape} and {target.shape}."
        )
    if len(source) < 2:
        raise InputError("At least two training pairs are needed to train a projection head.")
    groups = groups_from_targets(target) if groups is None else np.asarray(groups, dtype=np.int64)
    n = len(source)
    from recsys.threads import use_threads

    # Heads are tiny: one thread is as fast alone and far faster on a busy machine (no spin-waiting).
    with use_threads("train", threads=1):
        losses, head = _fit(torch, source, target, groups, config)
    meta = {
        "format": FORMAT,
        "kind": "projection",
        "source_modality": source_modality,
        "input_kind": "embedding",
        "source_encoder_id": source_encoder_id,
        "text_encoder_id": text_encoder_id,
        "target_space": target_space,
        "input_dim": int(source.shape[1]),
        "output_dim": int(target.shape[1]),
        "config": asdict(config),
        "training": {
            "n_pairs": int(n),
            "n_groups": len(np.unique(groups)),
            "data_sha256": data_sha256(source, target, groups),
            "first_epoch_loss": losses[0],
            "final_loss": losses[-1],
            "temperature": float(torch.exp(-head.logit_scale.detach())),
            **(extra or {}),
        },
    }
    return TrainResult(ProjectionAligner(head, meta), losses)


def _fit(torch: Any, source: np.ndarray, target: np.ndarray, groups: np.ndarray, config: TrainConfig):
    """The seeded training loop; torch's global RNG state is restored afterwards."""
    n = len(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = _make_head(source.shape[1], target.shape[1], config)
        if config.center:
            head.center.copy_(torch.from_numpy(source.mean(axis=0)))
        x_all, t_all, g_all = torch.from_numpy(source), torch.from_numpy(target), torch.from_numpy(groups)
        opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        gen = torch.Generator().manual_seed(config.seed)
        batch = n if config.batch_size <= 0 else min(config.batch_size, n)
        losses: list[float] = []
        head.train()
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            total, count = 0.0, 0
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                if len(idx) < 2:
                    continue
                g = g_all[idx]
                loss = contrastive_loss(head(x_all[idx]), t_all[idx], g[:, None] == g[None, :], head.logit_scale)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            losses.append(total / count)
        head.eval()
    return losses, head


def read_head_meta(path: str | Path) -> dict[str, Any]:
    json_path, _ = head_paths(path)
    if not json_path.is_file():
        raise RecsysError(f"No aligner head at {json_path}. Train one with: python -m recsys align --catalogue DIR")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecsysError(
            f"The aligner file {json_path} is unreadable ({exc}); retrain it with python -m recsys align."
        ) from exc
    if not isinstance(meta, dict):
        raise RecsysError(
            f"The aligner file {json_path} holds a JSON {type(meta).__name__}, not an object; "
            "retrain it with python -m recsys align."
        )
    if meta.get("format") != FORMAT:
        raise RecsysError(f"{json_path} is not a recsys aligner ({FORMAT}); retrain it with python -m recsys align.")
    return meta


def check_encoder_ids(meta: dict[str, Any], where: Path, *, source_encoder: Any, text_encoder: Any) -> None:
    """A head is only meaningful for the exact encoders it was trained on."""
    for role, expected, enc in (
        ("source", meta.get("source_encoder_id"), source_encoder),
        ("text", meta.get("text_encoder_id"), text_encoder),
    ):
        if enc is not None and enc.encoder_id != expected:
            raise RecsysError(
                f"The aligner {where} was trained for {role} encoder {expected!r}, but {enc.encoder_id!r} is in use. "
                "Retrain it for the current encoders with: python -m recsys align --catalogue DIR"
            )


def load_projection(path: str | Path, *, source_encoder: Any, text_encoder: Any) -> ProjectionAligner:
    """Load a head saved by :meth:`ProjectionAligner.save`, checking encoder ids and file integrity."""
    torch = _torch()
    meta = read_head_meta(path)
    json_path, _ = head_paths(path)
    check_encoder_ids(meta, json_path, source_encoder=source_encoder, text_encoder=text_encoder)
    pt_path = json_path.with_name(meta.get("weights_file", head_paths(path)[1].name))
    if not pt_path.is_file() or _file_sha256(pt_path) != meta.get("weights_sha256"):
        raise RecsysError(
            f"The weights {pt_path} are missing or do not match {json_path.name}; retrain with python -m recsys align."
        )
    config = TrainConfig(**meta["config"])
    head = _make_head(int(meta["input_dim"]), int(meta["output_dim"]), config)
    head.load_state_dict(torch.load(pt_path, map_location="cpu", weights_only=True))
    return ProjectionAligner(head, meta)
