"""Reference models from a maintained library (``implicit``): BPR and ALS matrix factorisation.

They run beside our own models in the same evaluation, so our implementations are checked
against a known-good one under exactly the same protocol. CPU implementations are used
explicitly (GPU optional). BPR runs on one thread: its threads update shared factors without
locks (Hogwild), so more threads give different factors on every run, and the lab's results must
be reproducible for a seed. ALS solves each user / item on its own, so it is deterministic on any
number of threads and takes the train role's count (:mod:`recsys.threads`).
Defaults were picked on the lfm2k *validation* split (x_label 1) from a handful of settings:
BPR 64 factors, lr 0.02, reg 0.05, 3000 epochs (Recall@20 0.322; 0.265 with 200 epochs at
lr 0.1, 0.250 at lr 0.05 / reg 0.01: more epochs at a lower rate kept helping); ALS reg 5 /
alpha 10 (0.373 vs 0.335 for reg 0.05 / alpha 2). Strong regularisation also keeps both sane
on tiny data.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from recsys.lab.base import Recommender, TrainData


class _ImplicitMF(Recommender):
    def _make(self, seed: int):  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, data: TrainData) -> Self:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit's advice: BLAS threads fight its own loops
            model = self._make(data.seed)  # (ALS checks the BLAS threads when it is made)
            model.fit(data.train.tocsr().astype(np.float32), show_progress=False)  # >= 0.5: users x items
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[np.asarray(users)] @ self.item_factors.T


class ImplicitBPR(_ImplicitMF):
    """``implicit.cpu.bpr.BayesianPersonalizedRanking``."""

    name = "implicit-bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.02,
        regularization: float = 0.05,
        iterations: int = 3000,
    ) -> None:
        self.params = {
            "factors": factors,
            "learning_rate": learning_rate,
            "regularization": regularization,
            "iterations": iterations,
        }

    def _make(self, seed: int):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(**self.params, random_state=seed, num_threads=1)  # reproducible

    def extra_info(self) -> dict[str, object]:
        return {"params": self.params}


class ImplicitALS(_ImplicitMF):
    """``implicit.cpu.als.AlternatingLeastSquares`` (confidence 1 + alpha on observed pairs)."""

    name = "implicit-als"

    def __init__(
        self, factors: int = 64, regularization: float = 5.0, alpha: float = 10.0, iterations: int = 15
    ) -> None:
        self.params = {
            "factors": factors,
            "regularization": regularization,
            "alpha": alpha,
            "iterations": iterations,
        }

    def _make(self, seed: int):
        from implicit.cpu.als import AlternatingLeastSquares

        from recsys.threads import thread_count

        return AlternatingLeastSquares(**self.params, random_state=seed, num_threads=thread_count("train"))

    def extra_info(self) -> dict[str, object]:
        return {"params": self.params}
