"""Rating threshold and k-core, checked on interactions small enough to filter by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.datasets import InteractionDataset
from recsys.errors import DatasetError
from recsys.lab.filters import Filters, apply_filters, k_core


def _dataset() -> InteractionDataset:
    # users 0-2, items 0-3 (item 3 never interacted with)
    users = np.array([0, 0, 0, 1, 1, 2])
    items = np.array([0, 1, 2, 0, 1, 0])
    ratings = np.array([5.0, 2.0, 4.0, 4.0, 5.0, 1.0])
    feats = {"text": np.arange(8, dtype=np.float32).reshape(4, 2)}
    return InteractionDataset(
        "toy",
        3,
        4,
        users,
        items,
        ratings=ratings,
        item_features=feats,
        item_tokens=["a", "b", "c", "d"],
        user_tokens=["x", "y", "z"],
    )


def test_rating_threshold_keeps_items_and_drops_emptied_users():
    ds = apply_filters(_dataset(), Filters(min_rating=4))
    # kept: (0,0,5) (0,2,4) (1,0,4) (1,1,5); user 2 (rating 1 only) leaves, items stay
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 4, 4)
    assert ds.user_tokens == ["x", "y"]
    np.testing.assert_array_equal(ds.items, [0, 2, 0, 1])
    np.testing.assert_array_equal(ds.ratings, [5, 4, 4, 5])


def test_k_core_is_iterated_and_renumbers():
    # 2-core: item 2 (1 interaction) and user 2 (1) go; then user 0 has 2, user 1 has 2; items 0 and 1 have 2
    ds = k_core(_dataset(), 2)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 4)
    assert ds.item_tokens == ["a", "b"] and ds.user_tokens == ["x", "y"]
    np.testing.assert_array_equal(ds.item_features["text"], [[0, 1], [2, 3]])
    # 3-core: nothing survives
    with pytest.raises(DatasetError, match="3-core of toy is empty"):
        k_core(_dataset(), 3)


def test_filters_describe_and_validate():
    assert Filters(min_rating=4, k_core=5).describe() == (
        "ratings >= 4, 5-core (users and items with >= 5 interactions)"
    )
    assert not Filters().active and not Filters(k_core=1).active
    with pytest.raises(DatasetError, match="finite"):
        Filters(min_rating=float("nan"))
    with pytest.raises(DatasetError, match="k-core"):
        Filters(k_core=0)
    bare = InteractionDataset("x", 1, 1, np.array([0]), np.array([0]))
    with pytest.raises(DatasetError, match="no rating column"):
        apply_filters(bare, Filters(min_rating=3))
    with pytest.raises(DatasetError, match="rated >= 9"):
        apply_filters(_dataset(), Filters(min_rating=9))


def test_given_split_labels_follow_the_filter(two_clusters):
    ds = two_clusters.dataset
    filtered = apply_filters(ds, Filters(k_core=3))
    assert filtered.split is not None and filtered.split.shape == filtered.users.shape
    assert filtered.n_items == len(np.unique(ds.items))  # the 8 never-used items leave
