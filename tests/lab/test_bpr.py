"""BPR-MF on a two-community synthetic dataset where the right ranking is known."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.lab.base import TrainData
from recsys.lab.models.bpr import BPRMF


def two_communities(seed: int = 0, n_users: int = 40, n_items: int = 30, density: float = 0.5) -> TrainData:
    """Users 0..n/2-1 like only items 0..m/2-1 and the rest like only the rest; half of those are seen."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) >= n_users // 2
    item_group = np.arange(n_items) >= n_items // 2
    liked = user_group[:, None] == item_group[None, :]
    seen = liked & (rng.random((n_users, n_items)) < density)
    train = sp.csr_matrix(seen.astype(np.float32))
    return TrainData(train=train, valid=sp.csr_matrix(train.shape, dtype=np.float32), seed=seed)


def own_group_precision(scores: np.ndarray, data: TrainData, k: int = 5) -> float:
    """Share of each user's top-k unseen items that belong to the user's own group."""
    n_users, n_items = scores.shape
    s = np.where(data.train.toarray() > 0, -np.inf, scores)
    top = np.argsort(-s, axis=1)[:, :k]
    own = (np.arange(n_users)[:, None] >= n_users // 2) == (top >= n_items // 2)
    return float(own.mean())


@pytest.fixture(scope="module")
def fitted() -> tuple[BPRMF, TrainData]:
    data = two_communities()
    return BPRMF(dim=8, lr=0.05, epochs=40, init_std=0.1).fit(data), data


def test_ranks_the_users_own_community_first(fitted):
    model, data = fitted
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items)
    assert scores.dtype == np.float32
    assert own_group_precision(scores, data) > 0.95


def test_training_reduces_the_loss(fitted):
    model, _ = fitted
    losses = model.result.losses
    assert losses[-1] < 0.5 * losses[0]


def test_same_seed_same_scores_and_other_seed_differs():
    data = two_communities()
    a = BPRMF(dim=8, epochs=5).fit(data).score(np.arange(5))
    b = BPRMF(dim=8, epochs=5).fit(data).score(np.arange(5))
    np.testing.assert_array_equal(a, b)
    data.seed = 1
    c = BPRMF(dim=8, epochs=5).fit(data).score(np.arange(5))
    assert not np.array_equal(a, c)


def test_early_stopping_on_validation_restores_a_good_epoch():
    data = two_communities(density=0.6)
    dense = data.train.toarray()
    # move one seen item per user to validation
    valid = np.zeros_like(dense)
    for u in range(dense.shape[0]):
        items = np.flatnonzero(dense[u])
        valid[u, items[0]] = 1
        dense[u, items[0]] = 0
    data = TrainData(sp.csr_matrix(dense), sp.csr_matrix(valid), seed=0)
    model = BPRMF(dim=8, lr=0.05, epochs=60, eval_every=1, patience=3, init_std=0.1).fit(data)
    info = model.extra_info()
    assert info["best_valid_recall"] is not None and info["best_valid_recall"] > 0.5
    assert info["best_epoch"] <= info["epochs_run"]


def test_score_before_fit_raises():
    with pytest.raises(RuntimeError):
        BPRMF().score(np.arange(3))
