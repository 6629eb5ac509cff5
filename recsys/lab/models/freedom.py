"""FREEDOM-style multimodal graph recommender (Zhou & Shen, "A Tale of Two Graphs: Freezing and
Denoising Graph Structures for Multimodal Recommendation", MM'23), written from the paper.

Two graphs, as in the paper:

* a **frozen item-item graph** built once from content: per modality, each item's top-``knn_k``
  cosine neighbours (itself included), row-normalised so an item's content view is the mean of
  its neighbours; the modalities' graphs are summed with weights that add up to 1. Freezing it
  (LATTICE relearns it every step) is what makes FREEDOM cheap and, per the paper, no worse;
* the **user-item graph**, denoised during training by *degree-sensitive edge pruning*: every
  epoch keeps a ``1 - edge_dropout`` share of the interactions, sampled without replacement with
  probability proportional to ``1 / sqrt(d_u d_i)``, so edges between very popular nodes (which
  carry the least information and the most noise) are dropped most; the kept edges are
  re-normalised. Validation and test use the full graph.

Item vectors are LightGCN propagation over the user-item graph (``ui_layers``) plus
``mm_layers`` convolutions of the free item embeddings over the item-item graph; users are the
LightGCN user vectors. Loss: BPR on the dot product, plus ``feature_weight`` times a BPR loss of
the users against each modality's linearly projected features (the paper's auxiliary term, which
pulls user vectors towards content), plus an L2 penalty ``reg`` on the batch's free embeddings.

**Cold items** (no training interaction) are isolated in the user-item graph, so LightGCN gives
them only their own, barely trained free vector; they are scored by their item-item part alone:
the mean of their content neighbours' free embeddings, which are trained (warm neighbours through
their interactions, every item through appearing in warm items' neighbourhoods). That is how
FREEDOM ranks items nobody has interacted with from content, under the ``cold-items`` protocol.

Defaults were chosen on lfm2k *validation* Recall@20 (given split, seed 0; never test figures)
with ``benchmarks/lab_grid.py``; the grid is recorded in :class:`Freedom`'s docstring.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp

from recsys.errors import InputError
from recsys.lab.base import TrainData
from recsys.lab.neighbours import nearest_items
from recsys.lab.propagation import SparseGraph, normalised_adjacency, propagate
from recsys.lab.training import (
    TorchRecommender,
    bpr_loss,
    check_train_data,
    normalise_features,
    resolve_device,
    score_in_batches,
    seed_everything,
    train_pairwise,
)

if TYPE_CHECKING:
    import torch


def knn_graph(features: np.ndarray, k: int, exact: bool | None = None) -> sp.csr_matrix:
    """Row-normalised top-``k`` cosine graph of unit-norm rows: each row its k nearest items, itself
    included, weight 1/k (:func:`~recsys.lab.neighbours.nearest_items`, exact up to 50k items)."""
    n = features.shape[0]
    near = nearest_items(features, k, exact)
    k = near.shape[1]
    rows = np.repeat(np.arange(n), k)
    return sp.csr_matrix((np.full(rows.size, 1.0 / k, dtype=np.float32), (rows, near.ravel())), shape=(n, n))


def item_graph(features: list[np.ndarray], weights: list[float], k: int) -> sp.csr_matrix:
    """The frozen item-item graph: the modalities' kNN graphs weighted by ``weights`` (summing to 1)."""
    out = sp.csr_matrix((features[0].shape[0],) * 2, dtype=np.float32)
    for x, w in zip(features, weights, strict=True):
        if w > 0:
            out = out + np.float32(w) * knn_graph(x, k)
    return out.tocsr()


def prune_edges(train: sp.csr_matrix, keep: float, rng: np.random.Generator) -> sp.csr_matrix:
    """Keep a ``keep`` share of the interactions, sampled without replacement with probability
    proportional to ``1 / sqrt(d_u d_i)`` (Efraimidis-Spirakis keys ``log(U) / w``, top-n)."""
    coo = train.tocoo()
    n_keep = max(1, round(keep * coo.nnz))
    if n_keep >= coo.nnz:
        return train
    d_user = np.diff(train.indptr).astype(np.float64)
    d_item = np.bincount(coo.col, minlength=train.shape[1]).astype(np.float64)
    weight = 1.0 / np.sqrt(d_user[coo.row] * d_item[coo.col])
    keys = np.log(rng.random(coo.nnz)) / weight
    chosen = np.argpartition(-keys, n_keep - 1)[:n_keep]
    data = np.ones(n_keep, dtype=np.float32)
    return sp.csr_matrix((data, (coo.row[chosen], coo.col[chosen])), shape=train.shape)


