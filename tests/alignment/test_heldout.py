"""``recsys.alignment.heldout``: extra pairs join every training set and never a test set, and
no head (outer or inner) is applied to an item it was trained on."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.alignment.heldout import (
    Candidate,
    cross_source,
    fold_splits,
    near_duplicates,
    out_of_fold,
    selection_score,
    training_set,
)
from recsys.alignment.projection import TrainConfig
from recsys.alignment.training import Pairs
from recsys.errors import InputError

DIM = 6


def _pairs(n: int, offset: float, prefix: str, rng: np.random.Generator) -> Pairs:
    """``n`` pairs whose first feature is a unique id (offset + i), so a row is recognisable anywhere."""
    source = rng.normal(size=(n, DIM)).astype(np.float32)
    source[:, 0] = offset + np.arange(n)
    target = rng.normal(size=(n, DIM)).astype(np.float32)
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    return Pairs(source, target, [f"{prefix}{i}" for i in range(n)], np.arange(n))


class SpyFit:
    """A fake ``fit`` recording each training set and what its head was applied to."""

    def __init__(self) -> None:
        self.calls: list[dict[str, set[float]]] = []

    def __call__(self, train: Pairs, config: TrainConfig):
        call = {"train": set(train.source[:, 0].tolist()), "applied": set()}
        self.calls.append(call)

        def transform(x: np.ndarray) -> np.ndarray:
            call["applied"].update(x[:, 0].tolist())
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        return transform


CATALOGUE_IDS = 0.0  # catalogue rows: ids 0 .. n-1
EXTRA_IDS = 1000.0  # extra rows: ids 1000 ..


@pytest.mark.parametrize("n_candidates", [1, 3])
def test_extra_pairs_train_every_fold_and_are_never_tested(n_candidates: int) -> None:
    rng = np.random.default_rng(0)
    pairs = _pairs(30, CATALOGUE_IDS, "item ", rng)
    extra = _pairs(12, EXTRA_IDS, "extra ", rng)
    grid = [Candidate(TrainConfig(epochs=e), catalogue_repeat=r) for e, r in [(1, 1), (2, 4), (3, 2)][:n_candidates]]
    spy = SpyFit()
    result = out_of_fold(pairs, 5, spy, grid, extra=extra, inner_folds=3)
    extra_ids = set(extra.source[:, 0].tolist())
    assert len(spy.calls) == 5 * (1 + (3 * n_candidates if n_candidates > 1 else 0))
    for call in spy.calls:
        assert extra_ids <= call["train"]  # every training set holds every extra pair
        assert not call["applied"] & extra_ids  # no head is ever applied to an extra pair
        assert not call["applied"] & call["train"]  # nor to anything it trained on
    tested = [c["applied"] for c in spy.calls[-1 :: -1] if c["applied"]]
    assert set().union(*tested) == set(pairs.source[:, 0].tolist())
    assert result.vectors.shape == (30, DIM) and len(result.chosen) == 5


def test_outer_test_fold_never_reaches_the_inner_choice() -> None:
    rng = np.random.default_rng(1)
    pairs = _pairs(25, CATALOGUE_IDS, "item ", rng)
    spy = SpyFit()
    grid = [Candidate(TrainConfig(epochs=1)), Candidate(TrainConfig(epochs=2))]
    out_of_fold(pairs, 5, spy, grid, inner_folds=2)
    per_fold = 1 + 2 * 2  # inner fits (candidates x inner folds), then the outer fit
    for k, (_, test) in enumerate(fold_splits(pairs, 5)):
        held_out = set(pairs.source[test, 0].tolist())
        calls = spy.calls[k * per_fold : (k + 1) * per_fold]
        for call in calls[:-1]:
            assert not (call["train"] | call["applied"]) & held_out
        assert calls[-1]["applied"] == held_out


def test_cross_source_trains_on_extra_only() -> None:
    rng = np.random.default_rng(2)
    pairs = _pairs(10, CATALOGUE_IDS, "item ", rng)
    extra = _pairs(15, EXTRA_IDS, "extra ", rng)
    spy = SpyFit()
    out = cross_source(pairs, extra, spy, [Candidate(TrainConfig(epochs=1)), Candidate(TrainConfig(epochs=2))])
    catalogue_ids = set(pairs.source[:, 0].tolist())
    for call in spy.calls:
        assert not call["train"] & catalogue_ids
    assert spy.calls[-1]["applied"] == catalogue_ids
    assert out.vectors.shape == (10, DIM)


def test_training_set_repeats_catalogue_rows_then_appends_extra() -> None:
    rng = np.random.default_rng(3)
    pairs = _pairs(6, CATALOGUE_IDS, "item ", rng)
    extra = _pairs(3, EXTRA_IDS, "extra ", rng)
    train = training_set(pairs, np.array([1, 4]), extra, repeat=3)
    assert train.source[:, 0].tolist() == [1, 4, 1, 4, 1, 4, 1000, 1001, 1002]
    assert training_set(pairs, np.array([2]), None).texts == ["item 2"]


def test_near_duplicates_and_fold_errors() -> None:
    rng = np.random.default_rng(4)
    pairs = _pairs(5, CATALOGUE_IDS, "item ", rng)
    copies = np.concatenate([pairs.source[:1] * 2.0, -pairs.source[1:2]])  # a scaled copy, and an opposite
    extra = Pairs(copies, pairs.target[:2], ["a", "b"], np.arange(2))
    assert near_duplicates(extra, pairs).tolist() == [True, False]
    with pytest.raises(InputError):
        fold_splits(pairs, 6)


def test_selection_score_is_perfect_for_the_text_vectors_themselves() -> None:
    rng = np.random.default_rng(5)
    pairs = _pairs(12, CATALOGUE_IDS, "item ", rng)
    r10, mrr = selection_score(pairs.target, pairs)
    assert r10 == pytest.approx(1.0) and mrr == pytest.approx(1.0)
