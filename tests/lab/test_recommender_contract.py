"""The contract every registered recommender passes, on a dataset where the right answer is known.

Parametrised over the registry: models whose module is importable in this checkout join
automatically (``content`` once per modality of the synthetic dataset).
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.lab.protocols import given_split
from recsys.lab.registry import create_model, default_models, spec_for

MODALITIES = ["text", "audio"]
MODELS = default_models(MODALITIES)


def test_builtin_models_are_all_available():
    for name in [
        "random",
        "popularity",
        "itemknn",
        "implicit-bpr",
        "implicit-als",
        "content:text",
        "early-fusion",
        "late-fusion",
    ]:
        assert name in MODELS


@pytest.fixture(scope="module")
def split(two_clusters):
    return given_split(two_clusters.dataset, seed=3)


@pytest.fixture(scope="module")
def fitted(split):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = create_model(name).fit(split.train)
        return cache[name]

    return get


def _auc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """Share of (positive, negative) pairs ranked correctly (ties count half)."""
    diff = scores[pos][:, None] - scores[neg][None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@pytest.mark.parametrize("name", MODELS)
def test_shape_dtype_finite_and_batch_independent(name, split, fitted, two_clusters):
    model = fitted(name)
    users = np.arange(split.train.n_users)
    scores = model.score(users)
    assert scores.shape == (len(users), split.train.n_items)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    some = np.array([5, 0, 40])
    np.testing.assert_allclose(model.score(some), scores[some], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_users_without_training_interactions(name, fitted, two_clusters):
    scores = fitted(name).score(two_clusters.empty_users)
    assert scores.shape == (2, two_clusters.dataset.n_items)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(name, split, fitted):
    again = create_model(name).fit(split.train)
    users = np.arange(10)
    np.testing.assert_allclose(again.score(users), fitted(name).score(users), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [m for m in MODELS if spec_for(m).personalised])
def test_ranks_own_cluster_above_the_other(name, split, fitted, two_clusters):
    """On warm items the user has not seen, the own cluster beats the other one."""
    model = fitted(name)
    seen = split.train.train.toarray() > 0
    warm = ~two_clusters.cold
    aucs = []
    for u in range(2 * 30):
        g = two_clusters.user_group[u]
        s = model.score(np.array([u]))[0]
        own = np.flatnonzero((two_clusters.item_cluster == g) & warm & ~seen[u])
        other = np.flatnonzero((two_clusters.item_cluster != g) & warm)
        aucs.append(_auc(s, own, other))
    assert np.mean(aucs) > 0.9, f"{name}: mean AUC own vs other cluster {np.mean(aucs):.3f}"


@pytest.mark.parametrize("name", [m for m in MODELS if spec_for(m).ranks_cold])
def test_ranks_cold_items_of_own_cluster_first(name, fitted, two_clusters):
    model = fitted(name)
    aucs = []
    for u in range(2 * 30):
        g = two_clusters.user_group[u]
        s = model.score(np.array([u]))[0]
        own = np.flatnonzero((two_clusters.item_cluster == g) & two_clusters.cold)
        other = np.flatnonzero((two_clusters.item_cluster != g) & two_clusters.cold)
        aucs.append(_auc(s, own, other))
    assert np.mean(aucs) > 0.9, f"{name}: mean AUC on cold items {np.mean(aucs):.3f}"


def test_popularity_ranks_by_training_count(split, fitted):
    counts = np.asarray(split.train.train.sum(axis=0)).ravel()
    scores = fitted("popularity").score(np.array([0, 1]))
    assert scores[0].argmax() == counts.argmax()
    np.testing.assert_array_equal(scores[0], scores[1])


def test_random_differs_between_seeds(split):
    from dataclasses import replace

    a = create_model("random").fit(split.train).score(np.arange(3))
    b = create_model("random").fit(replace(split.train, seed=split.train.seed + 1)).score(np.arange(3))
    assert not np.allclose(a, b)
