"""Early and late fusion's weights, tuned on validation in blocks of users."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.lab import training
from recsys.lab.protocols import make_split
from recsys.lab.registry import create_model


@pytest.mark.parametrize("name", ["early-fusion", "late-fusion"])
def test_weights_tuned_over_blocks_of_users_are_those_of_one_block(two_clusters, monkeypatch, name):
    """Over a large catalogue the tuning users' score stacks are made a block at a time (at 1M
    items 3,000 users' stacks held 24 GB): blocks of one to five users choose the weights, and
    reach the validation recall, that one block of every user does."""
    split = make_split(two_clusters.dataset, "given")
    whole = create_model(name, tune_k=3).fit(split.train)  # top 3: weights other than uniform win here
    assert whole.tuned and whole.grid_size > 1 and 0 < whole.valid_recall < 1 and whole.weights.min() < 0.5
    for users in (1, 5):
        monkeypatch.setattr(training, "SCORE_BLOCK_BYTES", users * 4 * split.train.n_items)
        blocks = create_model(name, tune_k=3).fit(split.train)
        np.testing.assert_array_equal(blocks.weights, whole.weights)
        assert blocks.valid_recall == pytest.approx(whole.valid_recall, rel=1e-12)
