"""Most-popular baseline: the same ranking for everyone, by training interaction count."""

from __future__ import annotations

from typing import Self

import numpy as np

from recsys.lab.base import Recommender, TrainData


class Popularity(Recommender):
    """Score = number of training users who interacted with the item (cold items score 0)."""

    name = "popularity"

    def fit(self, data: TrainData) -> Self:
        self.counts = np.asarray(data.train.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), self.counts.shape[0])).copy()
