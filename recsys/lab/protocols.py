"""Evaluation protocols: how a dataset's interactions become train / validation / test.

Every protocol returns a :class:`Split` whose ``description`` travels with every reported
figure, so a number is never read without knowing how it was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.datasets import TEST, TRAIN, VALID, InteractionDataset
from recsys.errors import DatasetError
from recsys.lab.base import TrainData

PROTOCOLS = ("given", "random", "temporal", "leave-one-out", "cold-items")


def applicable_protocols(ds: InteractionDataset) -> list[str]:
    """The protocols ``ds`` supports: ``given`` needs split labels, ``temporal`` timestamps."""
    return [
        p
        for p in PROTOCOLS
        if (p != "given" or ds.split is not None) and (p != "temporal" or ds.timestamps is not None)
    ]


def default_protocol(ds: InteractionDataset) -> str:
    """``given`` when the dataset ships its own split (MMRec ``x_label``), else a seeded ``random`` split."""
    return "given" if ds.split is not None else "random"


@dataclass
class Split:
    """Train data for the models, the held-out test matrix and the items ranked for it."""

    protocol: str
    description: str
    train: TrainData
    test: sp.csr_matrix
    candidates: np.ndarray  # bool (n_items,): items ranked for test users

    @property
    def cold_items(self) -> np.ndarray:
        """Items with no training interaction."""
        return ~self.train.warm_items

    def stats(self) -> dict[str, int]:
        test_users = np.diff(self.test.indptr) > 0
        return {
            "users": int(self.train.n_users),
            "items": int(self.train.n_items),
            "train_interactions": int(self.train.train.nnz),
            "valid_interactions": int(self.train.valid.nnz),
            "test_interactions": int(self.test.nnz),
            "test_users": int(test_users.sum()),
            "candidate_items": int(self.candidates.sum()),
            "cold_items": int(self.cold_items.sum()),
        }


def _without(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """Entries of binary ``a`` that are not in ``b`` (a test item already trained on is no test)."""
    out = (a - a.multiply(b)).tocsr()
    out.eliminate_zeros()
    return out


def _per_user_fraction_split(
    users: np.ndarray, order_key: np.ndarray, test_frac: float, valid_frac: float
) -> np.ndarray:
    """Label each interaction TRAIN/VALID/TEST: per user, the last ``test_frac`` by ``order_key`` go to test.

    Users with fewer than 3 interactions keep them all in train (nothing sensible to hold out).
    """
    order = np.lexsort((order_key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    count = np.repeat(counts, counts)
    n_test = np.where(count >= 3, np.round(count * test_frac), 0)
    if test_frac > 0:  # every user with enough history gets at least one test interaction
        n_test = np.where(count >= 3, np.maximum(1, n_test), 0)
    n_valid = np.where(count >= 3, np.round(count * valid_frac), 0)
    labels_sorted = np.full(len(users), TRAIN, dtype=np.int64)
    labels_sorted[rank >= count - n_test] = TEST
    labels_sorted[(rank >= count - n_test - n_valid) & (rank < count - n_test)] = VALID
    labels = np.empty_like(labels_sorted)
    labels[order] = labels_sorted
    return labels


def _from_labels(ds: InteractionDataset, labels: np.ndarray, protocol: str, desc: str, seed: int) -> Split:
    train = ds.matrix(labels == TRAIN)
    valid = _without(ds.matrix(labels == VALID), train)
    test = _without(ds.matrix(labels == TEST), train)
    if train.nnz == 0 or test.nnz == 0:
        raise DatasetError(f"The {protocol} split of {ds.name} leaves an empty train or test set.")
    data = TrainData(train=train, valid=valid, item_features=ds.item_features, seed=seed)
    return Split(protocol, desc, data, test, np.ones(ds.n_items, dtype=bool))


def given_split(ds: InteractionDataset, seed: int = 0) -> Split:
    """The dataset's own split (MMRec ``x_label``: 0 train, 1 valid, 2 test); all items ranked."""
    if ds.split is None:
        raise DatasetError(
            f"Dataset {ds.name} has no given split (no x_label column); use --protocol "
            f"{' / '.join(p for p in applicable_protocols(ds) if p != 'given')}."
        )
    return _from_labels(ds, ds.split, "given", "given split (x_label 0/1/2), full ranking over all items", seed)


def random_split(ds: InteractionDataset, seed: int = 0, test_frac: float = 0.2, valid_frac: float = 0.1) -> Split:
    """Seeded per-user random holdout of ``test_frac`` (test) and ``valid_frac`` (validation)."""
    key = np.random.default_rng(seed).random(ds.n_interactions)
    labels = _per_user_fraction_split(ds.users, key, test_frac, valid_frac)
    fractions = f"{1 - test_frac - valid_frac:.0%}/{valid_frac:.0%}/{test_frac:.0%}"
    desc = f"per-user random split ({fractions}, seed {seed})"
    return _from_labels(ds, labels, "random", desc + ", full ranking over all items", seed)


