"""LightGCN (He et al., SIGIR'20): collaborative filtering by linear propagation on the user-item graph.

Users and items are nodes of the bipartite interaction graph with adjacency
``A = [[0, R], [R^T, 0]]``. Each layer multiplies the embeddings by the symmetric-normalised
``D^-1/2 A D^-1/2`` (no weights, no non-linearity: the paper shows both hurt CF), and the final
embedding of a node is the mean of its layer-0..K embeddings; ``score(u, i) = e_u . e_i``.
Trained with the BPR loss and L2 on the layer-0 (ego) embeddings of each mini-batch, through
the lab's shared training loop (sampling, early stopping on validation, thread policy).

Cold items have no edges: their final embedding is their never-trained initial vector divided
by K+1, so LightGCN cannot rank them (their scores are small noise around 0).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from recsys.lab.base import TrainData
from recsys.lab.propagation import SparseGraph, normalised_adjacency, propagate
from recsys.lab.training import (
    TorchRecommender,
    bpr_loss,
    check_train_data,
    resolve_device,
    score_in_batches,
    seed_everything,
    train_pairwise,
)

if TYPE_CHECKING:
    import torch


class LightGCN(TorchRecommender):
    """LightGCN with ``layers`` propagation layers; ``reg`` weighs the L2 penalty on the batch's ego embeddings.

    Defaults: the paper's dim 64, 3 layers, batch 2048; ``lr`` 0.01 and ``reg`` 1e-3 were chosen on
    lfm2k *validation* Recall@20 (given split) from lr {0.002, 0.005, 0.01, 0.02} at reg 1e-4 and
    reg {1e-4, 1e-3, 1e-2} at lr 0.01 (0.413, 0.409, 0.419, 0.414; 0.419, 0.434, 0.355).
    """

    name = "lightgcn"

    def __init__(
        self, dim: int = 64, layers: int = 3, reg: float = 1e-3, init_std: float = 0.1, **train: Any
    ) -> None:
        train = {"batch_size": 2048, "lr": 0.01, **train}
        super().__init__(dim, init_std, **train)
        self.layers = layers
        self.reg = reg
        self._final: tuple[torch.Tensor, torch.Tensor] | None = None

    def fit(self, data: TrainData) -> Self:
        import torch

        check_train_data(data.train, self.name)
        start = time.perf_counter()
        rng = seed_everything(data.seed)
        self._device = resolve_device(self.config.device)
        self._n_users = data.n_users
        self._adj = SparseGraph(normalised_adjacency(data.train), self._device)
        module = torch.nn.ModuleDict(
            {"user": torch.nn.Embedding(data.n_users, self.dim), "item": torch.nn.Embedding(data.n_items, self.dim)}
        )
        torch.nn.init.normal_(module["user"].weight, std=self.init_std)
        torch.nn.init.normal_(module["item"].weight, std=self.init_std)
        module = module.to(self._device)
        self._module = module
        self._final = None

        def batch_loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            users, items = self._embeddings()
            diff = (users[u] * (items[i] - items[j])).sum(-1)
            eu, ei, ej = module["user"](u), module["item"](i), module["item"](j)
            penalty = 0.5 * (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum())
            return bpr_loss(diff) + self.reg * penalty / u.shape[0]

        warm = np.flatnonzero(data.warm_items)
        args = (data.train, data.valid, self._score_batch, self.config, rng, self._device)
        self.result = train_pairwise(module, batch_loss, *args, negative_pool=warm)
        with torch.no_grad():
            self._final = self._embeddings()
        self.fit_seconds = time.perf_counter() - start
        return self

    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated (users, items) embeddings from the current ego embeddings."""
        import torch

        ego = torch.cat([self._module["user"].weight, self._module["item"].weight])
        out = propagate(self._adj, ego, self.layers)
        return out[: self._n_users], out[self._n_users :]

    def _score_batch(self, users: np.ndarray) -> np.ndarray:
        import torch

        self._module.eval()
        with torch.no_grad():
            user_emb, item_emb = self._final if self._final is not None else self._embeddings()
            u = torch.as_tensor(users, dtype=torch.long, device=self._device)
            s = user_emb[u] @ item_emb.T
        return s.float().cpu().numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._final is None:
            raise RuntimeError("LightGCN.score called before fit().")
        return score_in_batches(self._score_batch, users, self._final[1].shape[0])

    def extra_info(self) -> dict[str, object]:
        return {"dim": self.dim, "layers": self.layers, "reg": self.reg, **self.training_info()}
