"""Splits: who ends up in train, validation and test under each protocol."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.datasets import InteractionDataset
from recsys.errors import DatasetError
from recsys.lab.protocols import make_split


def _dense(m):
    return m.toarray() > 0


def test_given_uses_x_label(two_clusters):
    ds = two_clusters.dataset
    split = make_split(ds, "given")
    assert split.train.train.nnz == (ds.split == 0).sum()
    assert split.test.nnz == (ds.split == 2).sum()
    assert split.candidates.all()
    assert "given" in split.description


def test_given_without_labels_says_what_to_do(two_clusters):
    ds = two_clusters.dataset
    no_split = InteractionDataset("x", ds.n_users, ds.n_items, ds.users, ds.items)
    with pytest.raises(DatasetError, match="--protocol random"):
        make_split(no_split, "given")
    with pytest.raises(DatasetError, match="no timestamps"):
        make_split(no_split, "temporal")
    with pytest.raises(DatasetError, match="Unknown protocol"):
        make_split(no_split, "leave-one-back")


@pytest.mark.parametrize("protocol", ["random", "temporal"])
def test_per_user_splits_are_disjoint_complete_and_seeded(two_clusters, protocol):
    ds = two_clusters.dataset
    a, b, c = (make_split(ds, protocol, seed=s) for s in (1, 1, 2))
    train, valid, test = _dense(a.train.train), _dense(a.train.valid), _dense(a.test)
    assert not (train & test).any() and not (train & valid).any() and not (valid & test).any()
    assert (train | valid | test).sum() == ds.matrix().nnz
    per_user_test = test.sum(axis=1)[:60]
    assert (per_user_test == 2).all()  # 8 interactions each: round(0.2 * 8) = 2
    np.testing.assert_array_equal(_dense(b.test), test)
    if protocol == "random":
        assert not np.array_equal(_dense(c.test), test)


def test_temporal_holds_out_the_latest(two_clusters):
    ds = two_clusters.dataset
    split = make_split(ds, "temporal")
    latest = np.zeros((ds.n_users, ds.n_items), dtype=bool)
    for u in range(60):  # timestamps increase with row order: the user's last two rows are test
        rows = np.flatnonzero(ds.users == u)[-2:]
        latest[u, ds.items[rows]] = True
    np.testing.assert_array_equal(_dense(split.test), latest)


def test_cold_items_leave_training_entirely(two_clusters):
    ds = two_clusters.dataset
    split = make_split(ds, "cold-items", seed=4)
    cold = split.candidates
    assert cold.sum() == round(0.2 * len(np.unique(ds.items)))
    assert not _dense(split.train.train)[:, cold].any()
    assert not _dense(split.train.valid)[:, cold].any()
    test = _dense(split.test)
    assert test[:, cold].sum() == ds.matrix()[:, cold].nnz  # every cold interaction is test
    assert not test[:, ~cold].any()
    assert not (cold & two_clusters.cold).any()  # drawn among items that have interactions to test
    assert split.train.valid.nnz > 0
    assert "cold-start" in split.description


def test_default_protocol_follows_the_data(two_clusters):
    from recsys.lab.protocols import applicable_protocols, default_protocol

    ds = two_clusters.dataset
    assert default_protocol(ds) == "given"
    bare = InteractionDataset("x", ds.n_users, ds.n_items, ds.users, ds.items)
    assert default_protocol(bare) == "random"
    assert applicable_protocols(bare) == ["random", "leave-one-out", "cold-items"]
    assert "given" in applicable_protocols(ds) and "temporal" in applicable_protocols(ds)


def test_leave_one_out_holds_out_the_latest_per_user():
    # user 0: 4 interactions at times 10, 40, 20, 30 -> test item 1 (t=40), validation item 3 (t=30)
    # user 1: 2 interactions -> all in training
    users = np.array([0, 0, 0, 0, 1, 1])
    items = np.array([0, 1, 2, 3, 0, 1])
    stamps = np.array([10.0, 40.0, 20.0, 30.0, 5.0, 6.0])
    ds = InteractionDataset("loo", 2, 4, users, items, timestamps=stamps)
    split = make_split(ds, "leave-one-out")
    assert _dense(split.test)[0].nonzero()[0].tolist() == [1]
    assert _dense(split.train.valid)[0].nonzero()[0].tolist() == [3]
    assert _dense(split.train.train)[0].nonzero()[0].tolist() == [0, 2]
    assert _dense(split.train.train)[1].nonzero()[0].tolist() == [0, 1]
    assert "latest by timestamp" in split.description


def test_leave_one_out_without_timestamps_is_seeded(two_clusters):
    ds = two_clusters.dataset
    bare = InteractionDataset("x", ds.n_users, ds.n_items, ds.users, ds.items)
    a, b = make_split(bare, "leave-one-out", seed=3), make_split(bare, "leave-one-out", seed=3)
    np.testing.assert_array_equal(_dense(a.test), _dense(b.test))
    assert (_dense(a.test).sum(axis=1)[:60] == 1).all() and (_dense(a.train.valid).sum(axis=1)[:60] == 1).all()
    assert "random (seed 3)" in a.description
