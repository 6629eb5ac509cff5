"""EASE against a hand-checkable closed form, and its tuning and limits."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import DatasetError
from recsys.lab.base import TrainData
from recsys.lab.models.ease import EASE, ease_weights, max_items


def test_two_item_closed_form_by_hand():
    # X^T X = [[2, 1], [1, 1]], lambda = 1: G + I = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5,
    # B_ij = -P_ij / P_jj: B_01 = (1/5) / (3/5) = 1/3, B_10 = (1/5) / (2/5) = 1/2.
    x = np.array([[1, 1], [1, 0]], dtype=float)
    b = ease_weights(x.T @ x, 1.0)
    np.testing.assert_allclose(b, [[0.0, 1 / 3], [1 / 2, 0.0]])


def test_zero_diagonal_and_matches_the_constrained_closed_form():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 6)) < 0.4).astype(float)
    g = x.T @ x
    b = ease_weights(g, 2.0)
    np.testing.assert_allclose(np.diag(b), 0.0)
    # Lagrangian solution: B = I - P diag(gamma), gamma_j = 1 / P_jj, with P = (G + lam I)^-1.
    p = np.linalg.inv(g + 2.0 * np.eye(6))
    np.testing.assert_allclose(b, np.eye(6) - p @ np.diag(1.0 / np.diag(p)), atol=1e-12)
    # Off-diagonal columns are the ridge regression of item j on the other items.
    j = 2
    others = [i for i in range(6) if i != j]
    ridge = np.linalg.solve(g[np.ix_(others, others)] + 2.0 * np.eye(5), g[others, j])
    np.testing.assert_allclose(b[others, j], ridge, atol=1e-10)


def _data(valid: bool = True) -> TrainData:
    rng = np.random.default_rng(1)
    x = (rng.random((40, 12)) < 0.3).astype(np.float32)
    x[:, 11] = 0  # a cold item
    v = np.zeros_like(x)
    if valid:
        for u in range(40):
            items = np.flatnonzero(x[u])
            if items.size > 1:
                v[u, items[0]], x[u, items[0]] = 1, 0
    return TrainData(sp.csr_matrix(x), sp.csr_matrix(v), seed=0)


def test_scores_are_x_times_b_and_cold_items_score_zero():
    data = _data()
    model = EASE(lam=5.0).fit(data)
    x = data.train.toarray()
    warm = data.warm_items
    b = ease_weights(x[:, warm].T @ x[:, warm], 5.0)
    scores = model.score(np.arange(40))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, warm], x[:, warm] @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scores[:, ~warm], 0.0)


def test_lambda_chosen_on_validation_and_frozen_for_refit():
    model = EASE(grid=(1.0, 10.0, 100.0)).fit(_data())
    info = model.extra_info()
    assert info["tuned"] and set(info["valid_recall@20"]) == {"1.0", "10.0", "100.0"}
    best = max(model.valid_recalls, key=model.valid_recalls.get)
    assert model.chosen == best
    assert model.refit_overrides() == {"lam": best}
    assert EASE(lam=3.0).fit(_data()).refit_overrides() == {}


def test_without_validation_keeps_the_middle_of_the_grid():
    model = EASE(grid=(1.0, 10.0, 100.0)).fit(_data(valid=False))
    assert model.chosen == 10.0 and model.refit_overrides() == {}


def test_refuses_a_catalogue_past_the_memory_limit():
    assert max_items(8 * 2**30) == 16384
    with pytest.raises(DatasetError, match="limit is 5 warm items"):
        EASE(lam=1.0, memory_gb=5**2 * 32 / 2**30).fit(_data())


def test_score_before_fit_raises():
    with pytest.raises(RuntimeError):
        EASE().score(np.arange(3))
