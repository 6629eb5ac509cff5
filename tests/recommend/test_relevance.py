"""The weak-match threshold: its scale per strategy and similarity, and the split of a result list."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from recsys.errors import InputError
from recsys.fusion import RRF_K, SIMILARITIES, STRATEGIES
from recsys.recommend import relevance


def test_every_setting_has_a_default_inside_its_scale():
    for strategy in STRATEGIES:
        for similarity in SIMILARITIES:
            scale = relevance.threshold_scale(strategy, similarity)
            assert scale.low <= scale.default <= scale.high
            assert scale.clamp(99) == scale.high and scale.clamp(-99) == scale.low


def test_rrf_threshold_lives_on_the_reciprocal_rank_scale():
    scale = relevance.threshold_scale("rrf")
    assert scale.high == pytest.approx(1 / (RRF_K + 1), abs=1e-4)
    assert scale.default == pytest.approx(1 / (RRF_K + relevance.RRF_DEFAULT_RANK), abs=1e-4)
    assert scale.format(scale.default) == "0.0125"
    assert "rank 20" in relevance.threshold_meaning("rrf", "cosine", scale.default)
    assert "any rank" in relevance.threshold_meaning("rrf", "cosine", 0.0)


def test_cosine_threshold_meaning_names_the_similarity():
    assert "euclidean score below 0.47" in relevance.threshold_meaning("early", "euclidean", 0.47)


def test_unknown_settings_are_input_errors():
    with pytest.raises(InputError):
        relevance.threshold_scale("median")
    with pytest.raises(InputError):
        relevance.threshold_scale("early", "hamming")


def test_split_weak_keeps_rank_order():
    results = [SimpleNamespace(score=s) for s in (0.9, 0.5, 0.45, 0.2)]
    strong, weak = relevance.split_weak(results, 0.45)
    assert [r.score for r in strong] == [0.9, 0.5, 0.45]
    assert [r.score for r in weak] == [0.2]
    assert relevance.split_weak(results, 0.95) == ([], results)
    assert relevance.is_weak(0.1, 0.2) and not relevance.is_weak(0.2, 0.2)
