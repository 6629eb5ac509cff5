"""The one interface every interaction recommender implements (Cornac-style ``fit/score``).

Recommenders see only :class:`TrainData`; evaluation, masking of training items and cold-start
candidate selection live in the evaluation runner, so every model is compared on equal terms.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp


@dataclass
class TrainData:
    """What a recommender may learn from.

    ``train`` and ``valid`` are binary users x items CSR matrices over the full item range;
    items with no training interaction (cold-start items) have empty columns in ``train``.
    ``item_features`` maps a modality name to an (n_items, d) float32 matrix covering every item,
    cold ones included: that is what lets content and hybrid models rank them.
    """

    train: sp.csr_matrix
    valid: sp.csr_matrix
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int = 0

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @property
    def warm_items(self) -> np.ndarray:
        """Boolean mask of items with at least one training interaction."""
        return np.asarray(self.train.sum(axis=0)).ravel() > 0


class Recommender(abc.ABC):
    """``fit`` once, then ``score`` any batch of users against every item."""

    name: str = "recommender"

    @abc.abstractmethod
    def fit(self, data: TrainData) -> Self:
        """Learn from ``data``; returns ``self``."""

    @abc.abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Return a (len(users), n_items) float32 matrix; higher means more relevant."""

    def extra_info(self) -> dict[str, object]:
        """Model-specific results worth reporting (e.g. learned attention weights)."""
        return {}

    def refit_overrides(self) -> dict[str, object]:
        """Constructor arguments that freeze what this fit chose on validation (epochs, weights).

        Refitting on train + validation leaves nothing to validate on, so the refit model takes
        these instead; models that learn nothing from validation return ``{}``.
        """
        return {}
