"""HybridMF on two item clusters with cluster-encoding features, including cold items of each cluster."""

import numpy as np
import pytest
from clusters import clustered, own_cluster_share

from recsys.errors import DatasetError, InputError
from recsys.lab.models.hybrid import HybridMF


@pytest.fixture(scope="module", params=["bpr", "bce"])
def fitted(request):
    data, cold = clustered()
    model = HybridMF(dim=8, loss=request.param, lr=0.01, epochs=100, content_reg=1e-2, init_std=0.1).fit(data)
    return model, data, cold


def test_ranks_warm_items_of_the_users_cluster_first(fitted):
    model, data, _ = fitted
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    assert own_cluster_share(scores, data, np.flatnonzero(data.warm_items), k=4) > 0.95


def test_ranks_cold_items_of_the_users_cluster_first(fitted):
    model, data, cold = fitted
    scores = model.score(np.arange(data.n_users))
    assert own_cluster_share(scores, data, cold, k=len(cold) // 2) > 0.9


def test_training_reduces_the_loss(fitted):
    model, _, _ = fitted
    assert model.result.losses[-1] < 0.7 * model.result.losses[0]
    assert model.extra_info()["modalities"] == ["genre", "noise"]


def test_same_seed_same_scores():
    data, _ = clustered()
    a = HybridMF(dim=8, epochs=4).fit(data).score(np.arange(6))
    b = HybridMF(dim=8, epochs=4).fit(data).score(np.arange(6))
    np.testing.assert_array_equal(a, b)


def test_without_features_or_with_unknown_loss_raises_clear_errors():
    data, _ = clustered()
    data.item_features = {}
    with pytest.raises(DatasetError, match="item features"):
        HybridMF(epochs=1).fit(data)
    with pytest.raises(InputError, match="loss"):
        HybridMF(loss="hinge")
