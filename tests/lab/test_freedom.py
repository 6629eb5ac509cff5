"""FREEDOM: the frozen kNN item graph and the degree-sensitive pruning by hand, and small fits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import InputError
from recsys.lab.base import TrainData
from recsys.lab.models.freedom import Freedom, item_graph, knn_graph, prune_edges
from tests.lab.test_bpr import own_group_precision, two_communities


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("exact", [True, False])
def test_knn_graph_rows_average_the_nearest_items_by_hand(exact):
    x = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]))
    g = knn_graph(x, 2, exact=exact).toarray()
    expected = np.array([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(g, expected)


def test_item_graph_weights_the_modalities():
    a = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    b = _unit(np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 0.9]]))
    g = item_graph([a, b], [0.75, 0.25], 2).toarray()
    np.testing.assert_allclose(g, 0.75 * knn_graph(a, 2).toarray() + 0.25 * knn_graph(b, 2).toarray(), rtol=1e-6)
    np.testing.assert_allclose(g.sum(axis=1), 1.0, rtol=1e-6)


def test_pruning_keeps_the_share_and_drops_popular_pairs_most():
    rng = np.random.default_rng(0)
    # user 0 and item 0 are hubs; users 1..39 each have one edge to item 0 and one to their own item.
    rows = [0] * 40 + list(range(1, 40)) + list(range(1, 40))
    cols = list(range(40)) + [0] * 39 + list(range(1, 40))
    train = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(40, 40))
    train.sum_duplicates()
    train.data[:] = 1.0
    kept_hub, kept_leaf = 0, 0
    for _ in range(200):
        kept = prune_edges(train, 0.5, rng)
        assert kept.nnz == round(0.5 * train.nnz)
        assert (kept.multiply(train) != 0).sum() == kept.nnz  # only existing edges survive
        kept_hub += kept[0, 0]
        kept_leaf += kept[5, 5]
    assert kept_leaf > kept_hub  # the (hub user, hub item) edge goes first
    assert prune_edges(train, 1.0, rng) is train


def test_rejects_bad_settings():
    with pytest.raises(InputError, match="edge_dropout"):
        Freedom(edge_dropout=1.0)
    with pytest.raises(InputError, match="modalities"):
        data = two_communities()
        data.item_features = {"text": np.eye(data.n_items, dtype=np.float32)}
        Freedom(modality_weights={"audio": 1.0}, epochs=1).fit(data)


def _with_features(data: TrainData, noise: float = 0.1) -> TrainData:
    rng = np.random.default_rng(1)
    group = (np.arange(data.n_items) >= data.n_items // 2).astype(np.float32)
    feats = np.c_[group, 1 - group] + rng.normal(0, noise, (data.n_items, 2))
    data.item_features = {"text": feats.astype(np.float32), "noise": rng.normal(size=(data.n_items, 3))}
    return data


@pytest.mark.slow
def test_ranks_the_users_own_community_first_and_reports_its_settings():
    data = _with_features(two_communities())
    model = Freedom(dim=8, lr=0.05, epochs=30, batch_size=256, edge_dropout=0.5, knn_k=4).fit(data)
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    assert own_group_precision(scores, data) > 0.95
    info = model.extra_info()
    assert info["edge_dropout"] == 0.5 and info["modality_weights"] == {"noise": 0.5, "text": 0.5}


@pytest.mark.slow
def test_cold_items_are_scored_from_their_content_neighbours():
    data = _with_features(two_communities(density=0.6))
    cold = np.array([3, 4, 20, 21])  # two per community, their interactions removed
    train = data.train.tolil()
    train[:, cold] = 0
    data.train = train.tocsr()
    data.train.eliminate_zeros()
    model = Freedom(dim=8, lr=0.05, epochs=30, batch_size=256, knn_k=4, modality_weights={"text": 1.0}).fit(data)
    scores = model.score(np.arange(data.n_users))
    first_half = np.arange(data.n_users) < data.n_users // 2
    # users of community 0 put its cold items (3, 4) above the other community's (20, 21), and vice versa
    assert (scores[first_half][:, [3, 4]].min(axis=1) > scores[first_half][:, [20, 21]].max(axis=1)).mean() > 0.9
    assert (scores[~first_half][:, [20, 21]].min(axis=1) > scores[~first_half][:, [3, 4]].max(axis=1)).mean() > 0.9
