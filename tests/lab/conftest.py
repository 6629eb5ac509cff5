"""A tiny dataset where the right answer is known: two user groups, two item clusters.

Users of group g interact only with items of cluster g; every modality's features encode the
cluster (text cleanly, audio noisily). Items 16-19 and 36-39 (four per cluster) have no
interactions at all - cold items whose cluster only the features reveal - and the last two
users have no interactions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.datasets import TEST, TRAIN, VALID, InteractionDataset

N_PER_CLUSTER = 20
N_WARM_PER_CLUSTER = 16
USERS_PER_GROUP = 30
N_ITEMS = 2 * N_PER_CLUSTER
N_USERS = 2 * USERS_PER_GROUP + 2  # two users with no interactions at all
EMPTY_USERS = np.array([N_USERS - 2, N_USERS - 1])
PER_USER = 8


def item_cluster() -> np.ndarray:
    return np.repeat([0, 1], N_PER_CLUSTER)


def user_group() -> np.ndarray:
    """Group per user (-1 for the users with no interactions)."""
    return np.r_[np.repeat([0, 1], USERS_PER_GROUP), [-1, -1]]


def cold_items() -> np.ndarray:
    idx = np.arange(N_ITEMS)
    return (idx % N_PER_CLUSTER) >= N_WARM_PER_CLUSTER


def _features(rng: np.random.Generator, dim: int, noise: float) -> np.ndarray:
    f = rng.normal(0.0, noise, size=(N_ITEMS, dim))
    f[np.arange(N_ITEMS), item_cluster()] += 1.0
    return f.astype(np.float32)


def make_dataset(seed: int = 0) -> InteractionDataset:
    rng = np.random.default_rng(seed)
    users, items, labels = [], [], []
    for u in range(2 * USERS_PER_GROUP):
        g = u // USERS_PER_GROUP
        # Warm items of the cluster; item popularity is skewed so popularity has a clear order.
        warm = np.arange(g * N_PER_CLUSTER, g * N_PER_CLUSTER + N_WARM_PER_CLUSTER)
        p = np.linspace(2.0, 1.0, len(warm))
        chosen = rng.choice(warm, size=PER_USER, replace=False, p=p / p.sum())
        users += [u] * PER_USER
        items += chosen.tolist()
        labels += [TRAIN] * (PER_USER - 2) + [VALID, TEST]
    return InteractionDataset(
        name="two-clusters",
        n_users=N_USERS,
        n_items=N_ITEMS,
        users=np.array(users),
        items=np.array(items),
        split=np.array(labels),
        timestamps=np.arange(len(users), dtype=np.float64),
        item_features={"text": _features(rng, 6, 0.15), "audio": _features(rng, 5, 0.4)},
        modality_kinds={"text": "text", "audio": "audio"},
    )


class TwoClusters:
    """The synthetic dataset plus the ground truth tests check against."""

    def __init__(self, seed: int = 0) -> None:
        self.dataset = make_dataset(seed)
        self.item_cluster = item_cluster()
        self.user_group = user_group()
        self.cold = cold_items()
        self.empty_users = EMPTY_USERS

    def write_mmrec(self, folder: Path, modalities: tuple[str, ...] | None = None) -> Path:
        """The dataset as an MMRec folder (``toy.inter`` with its x_label split, one ``.npy`` per modality)."""
        ds = self.dataset
        folder.mkdir(parents=True)
        rows = "\n".join(f"{u}\t{i}\t1\t{s}" for u, i, s in zip(ds.users, ds.items, ds.split, strict=True))
        (folder / "toy.inter").write_text("userID\titemID\trating\tx_label\n" + rows + "\n")
        for m, f in ds.item_features.items():
            if modalities is None or m in modalities:
                np.save(folder / f"{m}.npy", f)
        return folder


@pytest.fixture(scope="session")
def two_clusters() -> TwoClusters:
    return TwoClusters()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny problems: torch's intra-op threads only add synchronisation (10x slower on a busy machine).

    Fits run in the train thread role (recsys.threads), so that role is overridden too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_TRAIN_THREADS", "1")
        yield
    torch.set_num_threads(threads)
