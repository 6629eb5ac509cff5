"""Shared torch training utilities: sampling, validation recall, early stopping, feature normalisation."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recsys.errors import DatasetError
from recsys.lab.training import (
    EarlyStopping,
    check_train_data,
    normalise_features,
    recall_at_k,
    sample_triples,
    score_in_batches,
    validation_recall,
)


def _train() -> sp.csr_matrix:
    rows = [0, 0, 0, 1, 1, 2]
    cols = [0, 1, 2, 3, 4, 0]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(3, 8))


def test_sample_triples_negatives_are_not_positives_and_come_from_pool():
    train = _train()
    pool = np.array([0, 1, 2, 3, 4, 5, 6])  # item 7 is "cold": never a negative
    users, pos, neg = sample_triples(train, np.random.default_rng(0), negative_pool=pool)
    assert users.size == train.nnz
    assert sorted(zip(users, pos, strict=True)) == sorted(zip(*train.nonzero(), strict=True))
    dense = train.toarray()
    for _ in range(50):
        users, pos, neg = sample_triples(train, np.random.default_rng(_), negative_pool=pool)
        assert not dense[users, neg].any()
        assert np.isin(neg, pool).all()


def test_sample_triples_is_seeded():
    a = sample_triples(_train(), np.random.default_rng(3))
    b = sample_triples(_train(), np.random.default_rng(3))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_recall_at_k_hand_computed():
    scores = np.array([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.3, 0.4]], np.float32)
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    target = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 1]], np.float32))
    # user 0: item 0 masked, top-2 = {1, 3} -> 1 hit of 2; user 1: top-2 = {3, 2} -> 1 hit of 2
    assert recall_at_k(scores, train, target, k=2) == pytest.approx(0.5)
    # user 0 top-1 = {1}: 1/2; user 1 top-1 = {3}: 1/2
    assert recall_at_k(scores, train, target, k=1) == pytest.approx(0.5)
    assert validation_recall(lambda u: scores[u], train, target, k=3, batch_size=1) == pytest.approx(0.75)


def test_early_stopping_keeps_best_state_and_stops_after_patience():
    module = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    with torch.no_grad():
        module.weight.fill_(1.0)
    assert not stopper.update(0.5, 1, module)
    with torch.no_grad():
        module.weight.fill_(2.0)
    assert not stopper.update(0.4, 2, module)
    assert stopper.update(0.3, 3, module)
    stopper.restore(module)
    assert stopper.best_epoch == 1
    assert torch.all(module.weight == 1.0)


def test_normalise_features_centres_and_scales_rows():
    rng = np.random.default_rng(0)
    names, feats = normalise_features({"b": rng.normal(size=(5, 3)) * 1000, "a": rng.normal(size=(5, 2))}, 5)
    assert names == ["a", "b"]
    for f in feats:
        assert f.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("max_dim", [None, 3])
def test_normalise_features_in_blocks_and_through_the_covariance_match_the_whole_matrix(monkeypatch, max_dim):
    rng = np.random.default_rng(1)
    features = {"a": (rng.normal(size=(40, 6)) * [50, 20, 5, 1, 1, 1] + 7).astype(np.float32)}
    _, (whole,) = normalise_features(features, 40, max_dim)
    monkeypatch.setattr("recsys.lab.training.FEATURE_BLOCK_ROWS", 7)
    _, (blocks,) = normalise_features(features, 40, max_dim)
    np.testing.assert_array_equal(blocks, whole)
    # past PCA_FULL_SVD_UP_TO the components come from the covariance: the same rows, float noise aside
    monkeypatch.setattr("recsys.lab.training.PCA_FULL_SVD_UP_TO", 10)
    _, (covariance,) = normalise_features(features, 40, max_dim)
    np.testing.assert_allclose(covariance, whole, atol=1e-5)


@pytest.mark.parametrize(
    "features",
    [
        {},
        {"a": np.zeros((4, 2), np.float32)},
        {"a": np.full((5, 2), np.nan, np.float32)},
        {"a": np.array([["x", "y"]] * 5)},
        {"a": np.full((5, 2), 1 + 1j)},
    ],
)
def test_normalise_features_rejects_bad_input(features):
    with pytest.raises(DatasetError):
        normalise_features(features, 5)


def test_check_train_data_rejects_empty_training():
    with pytest.raises(DatasetError, match="no interactions"):
        check_train_data(sp.csr_matrix((3, 4), dtype=np.float32), "m")


def test_score_in_batches_concatenates_in_order():
    fn = lambda u: np.repeat(u[:, None], 2, axis=1).astype(np.float64)  # noqa: E731
    out = score_in_batches(fn, np.arange(5), n_items=2, batch_size=2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], np.arange(5))
    assert score_in_batches(fn, np.arange(0), n_items=2).shape == (0, 2)


@settings(deadline=None)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(1, 12), st.integers(1, 6)),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False) | st.sampled_from([np.nan, np.inf]),
    )
    | hnp.arrays(st.sampled_from([np.int64, np.bool_]), st.tuples(st.integers(1, 12), st.integers(1, 6))),
    max_dim=st.none() | st.integers(1, 4),
)
def test_normalise_features_gives_finite_unit_rows_or_a_dataset_error(x, max_dim):
    try:
        names, (out,) = normalise_features({"m": x}, x.shape[0], max_dim)
    except DatasetError as exc:
        assert "m" in str(exc)
        return
    assert np.isfinite(x.astype(np.float64)).all()
    assert out.dtype == np.float32 and out.shape[0] == x.shape[0]
    assert np.isfinite(out).all()
    norms = np.linalg.norm(out, axis=1)
    assert np.all(norms < 1 + 1e-4)  # unit rows, or rows that were (numerically) zero once centred
