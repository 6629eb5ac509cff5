"""Content kNN: a user is the mean of their training items' features; items ranked by cosine to it.

Needs no interactions on the item side, so it ranks cold-start items as well as warm ones.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.errors import DatasetError
from recsys.lab.base import Recommender, TrainData
from recsys.lab.metrics import unit_rows
from recsys.vectors import unit_vectors


def user_profiles(train: sp.csr_matrix, unit_features: np.ndarray) -> np.ndarray:
    """Row-normalised mean of each user's training items' unit feature vectors (zero for no history)."""
    counts = np.diff(train.indptr).astype(np.float32)
    mean = sp.diags(1.0 / np.maximum(counts, 1.0)) @ train.astype(np.float32) @ unit_features
    return unit_vectors(np.asarray(mean, dtype=np.float32))


def require_modalities(data: TrainData, modalities: list[str] | None) -> list[str]:
    """The requested modalities (all of the dataset's when None), checked to exist."""
    if not data.item_features:
        raise DatasetError("This model needs item features, but the dataset has no feature files.")
    chosen = list(data.item_features) if modalities is None else list(modalities)
    missing = [m for m in chosen if m not in data.item_features]
    if missing:
        raise DatasetError(f"Unknown modality {', '.join(missing)}; the dataset has: {', '.join(data.item_features)}.")
    return chosen


class ContentKNN(Recommender):
    """Cosine between the user's mean (centred, normalised) item vector and every item, one modality."""

    def __init__(self, modality: str) -> None:
        self.modality = modality
        self.name = f"content:{modality}"

    def fit(self, data: TrainData) -> Self:
        (modality,) = require_modalities(data, [self.modality])
        self.items = unit_rows(data.item_features[modality])
        self.profiles = user_profiles(data.train, self.items)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.profiles[np.asarray(users)] @ self.items.T
