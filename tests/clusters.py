"""Two user groups and two item clusters with cluster-encoding features: a dataset whose right
answer is known, shared by the torch recommender tests."""

import numpy as np
import scipy.sparse as sp

from recsys.lab.base import TrainData


def clustered(seed: int = 0, n_users: int = 40, n_items: int = 32, n_cold: int = 8) -> tuple[TrainData, np.ndarray]:
    """Two user groups, each liking one item cluster; the last ``n_cold`` items (half per cluster)
    have no interactions. Modality "genre" encodes the cluster (+ noise), "noise" carries nothing."""
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % 2
    user_group = np.arange(n_users) % 2
    cold = np.arange(n_items - n_cold, n_items)
    seen = (user_group[:, None] == item_cluster[None, :]) & (rng.random((n_users, n_items)) < 0.5)
    seen[:, cold] = False
    genre = np.eye(2)[item_cluster] + 0.3 * rng.normal(size=(n_items, 2))
    features = {
        "genre": np.hstack([genre, 0.3 * rng.normal(size=(n_items, 2))]).astype(np.float32),
        "noise": rng.normal(size=(n_items, 3)).astype(np.float32),
    }
    train = sp.csr_matrix(seen.astype(np.float32))
    return TrainData(train, sp.csr_matrix(train.shape, dtype=np.float32), features, seed=seed), cold


def own_cluster_share(scores: np.ndarray, data: TrainData, candidates: np.ndarray, k: int) -> float:
    """Share of each user's top-k candidates (unseen) that are in the user's cluster."""
    s = np.where(data.train.toarray() > 0, -np.inf, scores)[:, candidates]
    top = candidates[np.argsort(-s, axis=1)[:, :k]]
    return float(((top % 2) == (np.arange(scores.shape[0]) % 2)[:, None]).mean())
