"""Random ranking: the floor every other model must clear."""

from __future__ import annotations

from typing import Self

import numpy as np

from recsys.lab.base import Recommender, TrainData


class RandomRecommender(Recommender):
    """Uniform random scores, seeded per (seed, user) so a user's scores do not depend on the batch."""

    name = "random"

    def fit(self, data: TrainData) -> Self:
        self.seed = data.seed
        self.n_items = data.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((len(users), self.n_items), dtype=np.float32)
        for row, user in enumerate(np.asarray(users, dtype=np.int64)):
            out[row] = np.random.default_rng([self.seed, int(user)]).random(self.n_items, dtype=np.float32)
        return out
