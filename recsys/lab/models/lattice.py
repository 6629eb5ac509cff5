"""LATTICE-style multimodal graph recommender (Zhang et al., "Mining Latent Structures for Multimedia
Recommendation", MM'21), written from the paper.

Per modality, LATTICE *learns* an item-item graph instead of only reading one off the raw features:

* a learnable projection (linear, with bias) maps the modality's normalised features into a
  ``dim``-sized space; each item's ``knn_k`` nearest items by cosine of the *projected* features
  (itself included) are its neighbours, weighted by that cosine (clipped at 0) and row-normalised;
* this learned graph is mixed with the frozen kNN graph of the raw features (FREEDOM's
  :func:`~recsys.lab.models.freedom.knn_graph`, weight ``1/k`` per neighbour) by the paper's skip
  connection: ``A_m = frozen_share * frozen_m + (1 - frozen_share) * learned_m`` (the paper's lambda,
  0.9 by default: the raw-feature graph dominates, the learned one corrects it);
* the modalities' graphs are combined with learned weights ``softmax(logits)``, so
  ``A = sum_m alpha_m A_m`` stays row-stochastic.

Item vectors are LightGCN propagation over the user-item graph plus the L2-normalised
``mm_layers`` convolutions of the free item embeddings over ``A`` (the paper's ``e_i + h_i/|h_i|``);
users are the LightGCN user vectors. Loss: BPR on the dot product plus an L2 penalty ``reg`` on the
batch's free embeddings. The backbone, training loop and scoring are FREEDOM's (this class fills its
item-graph hooks, with pruning and the auxiliary feature loss off).

How "learned each epoch" is done here: the neighbour *sets* are recomputed from the current
projections before every epoch (a top-k is not differentiable), while the neighbour *weights* are
recomputed from the projections in every mini-batch, so the projections and the modality weights
get gradients from every batch (MMRec's implementation rebuilds the whole graph once per epoch and
back-propagates through it in that one batch only). The neighbour sets live in the module's
buffers, so early stopping restores the graph that belongs to the best epoch's parameters.

**Cold items** (no training interaction) are isolated in the user-item graph; as in FREEDOM their
LightGCN part is dropped at scoring time and they are scored by their item-item part alone: the
normalised mean of their neighbours' trained free embeddings, the neighbours found both from raw
content (frozen graph) and from the projected content (learned graph, whose projection is trained on
warm items and applies to any item with features). So it ranks cold items under ``cold-items``.

Cost per epoch: one all-items neighbour search per modality for the neighbour sets
(:func:`~recsys.lab.neighbours.nearest_items`: exact up to 50k items, an IVF index past that), and
per mini-batch the projection of every item's features plus ``n_items x knn_k`` gathers per modality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recsys.errors import InputError
from recsys.lab.models.freedom import Freedom, knn_graph
from recsys.lab.neighbours import nearest_items
from recsys.lab.propagation import SparseGraph
from recsys.progress import no_progress

if TYPE_CHECKING:
    import torch


class Lattice(Freedom):
    """LATTICE: learned + frozen modality kNN item graphs, softmax modality weights, LightGCN backbone.

    ``frozen_share`` is the paper's lambda (share of the raw-feature graph in each modality's graph).

    ``max_feature_dim`` caps each modality's features by PCA before the graphs and projections.

    Defaults chosen on lfm2k *validation* Recall@20 (given split, seed 0, ``benchmarks/lab_grid.py``;
    test figures never looked at), on FREEDOM's tuned backbone (dim 64, 3 UI layers, 1 item-graph
    layer, lr 0.01, batch 2048, reg 1e-3), four fits: frozen_share 0.9, k 10, all feature dims 0.4236;
    frozen_share 0.7: 0.4234; PCA to 64 dims: 0.4290; PCA 64 with k 20: 0.4284 (fits 145-208 s on the
    shared 2-core machine, best epoch 44 each). lambda and k barely matter here; the 64-dim cap is
    kept (as good, and the per-batch projection cost no longer grows with the feature width).
    """

    name = "lattice"

    def __init__(
        self,
        dim: int = 64,
        ui_layers: int = 3,
        mm_layers: int = 1,
        knn_k: int = 10,
        frozen_share: float = 0.9,
        reg: float = 1e-3,
        init_std: float = 0.1,
        max_feature_dim: int | None = 64,
        **train: Any,
    ) -> None:
        if not 0.0 <= frozen_share <= 1.0:
            raise InputError(f"frozen_share must be in [0, 1], got {frozen_share}.")
        super().__init__(
            dim,
            ui_layers,
            mm_layers,
            knn_k,
            edge_dropout=0.0,
            feature_weight=0.0,
            reg=reg,
            init_std=init_std,
            max_feature_dim=max_feature_dim,
            **train,
        )
        self.frozen_share = frozen_share
        self._frozen: list[SparseGraph] = []

    def _build_item_graph(self, feats: list[np.ndarray], device: torch.device) -> None:
        self._n_items = feats[0].shape[0]
        self._k = min(self.knn_k, self._n_items)
        self._frozen = [SparseGraph(knn_graph(x, self._k), device) for x in feats]

    def _extra_modules(self) -> dict[str, torch.nn.Module]:
        """The modality logits and, as buffers (saved with the best epoch), each modality's neighbour sets."""
        import torch

        logits = torch.nn.ParameterDict({"logits": torch.nn.Parameter(torch.zeros(len(self.modalities)))})
        graph = torch.nn.Module()
        for m in range(len(self.modalities)):
            graph.register_buffer(f"nbr{m}", torch.zeros(self._n_items, self._k, dtype=torch.long))
        return {"modal": logits, "graph": graph}

    def _before_epoch(self, epoch: int) -> None:
        """Recompute each modality's neighbour sets: top-k cosine of the current projected features."""
        import torch

        module = self._module
        with torch.no_grad():
            for m, (proj, x) in enumerate(zip(module["proj"], self._features, strict=True)):
                p = torch.nn.functional.normalize(proj(x), dim=1).cpu().numpy()
                nbr = torch.from_numpy(nearest_items(p, self._k, progress=no_progress))  # the epoch's line covers it
                getattr(module["graph"], f"nbr{m}").copy_(nbr)

    def _learned_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per modality, (neighbour ids, row-normalised weights), both ``(n_items, k)``; the weights
        are the clipped cosines of the projected features, differentiable in the projections."""
        import torch

        F = torch.nn.functional
        module = self._module
        out = []
        for m, (proj, x) in enumerate(zip(module["proj"], self._features, strict=True)):
            p = F.normalize(proj(x), dim=1)
            nbr = getattr(module["graph"], f"nbr{m}")
            w = torch.relu((p[:, None, :] * p[nbr]).sum(-1))  # self is a neighbour: cosine 1
            out.append((nbr, w / w.sum(1, keepdim=True).clamp_min(1e-12)))
        return out

    def _item_item(self, items: torch.Tensor) -> torch.Tensor:
        """``mm_layers`` convolutions over ``sum_m alpha_m (share * frozen_m + (1 - share) * learned_m)``,
        L2-normalised per item."""
        import torch

        alpha = torch.softmax(self._module["modal"]["logits"], 0)
        learned = self._learned_weights()
        share = self.frozen_share
        h = items
        for _ in range(self.mm_layers):
            out = torch.zeros_like(h)
            for a, frozen, (nbr, w) in zip(alpha, self._frozen, learned, strict=True):
                mixed = share * (frozen @ h) + (1.0 - share) * (w[..., None] * h[nbr]).sum(1)
                out = out + a * mixed
            h = out
        return torch.nn.functional.normalize(h, dim=1)

    def modality_weights_learned(self) -> dict[str, float]:
        """The learned softmax weight of each modality's graph."""
        import torch

        if self._module is None:
            raise RuntimeError("Lattice.modality_weights_learned called before fit().")
        with torch.no_grad():
            alpha = torch.softmax(self._module["modal"]["logits"], 0).cpu().numpy()
        return {m: float(a) for m, a in zip(self.modalities, alpha, strict=True)}

    def learned_graphs(self) -> dict[str, sp.csr_matrix]:
        """Each modality's learned kNN graph (row-stochastic), as used for scoring; each modality's
        graph in the model is ``frozen_share * frozen + (1 - frozen_share) * learned``."""
        import torch

        if self._module is None:
            raise RuntimeError("Lattice.learned_graphs called before fit().")
        out = {}
        with torch.no_grad():
            for name, (nbr, w) in zip(self.modalities, self._learned_weights(), strict=True):
                rows = np.repeat(np.arange(self._n_items), self._k)
                cols, vals = nbr.cpu().numpy().ravel(), w.cpu().numpy().ravel()
                out[name] = sp.csr_matrix((vals, (rows, cols)), shape=(self._n_items, self._n_items))
        return out

    def extra_info(self) -> dict[str, object]:
        """FREEDOM's settings less pruning and the feature loss, plus lambda and the learned modality weights."""
        skip = ("edge_dropout", "feature_weight", "modality_weights")
        info = {k: v for k, v in super().extra_info().items() if k not in skip}
        info["frozen_share"] = self.frozen_share
        if self._module is not None:
            info["modality_weights"] = self.modality_weights_learned()
        return info
