"""Ensembles: the weighted, normalised mean of several aligners' outputs for one encoder.

The label bridge is best at the exact item, a learned head at categories; averaging their unit
vectors keeps much of both. Members may take different inputs (class probabilities vs
embeddings): the ensemble then takes ``embedding`` and ``class_proba`` concatenated along axis 1.
"""

from __future__ import annotations

import numpy as np

from recsys.alignment.base import Aligner, aligner_identity
from recsys.errors import RecsysError
from recsys.vectors import unit_vectors

_KIND_ORDER = ("embedding", "class_proba")


class EnsembleAligner(Aligner):
    name = "ensemble"

    def __init__(self, members: list[Aligner], weights: list[float] | None = None) -> None:
        if not members:
            raise RecsysError("An aligner ensemble needs at least one member.")
        first = members[0]
        for m in members[1:]:
            if (m.source_encoder_id, m.target_space, m.output_dim) != (
                first.source_encoder_id,
                first.target_space,
                first.output_dim,
            ):
                raise RecsysError(
                    f"Ensemble members disagree: {m.describe()} vs {first.describe()}; all must map the same "
                    "encoder into the same space."
                )
        self.members = list(members)
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(members) or np.any(w < 0) or w.sum() <= 0:
            raise RecsysError("Ensemble weights must be non-negative, one per member, and not all zero.")
        self.weights = (w / w.sum()).tolist()
        self.source_modality = first.source_modality
        self.source_encoder_id = first.source_encoder_id
        self.target_space = first.target_space
        self.output_dim = first.output_dim
        self.name = "ensemble(" + "+".join(m.name for m in members) + ")"
        # One input block per distinct member input kind, in a fixed order.
        self.kinds = [k for k in _KIND_ORDER if any(m.input_kind == k for m in members)]
        if any(m.input_kind not in _KIND_ORDER for m in members):
            raise RecsysError("Ensemble members must take embeddings or class probabilities.")
        dims: dict[str, int] = {}
        for m in members:
            if dims.setdefault(m.input_kind, m.input_dim) != m.input_dim:
                raise RecsysError("Ensemble members taking the same input kind must agree on its width.")
        self.input_kind = "+".join(self.kinds)
        self.blocks: dict[str, slice] = {}
        start = 0
        for k in self.kinds:
            self.blocks[k] = slice(start, start + dims[k])
            start += dims[k]
        self.input_dim = start

    def parameters_digest(self) -> str:
        weighted = zip(self.members, self.weights, strict=True)
        return "members " + " + ".join(f"{w:.6g} x {aligner_identity(m)}" for m, w in weighted)

    def _transform(self, features: np.ndarray) -> np.ndarray:
        out = np.zeros((len(features), self.output_dim), dtype=np.float32)
        for m, w in zip(self.members, self.weights, strict=True):
            out += np.float32(w) * m.transform(features[:, self.blocks[m.input_kind]])
        return unit_vectors(out)
