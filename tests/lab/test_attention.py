"""AttentionFusion on two item clusters: ranking (warm and cold) and the learned modality weights."""

import numpy as np
import pytest
from clusters import clustered, own_cluster_share

from recsys.errors import InputError
from recsys.lab.models.attention import AttentionFusion


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
