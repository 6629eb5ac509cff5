"""BPR matrix factorisation in torch: the collaborative-filtering reference our hybrids build on.

score(u, i) = p_u . q_i + b_i. The ranking equals that of sigmoid(p_u . q_i + b_i), the
probability BPR models, so the raw logit is returned. Trained with the BPR pairwise loss on
uniformly sampled negatives (Rendle et al. 2009) with Adam and L2 regularisation on the
embeddings touched by each mini-batch.
"""

from __future__ import annotations

import time
from typing import Any, Self

import numpy as np

from recsys.lab.base import TrainData
from recsys.lab.training import (
    TorchRecommender,
    bpr_loss,
    check_train_data,
    resolve_device,
    score_in_batches,
    seed_everything,
    train_pairwise,
)


class BPRMF(TorchRecommender):
    """Matrix factorisation trained with the BPR loss; cannot rank cold items (they score their bias ~0)."""

    name = "bpr-mf"

    def __init__(self, dim: int = 64, reg: float = 1e-3, init_std: float = 0.01, **train: Any) -> None:
        super().__init__(dim, init_std, **train)
        self.reg = reg

    def fit(self, data: TrainData) -> Self:
        import torch

        check_train_data(data.train, self.name)
        start = time.perf_counter()
        rng = seed_everything(data.seed)
        self._device = resolve_device(self.config.device)
        module = torch.nn.ModuleDict(
            {
                "user": torch.nn.Embedding(data.n_users, self.dim),
                "item": torch.nn.Embedding(data.n_items, self.dim),
                "bias": torch.nn.Embedding(data.n_items, 1),
            }
        )
        torch.nn.init.normal_(module["user"].weight, std=self.init_std)
        torch.nn.init.normal_(module["item"].weight, std=self.init_std)
        torch.nn.init.zeros_(module["bias"].weight)
        module = module.to(self._device)
        self._module = module
        warm = np.flatnonzero(data.warm_items)

        def batch_loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            pu, qi, qj = module["user"](u), module["item"](i), module["item"](j)
            bi, bj = module["bias"](i).squeeze(-1), module["bias"](j).squeeze(-1)
            diff = (pu * (qi - qj)).sum(-1) + bi - bj
            penalty = pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum() + bi.pow(2).sum() + bj.pow(2).sum()
            return bpr_loss(diff) + self.reg * penalty / u.shape[0]

        self.result = train_pairwise(
            module,
            batch_loss,
            data.train,
            data.valid,
            self._score_batch,
            self.config,
            rng,
            self._device,
            negative_pool=warm,
        )
        self.fit_seconds = time.perf_counter() - start
        return self

    def _score_batch(self, users: np.ndarray) -> np.ndarray:
        import torch

        module = self._module
        module.eval()
        with torch.no_grad():
            u = torch.as_tensor(users, dtype=torch.long, device=self._device)
            s = module["user"](u) @ module["item"].weight.T + module["bias"].weight.T
        return s.float().cpu().numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._module is None:
            raise RuntimeError("BPRMF.score called before fit().")
        return score_in_batches(self._score_batch, users, self._module["item"].weight.shape[0])

    def extra_info(self) -> dict[str, object]:
        return {"dim": self.dim, "reg": self.reg, **self.training_info()}
