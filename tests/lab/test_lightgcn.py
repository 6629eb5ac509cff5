"""LightGCN: the normalised propagation matrix by hand, one layer by hand, and a tiny fit."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.lab.models.lightgcn import LightGCN, normalised_adjacency, propagate, to_torch_sparse
from tests.lab.test_bpr import own_group_precision, two_communities

# 2 users x 3 items; user 0 saw items 0 and 1, user 1 saw item 1; item 2 is cold, no user is empty.
R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))


def test_adjacency_is_symmetric_normalised_by_hand():
    adj = normalised_adjacency(R).toarray()
    # Degrees: users 2, 1; items 1, 2, 0. Entry (u, i) = 1 / sqrt(d_u d_i).
    expected = np.zeros((5, 5))
    for u, i in [(0, 0), (0, 1), (1, 1)]:
        d_u, d_i = [2, 1][u], [1, 2, 0][i]
        expected[u, 2 + i] = expected[2 + i, u] = 1 / np.sqrt(d_u * d_i)
    np.testing.assert_allclose(adj, expected, rtol=1e-6)
    np.testing.assert_allclose(adj, adj.T)
    assert not adj[4].any() and not adj[:, 4].any()  # the cold item is isolated


def test_one_layer_equals_the_hand_computed_product():
    ego = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    adj = to_torch_sparse(normalised_adjacency(R))
    e = ego.numpy()
    s2 = 1 / np.sqrt(2)
    # user 0 <- items 0 (d=1), 1 (d=2); user 1 <- item 1; item 0 <- user 0; item 1 <- users 0, 1.
    layer1 = np.array(
        [
            e[2] / np.sqrt(2 * 1) + e[3] / np.sqrt(2 * 2),
            e[3] / np.sqrt(1 * 2),
            e[0] / np.sqrt(2 * 1),
            e[0] / np.sqrt(2 * 2) + e[1] * s2,
            np.zeros(2),
        ]
    )
    np.testing.assert_allclose(torch.sparse.mm(adj, ego).numpy(), layer1, rtol=1e-6)
    np.testing.assert_allclose(propagate(adj, ego, 1).numpy(), (e + layer1) / 2, rtol=1e-6)


def test_gradient_flows_through_propagation():
    ego = torch.ones(5, 2, requires_grad=True)
    propagate(to_torch_sparse(normalised_adjacency(R)), ego, 2).sum().backward()
    assert ego.grad is not None and torch.isfinite(ego.grad).all()


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
