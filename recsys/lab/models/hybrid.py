"""VBPR-style hybrid: a free item embedding plus a projection of the item's multimodal features.

score(u, i) = p_u . (q_i + sum_m W_m x_i^m) + b_i + w . x_i, ranked like sigmoid of the same.
The content part (projection and content bias) is shared by every item, so it also scores
items that never occur in training (cold-start items), whose free embedding and free bias are
zeroed at scoring time. To make the content part carry the signal on its own, the free
embedding of a random fraction of items is dropped during training (as if they were cold),
and feature dropout keeps it from relying on a single modality.
"""

from __future__ import annotations

import time
from typing import Any, Self

import numpy as np

from recsys.errors import InputError
from recsys.lab.base import TrainData
from recsys.lab.training import (
    TorchRecommender,
    bpr_loss,
    check_train_data,
    make_projection,
    normalise_features,
    resolve_device,
    score_in_batches,
    seed_everything,
    train_pairwise,
)

LOSSES = ("bpr", "bce")
STOP_ON = ("full", "content", "both")


class HybridMF(TorchRecommender):
    """Free + content item vectors (VBPR-style), trained with BPR or sampled-negative BCE."""

    name = "hybrid-mf"

    def __init__(
        self,
        dim: int = 64,
        loss: str = "bpr",
        hidden: int = 0,
        reg: float = 1e-3,
        content_reg: float = 1e-4,
        free_dropout: float = 0.5,
        feature_dropout: float = 0.0,
        init_std: float = 0.01,
        feature_dim: int | None = None,
        stop_on: str = "both",
        **train: Any,
    ) -> None:
        if loss not in LOSSES:
            raise InputError(f"Unknown loss '{loss}' for {self.name}; choose one of {', '.join(LOSSES)}.")
        if stop_on not in STOP_ON:
            raise InputError(f"Unknown stop_on '{stop_on}'; choose one of {', '.join(STOP_ON)}.")
        if not 0.0 <= free_dropout < 1.0 or not 0.0 <= feature_dropout < 1.0:
            raise InputError("Dropout rates must be in [0, 1).")
        super().__init__(dim, init_std, **train)
        self.loss = loss
        self.hidden = hidden
        self.reg = reg
        self.content_reg = content_reg
        self.free_dropout = free_dropout
        self.feature_dropout = feature_dropout
        self.feature_dim = feature_dim
        self.stop_on = stop_on
        self.name = f"hybrid-mf-{loss}"
        self._features = None
        self._warm = None
        self.modalities: list[str] = []

    def fit(self, data: TrainData) -> Self:
        import torch
        import torch.nn.functional as F

        check_train_data(data.train, self.name)
        start = time.perf_counter()
        self.modalities, feats = normalise_features(data.item_features, data.n_items, self.feature_dim, data.seed)
        rng = seed_everything(data.seed)
        device = self._device = resolve_device(self.config.device)
        module = torch.nn.ModuleDict(
            {
                "user": torch.nn.Embedding(data.n_users, self.dim),
                "item": torch.nn.Embedding(data.n_items, self.dim),
                "bias": torch.nn.Embedding(data.n_items, 1),
                "proj": torch.nn.ModuleList([make_projection(f.shape[1], self.dim, self.hidden) for f in feats]),
                "content_bias": torch.nn.ModuleList([torch.nn.Linear(f.shape[1], 1, bias=False) for f in feats]),
            }
        )
        for name in ("user", "item"):
            torch.nn.init.normal_(module[name].weight, std=self.init_std)
        torch.nn.init.zeros_(module["bias"].weight)
        for lin in module["content_bias"]:
            torch.nn.init.zeros_(lin.weight)
        module = module.to(device)
        self._module = module
        self._features = [torch.from_numpy(f).to(device) for f in feats]
        warm_mask = data.warm_items
        self._warm = torch.from_numpy(warm_mask).to(device)
        # Dropout masks are drawn from a seeded torch generator so fits are reproducible.
        gen = torch.Generator(device=device)
        gen.manual_seed(int(data.seed))

        def item_repr(
            items: torch.Tensor, tables: list[tuple[torch.Tensor, torch.Tensor]]
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """Item vector and bias for a training batch, with free-part and per-modality dropout.

            Dropping a modality's projected row equals dropping its input row (no bias in the map).
            """
            content = torch.zeros(items.shape[0], self.dim, device=device)
            cbias = torch.zeros(items.shape[0], device=device)
            for vec_table, bias_table in tables:
                vec, b = F.embedding(items, vec_table), F.embedding(items, bias_table[:, None]).squeeze(-1)
                if self.feature_dropout > 0:
                    keep = (torch.rand(items.shape[0], generator=gen, device=device) >= self.feature_dropout).float()
                    keep = keep / (1.0 - self.feature_dropout)
                    vec, b = vec * keep[:, None], b * keep
                content, cbias = content + vec, cbias + b
            free, fbias = module["item"](items), module["bias"](items).squeeze(-1)
            if self.free_dropout > 0:
                keep = (torch.rand(items.shape[0], generator=gen, device=device) >= self.free_dropout).float()
                free, fbias = free * keep[:, None], fbias * keep
            return free + content, fbias + cbias, free

        def batch_loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            # Projecting the whole (small) feature tables once per step is cheaper than gathering
            # wide feature rows for every sampled item.
            tables = self._content_tables()
            pu = module["user"](u)
            vi, bi, fi = item_repr(i, tables)
            vj, bj, fj = item_repr(j, tables)
            xi, xj = (pu * vi).sum(-1) + bi, (pu * vj).sum(-1) + bj
            if self.loss == "bpr":
                main = bpr_loss(xi - xj)
            else:
                logits = torch.cat([xi, xj])
                labels = torch.cat([torch.ones_like(xi), torch.zeros_like(xj)])
                main = F.binary_cross_entropy_with_logits(logits, labels)
            penalty = pu.pow(2).sum() + fi.pow(2).sum() + fj.pow(2).sum()
            content_penalty = sum(p.pow(2).sum() for p in module["proj"].parameters())
            return main + self.reg * penalty / u.shape[0] + self.content_reg * content_penalty

        # Early stopping watches the full model, the content part alone (a proxy for cold items:
        # validation interactions ranked without free embeddings) or the mean of both.
        full = self._score_batch
        content_only = lambda users: self._score_batch(users, content_only=True)  # noqa: E731
        stop_fns = {"full": [full], "content": [content_only], "both": [full, content_only]}[self.stop_on]
        self.result = train_pairwise(
            module,
            batch_loss,
            data.train,
            data.valid,
            stop_fns,
            self.config,
            rng,
            device,
            negative_pool=np.flatnonzero(warm_mask),
        )
        self._cache_items()
        self.fit_seconds = time.perf_counter() - start
        return self

    def _content_tables(self):
        """Per modality: (n_items, dim) projected vectors and (n_items,) content biases."""
        module = self._module
        return [
            (proj(x), lin(x).squeeze(-1))
            for proj, lin, x in zip(module["proj"], module["content_bias"], self._features, strict=True)
        ]

    def _item_table(self, content_only: bool = False):
        """Full item vectors and biases for scoring: cold items keep only their content part."""
        module = self._module
        tables = self._content_tables()
        content = sum(t[0] for t in tables)
        cbias = sum(t[1] for t in tables)
        warm = self._warm.float() * (0.0 if content_only else 1.0)
        vectors = content + module["item"].weight * warm[:, None]
        bias = cbias + module["bias"].weight.squeeze(-1) * warm
        return vectors, bias

    def _cache_items(self) -> None:
        import torch

        self._module.eval()
        with torch.no_grad():
            self._items = self._item_table()

    def _score_batch(self, users: np.ndarray, cached: bool = False, content_only: bool = False) -> np.ndarray:
        import torch

        module = self._module
        module.eval()
        with torch.no_grad():
            vectors, bias = self._items if cached else self._item_table(content_only)
            u = torch.as_tensor(users, dtype=torch.long, device=self._device)
            s = module["user"](u) @ vectors.T + bias[None, :]
        return s.float().cpu().numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._module is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit().")
        return score_in_batches(lambda b: self._score_batch(b, cached=True), users, self._warm.shape[0])

    def extra_info(self) -> dict[str, object]:
        info: dict[str, object] = {
            "dim": self.dim,
            "loss": self.loss,
            "modalities": self.modalities,
            "free_dropout": self.free_dropout,
            "feature_dropout": self.feature_dropout,
            "stop_on": self.stop_on,
            **self.training_info(),
        }
        return info