def temporal_split(ds: InteractionDataset, seed: int = 0, test_frac: float = 0.2, valid_frac: float = 0.1) -> Split:
    """Per user, the latest ``test_frac`` of interactions are test, the ones before them validation."""
    if ds.timestamps is None:
        raise DatasetError(
            f"Dataset {ds.name} has no timestamps, so a temporal split is impossible; use --protocol random."
        )
    # Ties in time are broken by a seeded random key so equal timestamps do not favour file order.
    tie = np.random.default_rng(seed).random(ds.n_interactions)
    key = np.lexsort((tie, ds.timestamps)).argsort()
    labels = _per_user_fraction_split(ds.users, key, test_frac, valid_frac)
    desc = f"per-user temporal split (latest {test_frac:.0%} test, previous {valid_frac:.0%} validation)"
    return _from_labels(ds, labels, "temporal", desc + ", full ranking over all items", seed)


def leave_one_out_split(ds: InteractionDataset, seed: int = 0) -> Split:
    """Per user, the last interaction is test and the one before it validation (RecBole's ``LS``).

    "Last" is by timestamp when the dataset has them (ties broken by a seeded key), else a
    seeded random pick. Users with fewer than 3 interactions keep them all in training.
    """
    rng = np.random.default_rng(seed)
    tie = rng.random(ds.n_interactions)
    key = np.lexsort((tie, ds.timestamps)).argsort() if ds.timestamps is not None else tie
    order = np.lexsort((key, ds.users))
    sorted_users = ds.users[order]
    last = np.r_[sorted_users[1:] != sorted_users[:-1], True]
    second = np.r_[last[1:], False] & ~last
    counts = np.bincount(ds.users, minlength=ds.n_users)
    enough = counts[sorted_users] >= 3
    labels_sorted = np.full(ds.n_interactions, TRAIN, dtype=np.int64)
    labels_sorted[last & enough] = TEST
    labels_sorted[second & enough] = VALID
    labels = np.empty_like(labels_sorted)
    labels[order] = labels_sorted
    by = "latest by timestamp" if ds.timestamps is not None else f"picked at random (seed {seed})"
    desc = f"leave-one-out: per user the last interaction ({by}) is test, the one before validation"
    return _from_labels(ds, labels, "leave-one-out", desc + ", full ranking over all items", seed)


def cold_items_split(ds: InteractionDataset, seed: int = 0, cold_frac: float = 0.2, valid_frac: float = 0.1) -> Split:
    """A seeded ``cold_frac`` of items leaves training entirely; only they are ranked for test users.

    Every interaction with a cold item is test. The warm interactions are split per user into
    train and validation (``valid_frac``, seeded), so tuning never sees a cold item.
    """
    if not 0 < cold_frac < 1:
        raise DatasetError(f"cold_frac must be between 0 and 1, got {cold_frac}.")
    rng = np.random.default_rng(seed)
    interacted = np.unique(ds.items)
    n_cold = max(1, round(cold_frac * len(interacted)))
    cold = np.zeros(ds.n_items, dtype=bool)
    cold[rng.choice(interacted, size=n_cold, replace=False)] = True
    is_cold = cold[ds.items]
    labels = np.full(ds.n_interactions, TEST, dtype=np.int64)
    warm_idx = np.flatnonzero(~is_cold)
    warm_labels = _per_user_fraction_split(ds.users[warm_idx], rng.random(len(warm_idx)), 0.0, valid_frac)
    labels[warm_idx] = warm_labels
    split = _from_labels(
        ds,
        labels,
        "cold-items",
        f"cold-start items: {n_cold} of {len(interacted)} items ({cold_frac:.0%}, seed {seed}) removed from "
        f"training; test users rank only the cold items; validation {valid_frac:.0%} of warm interactions",
        seed,
    )
    split.candidates = cold
    return split


def make_split(ds: InteractionDataset, protocol: str, seed: int = 0, **kwargs: float) -> Split:
    """Build the split for ``protocol`` (one of :data:`PROTOCOLS`)."""
    builders = {
        "given": given_split,
        "random": random_split,
        "temporal": temporal_split,
        "leave-one-out": leave_one_out_split,
        "cold-items": cold_items_split,
    }
    if protocol not in builders:
        raise DatasetError(f"Unknown protocol {protocol!r}; use one of: {', '.join(PROTOCOLS)}.")
    return builders[protocol](ds, seed=seed, **kwargs)