class Freedom(TorchRecommender):
    """FREEDOM: frozen modality kNN item graph + degree-sensitive edge pruning on a LightGCN backbone.

    ``modality_weights``: ``{modality: weight}`` for the item graph (normalised to sum 1; default
    equal). ``edge_dropout`` 0 turns the pruning off. ``max_feature_dim`` caps each modality's features
    by PCA (:func:`~recsys.lab.training.normalise_features`) before graphs and projections.

    Defaults chosen on lfm2k *validation* Recall@20 (given split, seed 0, ``benchmarks/lab_grid.py``;
    test figures never looked at), from dim 64, 1 item-graph layer, k 10, lr 0.01, batch 2048:
    with 2 UI layers, reg 1e-3, feature_weight 1e-3, edge_dropout 0.0 / 0.5 / 0.8 read 0.417 /
    0.404 / 0.401; with 3 UI layers, edge_dropout 0.0 / 0.2 read 0.423 / 0.418 (reg 1e-2: 0.372);
    feature_weight 1e-2 read 0.424. The paper's heavy pruning (0.8-0.9) hurts on this small, dense
    dataset (1.9k users, 1.4k artists), so it defaults to off and stays available. Text-heavy graph
    weights (MiniLM 0.8, vggish 0.1, whisper 0.1) read 0.427, but a default cannot name one
    dataset's modalities, so weights stay equal until they are searched on validation per dataset.
    """

    name = "freedom"

    def __init__(
        self,
        dim: int = 64,
        ui_layers: int = 3,
        mm_layers: int = 1,
        knn_k: int = 10,
        edge_dropout: float = 0.0,
        feature_weight: float = 1e-2,
        reg: float = 1e-3,
        modality_weights: dict[str, float] | None = None,
        init_std: float = 0.1,
        max_feature_dim: int | None = None,
        **train: Any,
    ) -> None:
        if not 0.0 <= edge_dropout < 1.0:
            raise InputError(f"edge_dropout must be in [0, 1), got {edge_dropout}.")
        if knn_k < 1 or ui_layers < 0 or mm_layers < 1:
            raise InputError("knn_k and mm_layers must be at least 1, ui_layers at least 0.")
        train = {"batch_size": 2048, "lr": 0.01, **train}
        super().__init__(dim, init_std, **train)
        self.ui_layers, self.mm_layers, self.knn_k = ui_layers, mm_layers, knn_k
        self.edge_dropout, self.feature_weight, self.reg = edge_dropout, feature_weight, reg
        self.modality_weights = modality_weights
        self.max_feature_dim = max_feature_dim  # PCA cap on each modality's features (None: keep all)
        self.modalities: list[str] = []
        self.weights: list[float] = []
        self._final: tuple[torch.Tensor, torch.Tensor] | None = None

    def _resolve_weights(self, names: list[str]) -> list[float]:
        given = self.modality_weights or {m: 1.0 for m in names}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise InputError(f"modality_weights name {unknown}, but the dataset's modalities are {names}.")
        w = np.array([max(0.0, float(given.get(m, 0.0))) for m in names])
        if w.sum() <= 0:
            raise InputError("modality_weights must give at least one modality a positive weight.")
        return (w / w.sum()).tolist()

    def fit(self, data: TrainData) -> Self:
        import torch

        check_train_data(data.train, self.name)
        start = time.perf_counter()
        self.modalities, feats = normalise_features(data.item_features, data.n_items, self.max_feature_dim, data.seed)
        self.weights = self._resolve_weights(self.modalities)
        rng = seed_everything(data.seed)
        device = self._device = resolve_device(self.config.device)
        self._n_users = data.n_users
        self._build_item_graph(feats, device)
        self._full_adj = SparseGraph(normalised_adjacency(data.train), device)
        self._warm = torch.from_numpy(data.warm_items).to(device)
        module = torch.nn.ModuleDict(
            {
                "user": torch.nn.Embedding(data.n_users, self.dim),
                "item": torch.nn.Embedding(data.n_items, self.dim),
                "proj": torch.nn.ModuleList([torch.nn.Linear(f.shape[1], self.dim) for f in feats]),
                **self._extra_modules(),
            }
        )
        torch.nn.init.normal_(module["user"].weight, std=self.init_std)
        torch.nn.init.normal_(module["item"].weight, std=self.init_std)
        self._module = module = module.to(device)
        self._features = features = [torch.from_numpy(f).to(device) for f in feats]
        self._final = None
        self._train_adj = self._full_adj
        prune_rng = np.random.default_rng([data.seed, 1])  # its own stream: sampling stays comparable

        def resample(epoch: int) -> None:
            if self.edge_dropout > 0:
                kept = prune_edges(data.train, 1.0 - self.edge_dropout, prune_rng)
                self._train_adj = SparseGraph(normalised_adjacency(kept), device)
            self._before_epoch(epoch)

        def batch_loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
            users, items = self._embeddings(self._train_adj)
            pu = users[u]
            loss = bpr_loss((pu * (items[i] - items[j])).sum(-1))
            if self.feature_weight > 0:
                for proj, x in zip(module["proj"], features, strict=True):
                    fi, fj = proj(x[i]), proj(x[j])
                    loss = loss + self.feature_weight * bpr_loss((pu * (fi - fj)).sum(-1))
            eu, ei, ej = module["user"](u), module["item"](i), module["item"](j)
            penalty = 0.5 * (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum())
            return loss + self.reg * penalty / u.shape[0]

        warm = np.flatnonzero(data.warm_items)
        args = (data.train, data.valid, self._score_batch, self.config, rng, device)
        self.result = train_pairwise(module, batch_loss, *args, negative_pool=warm, before_epoch=resample)
        with torch.no_grad():
            self._final = self._embeddings(self._full_adj, for_scoring=True)
        self.fit_seconds = time.perf_counter() - start
        return self

    def _embeddings(self, adj: SparseGraph, for_scoring: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items): LightGCN over ``adj`` plus the item-item convolution of the free item vectors.

        For scoring, cold items keep only their item-item part (see the module docstring)."""
        import torch

        module = self._module
        ego = torch.cat([module["user"].weight, module["item"].weight])
        out = propagate(adj, ego, self.ui_layers)
        users, items = out[: self._n_users], out[self._n_users :]
        h = self._item_item(module["item"].weight)
        if for_scoring:
            items = items * self._warm[:, None].to(items.dtype)
        return users, items + h

    # Hooks for models that share this training loop but learn their item-item graph (LATTICE).
    def _build_item_graph(self, feats: list[np.ndarray], device: torch.device) -> None:
        """Set up the item-item graph from the normalised features (here: the frozen weighted kNN graph)."""
        self._item_adj = SparseGraph(item_graph(feats, self.weights, self.knn_k), device)

    def _extra_modules(self) -> dict[str, torch.nn.Module]:
        """Trainable parts beyond the embeddings and projections (none here)."""
        return {}

    def _before_epoch(self, epoch: int) -> None:
        """Runs before every epoch, after the user-item graph is resampled (nothing here)."""

    def _item_item(self, items: torch.Tensor) -> torch.Tensor:
        """The item-item view of the free item vectors: ``mm_layers`` convolutions over the item graph."""
        h = items
        for _ in range(self.mm_layers):
            h = self._item_adj @ h
        return h

    def _score_batch(self, users: np.ndarray) -> np.ndarray:
        import torch

        self._module.eval()
        with torch.no_grad():
            user_emb, item_emb = self._final if self._final is not None else self._embeddings(self._full_adj, True)
            u = torch.as_tensor(users, dtype=torch.long, device=self._device)
            s = user_emb[u] @ item_emb.T
        return s.float().cpu().numpy()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._final is None:
            raise RuntimeError("Freedom.score called before fit().")
        return score_in_batches(self._score_batch, users, self._final[1].shape[0])

    def extra_info(self) -> dict[str, object]:
        return {
            "dim": self.dim,
            "ui_layers": self.ui_layers,
            "mm_layers": self.mm_layers,
            "knn_k": self.knn_k,
            "edge_dropout": self.edge_dropout,
            "feature_weight": self.feature_weight,
            "reg": self.reg,
            "modality_weights": dict(zip(self.modalities, self.weights, strict=True)),
            "max_feature_dim": self.max_feature_dim,
            **self.training_info(),
        }
