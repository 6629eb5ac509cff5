"""Fusion strategies: exact decomposition into per-pair contributions and the expected orderings."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys import fusion
from recsys.errors import InputError


def _unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_pair_names():
    assert fusion.pair_name("text", "text") == "text"
    assert fusion.pair_name("text", "image") == "text->image"


def test_pair_weights_normalise_and_drop_zero():
    ws = fusion.pair_weights([("text", "text"), ("image", "image"), ("audio", "audio")], {"image": 2, "audio": 0})
    assert ws == pytest.approx({("text", "text"): 1 / 3, ("image", "image"): 2 / 3})


def test_pair_weights_multiply_query_and_item_weights():
    pairs = [("text", "text"), ("text", "image"), ("image", "image")]
    ws = fusion.pair_weights(pairs, {"image": 3}, {"image": 2})
    assert ws == pytest.approx({("text", "text"): 1 / 10, ("text", "image"): 3 / 10, ("image", "image"): 6 / 10})


def test_early_fusion_single_space_equals_cosine_of_weighted_means(rng):
    items = {"text": _unit(rng, 20, 8), "image": _unit(rng, 20, 8)}
    query = {"text": _unit(rng, 1, 8)[0]}
    weights = {"text": 1.0, "image": 0.5}
    fused = fusion.early_fusion(query, items, {"text": "s", "image": "s"}, weights)
    item_vec = items["text"] + 0.5 * items["image"]
    expected = item_vec @ query["text"] / np.linalg.norm(item_vec, axis=1)
    np.testing.assert_allclose(fused.scores, expected, atol=1e-6)
    assert set(fused.contributions) == {"text", "text->image"}
    np.testing.assert_allclose(sum(fused.contributions.values()), fused.scores, atol=1e-9)


def test_early_fusion_separate_spaces_ignores_spaces_the_query_cannot_see(rng):
    items = {"text": _unit(rng, 10, 4), "image": _unit(rng, 10, 6)}
    query = {"text": items["text"][3]}
    fused = fusion.early_fusion(query, items, {"text": "t", "image": "i"}, {})
    assert set(fused.contributions) == {"text"}
    np.testing.assert_allclose(fused.scores, items["text"] @ query["text"], atol=1e-6)
    assert int(np.argmax(fused.scores)) == 3


def test_early_fusion_zero_weight_disables_an_item_modality(rng):
    items = {"text": _unit(rng, 10, 4), "image": _unit(rng, 10, 4)}
    query = {"text": _unit(rng, 1, 4)[0], "image": _unit(rng, 1, 4)[0]}
    spaces = {"text": "s", "image": "s"}
    assert set(fusion.early_fusion(query, items, spaces, {"image": 0}).contributions) == {"text", "image->text"}
    only_text_query = fusion.early_fusion(query, items, spaces, {"image": 0}, {"image": 0})
    assert set(only_text_query.contributions) == {"text"}


def test_late_fusion_weighted_sum_and_missing_items(rng):
    sims = {("text", "text"): rng.normal(size=6), ("image", "image"): rng.normal(size=6)}
    present = {"text": np.ones(6, bool), "image": np.array([1, 1, 1, 0, 0, 1], bool)}
    fused = fusion.late_fusion(sims, present, {"text": 1, "image": 1})
    expected = 0.5 * sims[("text", "text")] + 0.5 * np.where(present["image"], sims[("image", "image")], 0)
    np.testing.assert_allclose(fused.scores, expected)
    np.testing.assert_allclose(sum(fused.contributions.values()), fused.scores)


def test_rrf_terms_follow_ranks():
    sims = {("text", "text"): np.array([0.9, 0.1, 0.5]), ("image", "image"): np.array([0.2, 0.8, 0.4])}
    present = {"text": np.ones(3, bool), "image": np.ones(3, bool)}
    fused = fusion.rrf_fusion(sims, present, {})
    np.testing.assert_allclose(fused.contributions["text"], 0.5 / (60 + np.array([1, 3, 2])))
    np.testing.assert_allclose(fused.contributions["image"], 0.5 / (60 + np.array([3, 1, 2])))
    np.testing.assert_allclose(sum(fused.contributions.values()), fused.scores)


def test_rrf_gives_no_term_to_items_without_the_modality():
    sims = {("image", "image"): np.array([0.9, 0.8, 0.7])}
    present = {"image": np.array([False, True, True])}
    fused = fusion.rrf_fusion(sims, present, {})
    assert fused.scores[0] == 0
    assert fused.scores[1] == pytest.approx(1 / 61)


def test_check_weights_refuses_what_would_make_scores_nan_or_zero():
    assert fusion.check_weights({"text": "1", "image": 0.5, "audio": -0.0}) == {"text": 1.0, "image": 0.5, "audio": 0.0}
    for bad, words in [
        ("nan", "NaN"),
        ("inf", "infinite"),
        (float("1e309"), "infinite"),
        (-1, "negative"),
        (1e-30, "out of range"),
        (1e30, "out of range"),
        ("abc", "not a number"),
        (None, "not a number"),
    ]:
        with pytest.raises(InputError, match=words):
            fusion.check_weights({"text": bad})


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.floats(), st.integers(min_value=-(10**400), max_value=10**400), st.text(max_size=10), st.none()),
        max_size=4,
    )
)
def test_checked_weights_are_finite_and_in_range_or_an_input_error(weights):
    try:
        checked = fusion.check_weights(weights)
    except InputError:
        return
    assert set(checked) == set(weights)
    assert all(w == 0 or fusion.MIN_WEIGHT <= w <= fusion.MAX_WEIGHT for w in checked.values())


def test_euclidean_similarity_is_one_minus_half_the_distance_of_unit_vectors(rng):
    q, v = _unit(rng, 1, 8)[0], _unit(rng, 50, 8)
    cos = v @ q
    np.testing.assert_allclose(fusion.euclidean_similarity(cos), 1 - np.linalg.norm(v - q, axis=1) / 2, atol=1e-9)
    assert fusion.euclidean_similarity(np.array([1.0, -1.0])).tolist() == [1.0, 0.0]
    order = np.argsort(-cos, kind="stable")
    assert np.all(np.diff(fusion.euclidean_similarity(cos)[order]) <= 1e-12)  # same order as cosine


def test_centred_cosine_is_pearson(rng):
    x, y = rng.normal(size=(5, 7)), rng.normal(size=7)
    got = fusion.centre(x) @ fusion.centre(y)
    want = [np.corrcoef(row, y)[0, 1] for row in x]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.any(fusion.centre(np.zeros((2, 4))))  # an item without the medium stays empty


def test_rescore_keeps_contributions_summing_to_the_new_score():
    fused = fusion.Fused(
        np.array([0.5, 0.0, -0.2]),
        {"text": np.array([0.3, 0.0, -0.1]), "image": np.array([0.2, 0.0, -0.1])},
    )
    new = fusion.rescore(fused, fusion.euclidean_similarity(fused.scores))
    np.testing.assert_allclose(sum(new.contributions.values()), new.scores, atol=1e-12)
    assert new.scores[1] == 0.0  # no evidence, no score
    assert new.contributions["text"][0] / new.contributions["image"][0] == pytest.approx(1.5)


def test_rrf_reports_the_rank_behind_every_term(rng):
    sims = {("text", "text"): np.array([0.1, 0.9, 0.5]), ("text", "image"): np.array([0.8, 0.2, 0.4])}
    present = {"text": np.ones(3, bool), "image": np.array([True, True, False])}
    fused = fusion.rrf_fusion(sims, present, {})
    assert fused.ranks["text"].tolist() == [3, 1, 2]
    assert fused.ranks["text->image"][:2].tolist() == [1, 2] and np.isnan(fused.ranks["text->image"][2])
    np.testing.assert_allclose(fused.contributions["text"], 0.5 / (60 + fused.ranks["text"]))


def test_every_strategy_and_similarity_has_a_meaning():
    for strategy in fusion.STRATEGIES:
        for similarity in fusion.SIMILARITIES:
            assert similarity in fusion.strategy_meaning(strategy, similarity) or strategy == "rrf"
    assert "rank" in fusion.strategy_meaning("rrf")
    assert set(fusion.SIMILARITY_MEANING) == set(fusion.SIMILARITIES)


def test_unknown_similarity_is_an_input_error():
    from recsys.errors import InputError

    with pytest.raises(InputError, match="cosine, euclidean, pearson"):
        fusion.check_similarity("manhattan")
