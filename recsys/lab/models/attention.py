"""Attention fusion: learned softmax weights over modalities, per user and/or per item.

Each modality m is projected into a shared d-dim space, p_m(x_i). The fused item vector seen by
user u is sum_m alpha_{u,i,m} p_m(x_i), with alpha = softmax_m(a_u,m + a_i,m): a_u from the user
embedding (which modalities this user's taste follows), a_i from the item's own projections
(which modalities describe this item well). score = e_u . fused + content bias (+ a free item
bias for items seen in training). Items are represented by content only, so cold items are
ranked like warm ones; the learned weights are reported for the dashboard.
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
    minibatches,
    normalise_features,
    resolve_device,
    score_in_batches,
    seed_everything,
    train_pairwise,
)

MODES = ("user", "item", "both")


class AttentionFusion(TorchRecommender):
    """Content-only BPR model that fuses modalities with learned per-user / per-item attention."""

    name = "attention-fusion"

    def __init__(
        self,
        dim: int = 64,
        mode: str = "user",
        hidden: int = 0,
        reg: float = 1e-3,
        content_reg: float = 1e-4,
        bias_dropout: float = 0.5,
        init_std: float = 0.01,
        feature_dim: int | None = None,
        **train: Any,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"Unknown attention mode '{mode}'; choose one of {', '.join(MODES)}.")
        if not 0.0 <= bias_dropout < 1.0:
            raise InputError("bias_dropout must be in [0, 1).")
        super().__init__(dim, init_std, **train)
        self.mode = mode
        self.hidden = hidden
        self.reg = reg
        self.content_reg = content_reg
        self.bias_dropout = bias_dropout
        self.feature_dim = feature_dim
        self.name = f"attention-fusion-{mode}"
        self._features = None
        self._warm = None
        self._cache = None
        self.modalities: list[str] = []

    # --- parameters -------------------------------------------------------------------------

    def _build(self, n_users: int, n_items: int, dims: list[int]):
        import torch

        n_mod = len(dims)
        module = torch.nn.ModuleDict(
            {
                "user": torch.nn.Embedding(n_users, self.dim),
                "bias": torch.nn.Embedding(n_items, 1),
                "proj": torch.nn.ModuleList([make_projection(d, self.dim, self.hidden) for d in dims]),
                "content_bias": torch.nn.ModuleList([torch.nn.Linear(d, 1, bias=False) for d in dims]),
                # user -> one logit per modality; starts at zero, i.e. uniform weights
                "user_att": torch.nn.Linear(self.dim, n_mod),
                # item attention: a shared scorer of each projected modality vector + a per-modality offset
                "item_att": torch.nn.Linear(self.dim, 1, bias=False),
                "item_att_offset": torch.nn.Embedding(1, n_mod),
            }
        )
        torch.nn.init.normal_(module["user"].weight, std=self.init_std)
        for name in ("bias", "user_att", "item_att", "item_att_offset"):
            for p in module[name].parameters():
                torch.nn.init.zeros_(p)
        for lin in module["content_bias"]:
            torch.nn.init.zeros_(lin.weight)
        return module

    def _tables(self):
        """Projected items (M, n_items, dim), item attention logits (n_items, M), content bias (n_items,)."""
        import torch

        module = self._module
        proj = torch.stack([p(x) for p, x in zip(module["proj"], self._features, strict=True)])
        cbias = sum(lin(x).squeeze(-1) for lin, x in zip(module["content_bias"], self._features, strict=True))
        if self.mode == "user":
            item_logits = torch.zeros(proj.shape[1], proj.shape[0], device=proj.device)
        else:
            item_logits = module["item_att"](torch.tanh(proj)).squeeze(-1).T + module["item_att_offset"].weight
        return proj, item_logits, cbias

    def _user_logits(self, users):
        import torch

        module = self._module
        if self.mode == "item":
            return torch.zeros(users.shape[0], len(self._features), device=users.device)
        return module["user_att"](module["user"](users))

    # --- training ----------------------------------------------------------------------------

    def fit(self, data: TrainData) -> Self:
        import torch

        check_train_data(data.train, self.name)
        start = time.perf_counter()
        self.modalities, feats = normalise_features(data.item_features, data.n_items, self.feature_dim, data.seed)
        rng = seed_everything(data.seed)
        device = self._device = resolve_device(self.config.device)
        self._module = module = self._build(data.n_users, data.n_items, [f.shape[1] for f in feats]).to(device)
        self._features = [torch.from_numpy(f).to(device) for f in feats]
        warm_mask = data.warm_items
        self._warm = torch.from_numpy(warm_mask).to(device)
        self._cache = None
        gen = torch.Generator(device=device)
        gen.manual_seed(int(data.seed))

        def pair_scores(pu, a_u, items, tables):
            proj, item_logits, cbias = tables
            alpha = torch.softmax(a_u + item_logits[items], dim=-1)  # (B, M)
            fused = (alpha.T[:, :, None] * proj[:, items, :]).sum(0)  # (B, dim)
            free = module["bias"](items).squeeze(-1)
            if self.bias_dropout > 0:
                free = free * (torch.rand(items.shape[0], generator=gen, device=device) >= self.bias_dropout)
            return (pu * fused).sum(-1) + cbias[items] + free

        def batch_loss(u, i, j):
            tables = self._tables()
            pu, a_u = module["user"](u), self._user_logits(u)
            diff = pair_scores(pu, a_u, i, tables) - pair_scores(pu, a_u, j, tables)
            content_penalty = sum(p.pow(2).sum() for p in module["proj"].parameters())
            return bpr_loss(diff) + self.reg * pu.pow(2).sum() / u.shape[0] + self.content_reg * content_penalty

        self.result = train_pairwise(
            module,
            batch_loss,
            data.train,
            data.valid,
            lambda b: self._score_batch(b, fresh=True),
            self.config,
            rng,
            device,
            negative_pool=np.flatnonzero(warm_mask),
        )
        self._cache = None
        self.fit_seconds = time.perf_counter() - start
        return self

    # --- scoring -----------------------------------------------------------------------------

    def _item_side(self, fresh: bool):
        import torch

        if self._cache is None or fresh:
            self._module.eval()
            with torch.no_grad():
                proj, item_logits, cbias = self._tables()
                bias = cbias + self._module["bias"].weight.squeeze(-1) * self._warm.float()
            cache = (proj, item_logits, bias)
            if fresh:
                return cache
            self._cache = cache
        return self._cache

    def _alpha(self, u, item_logits):
        """Attention weights (B, n_items, M) for a batch of users, or (B, 1, M) when items do not matter."""
        import torch

        a_u = self._user_logits(u)
        if self.mode == "user":
            return torch.softmax(a_u, -1)[:, None, :]
        return torch.softmax(a_u[:, None, :] + item_logits[None, :, :], -1)

    def _score_batch(self, users: np.ndarray, fresh: bool = False) -> np.ndarray:
        import torch

        proj, item_logits, bias = self._item_side(fresh)
        self._module.eval()
        with torch.no_grad():
            u = torch.as_tensor(users, dtype=torch.long, device=self._device)
            pu = self._module["user"](u)
            alpha = self._alpha(u, item_logits)
            per_mod = torch.einsum("bd,mnd->bnm", pu, proj)  # (B, n_items, M) user . p_m(x_i)
            s = (alpha * per_mod).sum(-1) + bias[None, :]
        return s.float().cpu().numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._module is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit().")
        n_items, n_mod = self._features[0].shape[0], len(self._features)
        batch = max(1, min(2048, 20_000_000 // max(1, n_items * n_mod)))
        return score_in_batches(self._score_batch, users, n_items, batch_size=batch)

    # --- reporting ---------------------------------------------------------------------------

    def attention_weights(self) -> dict[str, np.ndarray]:
        """Mean attention per user (over all items) and per item (over all users), (n, M) each."""
        import torch

        n_users = self._module["user"].weight.shape[0]
        n_items = self._features[0].shape[0]
        n_mod = len(self._features)
        per_user = np.zeros((n_users, n_mod), dtype=np.float64)
        per_item = np.zeros((n_items, n_mod), dtype=np.float64)
        _, item_logits, _ = self._item_side(fresh=False)
        users = torch.arange(n_users, device=self._device)
        batch = max(1, 20_000_000 // max(1, n_items * n_mod))
        for sl in minibatches(n_users, batch):
            with torch.no_grad():
                alpha = self._alpha(users[sl], item_logits).cpu().numpy().astype(np.float64)
            per_user[sl] = alpha.mean(axis=1)
            per_item += np.broadcast_to(alpha, (alpha.shape[0], n_items, n_mod)).sum(axis=0)
        return {"per_user": per_user.astype(np.float32), "per_item": (per_item / n_users).astype(np.float32)}

    def extra_info(self) -> dict[str, object]:
        info: dict[str, object] = {
            "dim": self.dim,
            "mode": self.mode,
            "modalities": self.modalities,
            **self.training_info(),
        }
        if self._module is None:
            return info
        weights = self.attention_weights()
        info["attention_weights"] = {
            "modalities": list(self.modalities),
            "mode": self.mode,
            "per_user": weights["per_user"].round(5).tolist(),
            "per_item": weights["per_item"].round(5).tolist(),
            "mean": weights["per_user"].mean(axis=0).round(5).tolist(),
        }
        return info
