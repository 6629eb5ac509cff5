"""LATTICE: the learned item graph moves with training and stays row-stochastic; cold items from content."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import InputError
from recsys.lab.models.lattice import Lattice
from tests.lab.test_bpr import own_group_precision, two_communities
from tests.lab.test_freedom import _with_features


def test_rejects_a_frozen_share_outside_0_1():
    with pytest.raises(InputError, match="frozen_share"):
        Lattice(frozen_share=1.5)


def test_graph_inspection_needs_a_fit():
    with pytest.raises(RuntimeError, match="before fit"):
        Lattice().learned_graphs()


def _fit(lr: float, data=None) -> Lattice:
    data = data if data is not None else _with_features(two_communities())
    return Lattice(dim=8, lr=lr, epochs=20, batch_size=256, knn_k=4).fit(data)


@pytest.mark.slow
def test_learned_graph_changes_with_training_and_stays_row_normalised():
    data = _with_features(two_communities())
    untrained, trained = _fit(0.0, data), _fit(0.05, data)  # same seed: same initial projections
    before, after = untrained.learned_graphs(), trained.learned_graphs()
    assert set(after) == {"noise", "text"}
    for name, g in after.items():
        assert g.shape == (data.n_items, data.n_items)
        assert (g.data >= 0).all() and np.diff(g.indptr).max() <= 4
        np.testing.assert_allclose(np.asarray(g.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
        assert np.abs((g - before[name]).toarray()).max() > 1e-3, f"{name}: the learned graph did not move"
    weights = trained.extra_info()["modality_weights"]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["text"] > weights["noise"]  # the modality that carries the communities gains weight
    assert untrained.extra_info()["modality_weights"] == {"noise": 0.5, "text": 0.5}
    assert own_group_precision(trained.score(np.arange(data.n_users)), data) > 0.95


@pytest.mark.slow
def test_cold_items_get_finite_scores_from_their_content():
    data = _with_features(two_communities(density=0.6))
    cold = np.array([3, 4, 20, 21])  # two per community, their interactions removed
    keep = np.ones(data.n_items)
    keep[cold] = 0
    data.train = (data.train @ sp.diags(keep)).tocsr()
    data.train.eliminate_zeros()
    scores = _fit(0.05, data).score(np.arange(data.n_users))
    assert np.isfinite(scores).all()
    first = np.arange(data.n_users) < data.n_users // 2
    own = np.where(first[:, None], scores[:, [3, 4]], scores[:, [20, 21]])
    other = np.where(first[:, None], scores[:, [20, 21]], scores[:, [3, 4]])
    assert (own.min(axis=1) > other.max(axis=1)).mean() > 0.9


def test_only_the_frozen_graphs_report_their_search_not_each_epoch(monkeypatch, caplog):
    monkeypatch.setattr("recsys.lab.neighbours.EXACT_UP_TO", 0)  # every search through IVF, which reports
    data = _with_features(two_communities())
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        Lattice(dim=8, epochs=3, batch_size=256, knn_k=4).fit(data)
    started = [r for r in caplog.records if r.getMessage().startswith("nearest items") and ": 0/" in r.getMessage()]
    assert len(started) == 2  # one frozen graph per modality (noise, text); the 3 epochs' searches are silent
