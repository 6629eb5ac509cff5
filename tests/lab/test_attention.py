"""AttentionFusion on two item clusters: ranking (warm and cold) and the learned modality weights."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.errors import InputError
from recsys.lab.base import TrainData
from recsys.lab.models.attention import AttentionFusion


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny problems: torch's intra-op threads only add synchronisation (10x slower on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture(scope="module", params=["user", "item", "both"])
def fitted(request):
    data, cold = clustered()
    model = AttentionFusion(dim=8, mode=request.param, lr=0.01, epochs=100, content_reg=1e-2, init_std=0.1)
    return model.fit(data), data, cold


def test_ranks_warm_and_cold_items_of_the_users_cluster_first(fitted):
    model, data, cold = fitted
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    assert own_cluster_share(scores, data, np.flatnonzero(data.warm_items), k=4) > 0.95
    assert own_cluster_share(scores, data, cold, k=len(cold) // 2) > 0.9


def test_training_reduces_the_loss(fitted):
    model, _, _ = fitted
    assert model.result.losses[-1] < 0.7 * model.result.losses[0]


def test_reports_attention_weights_that_favour_the_informative_modality(fitted):
    model, data, _ = fitted
    att = model.extra_info()["attention_weights"]
    assert att["modalities"] == ["genre", "noise"]
    per_user = np.asarray(att["per_user"])
    per_item = np.asarray(att["per_item"])
    assert per_user.shape == (data.n_users, 2) and per_item.shape == (data.n_items, 2)
    np.testing.assert_allclose(per_user.sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(per_item.sum(axis=1), 1.0, atol=1e-3)
    assert att["mean"][0] > 0.5  # the cluster-encoding modality gets most of the weight


def test_same_seed_same_scores():
    data, _ = clustered()
    a = AttentionFusion(dim=8, mode="both", epochs=4).fit(data).score(np.arange(6))
    b = AttentionFusion(dim=8, mode="both", epochs=4).fit(data).score(np.arange(6))
    np.testing.assert_array_equal(a, b)


def test_unknown_mode_raises():
    with pytest.raises(InputError, match="mode"):
        AttentionFusion(mode="global")
