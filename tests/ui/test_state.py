"""The page state in the URL: parsing with validation, the way back, and hostile links."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.recommend.relevance import threshold_scale
from recsys.ui import state
from recsys.ui.state import UrlContext, UrlState, parse_url, to_params

CTX = UrlContext(
    modalities=("text", "image", "audio"),
    categories=frozenset({"food", "food/fruit", "vehicles"}),
    item_ids=frozenset({"apple", "lime", "car", "a,b"}),
    media=(("image", frozenset({"apple", "car"})), ("audio", frozenset({"car"}))),
)

FULL = UrlState(
    text="a red apple & a car?",
    weights=(("image", 0.25), ("audio", 0.0)),
    strategy="rrf",
    k=5,
    category="food/fruit",
    similarity="pearson",
    threshold=0.01,
    likes=("lime", "a,b"),
    dislikes=("car",),
    samples=(("image", "apple"), ("audio", "car")),
)


def test_a_full_state_survives_the_round_trip():
    params = to_params(FULL)
    assert params["like"] == ["lime", "a,b"]  # repeated keys: ids may hold commas
    assert "w_text" not in params  # defaults stay out of the link
    back, problems = parse_url(params, CTX)
    assert problems == []
    assert back == FULL


def test_no_params_is_the_default_state():
    assert parse_url({}, CTX) == (UrlState(), [])
    assert to_params(UrlState()) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"strategy": "best"}, "unknown strategy 'best'"),
        ({"sim": "jaccard"}, "unknown similarity"),
        ({"k": "0"}, "K '0'"),
        ({"k": "2.5"}, "whole number"),
        ({"k": "nan"}, "whole number"),
        ({"w_text": "-1"}, "text weight"),
        ({"w_image": "inf"}, "image weight"),
        ({"w_video": "1"}, "no 'video' modality"),
        ({"category": "toys"}, "no category 'toys'"),
        ({"thr": "2"}, "threshold '2' is outside"),
        ({"like": ["apple", "ghost"]}, "1 liked item(s) not in this catalogue"),
        ({"img": "lime"}, "no catalogue item 'lime' with a picture"),
        ({"like": "apple", "dislike": "apple"}, "both liked and disliked"),
    ],
)
def test_bad_values_fall_back_to_defaults_with_a_reason(params, message):
    got, problems = parse_url(params, CTX)
    assert any(message in p for p in problems), problems
    assert got.strategy in ("early", "late", "rrf") and 1 <= got.k <= state.MAX_K


def test_threshold_is_checked_on_the_scale_of_the_linked_strategy():
    assert parse_url({"strategy": "rrf", "thr": "0.5"}, CTX)[0].threshold is None
    assert parse_url({"strategy": "early", "thr": "0.5"}, CTX)[0].threshold == 0.5


def test_long_text_is_cut_and_control_characters_dropped():
    got, problems = parse_url({"q": "\x00a" + "b" * 5000}, CTX)
    assert got.text.startswith("ab") and len(got.text) == state.MAX_TEXT_CHARS
    assert problems


def test_session_round_trip_through_the_saved_widget_values():
    session: dict = {}
    state.apply_url_state(session, FULL)
    assert state.get_profile(session).likes == ["lime", "a,b"]
    assert state.current_url_state(session, CTX.modalities) == FULL


def test_the_default_threshold_is_left_out_of_the_link():
    session: dict = {}
    default = threshold_scale("early", "cosine").default
    session[state.SAVED_PREFIX + state.threshold_key("early", "cosine")] = default
    assert state.current_url_state(session, ("text",)).threshold is None


values = st.one_of(st.text(max_size=30), st.lists(st.text(max_size=12), max_size=4))
keys = st.one_of(
    st.sampled_from(["q", "strategy", "sim", "k", "category", "thr", "like", "dislike", "img", "snd", "w_text"]),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_any_link_opens_the_page(params):
    got, problems = parse_url(params, CTX)
    assert isinstance(problems, list)
    assert got.strategy in ("early", "late", "rrf") and got.similarity in ("cosine", "euclidean", "pearson")
    assert 1 <= got.k <= state.MAX_K
    assert set(got.likes) <= CTX.item_ids and set(got.dislikes) <= CTX.item_ids
    assert all(0 <= w <= 1 for _, w in got.weights)
    again, again_problems = parse_url(to_params(got), CTX)
    assert again == got and again_problems == []
