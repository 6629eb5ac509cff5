"""LightGCN: a tiny fit (its graph and propagation: tests/lab/test_propagation.py)."""

import numpy as np
import pytest

from recsys.lab.models.lightgcn import LightGCN
from tests.lab.test_bpr import own_group_precision, two_communities


def test_ranks_the_users_own_community_first():
    data = two_communities()
    model = LightGCN(dim=8, layers=2, lr=0.05, epochs=30, batch_size=256).fit(data)
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    assert own_group_precision(scores, data) > 0.95
    assert model.result.losses[-1] < model.result.losses[0]
    assert model.extra_info()["layers"] == 2


def test_score_before_fit_raises():
    with pytest.raises(RuntimeError):
        LightGCN().score(np.arange(3))
