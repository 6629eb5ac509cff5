"""The query: text the encoders can take, the inputs it holds, liked and disliked items folded into
one vector, and the Pearson view of its vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys import fusion
from recsys.errors import InputError
from recsys.recommend.query import Query, QueryVectors, check_text, fold_examples
from recsys.vectors import unit_vectors

any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=30)  # lone surrogates included


@given(text=any_text)
def test_query_text_is_unicode_the_encoders_can_take_or_an_input_error(text):
    try:
        query = Query(text=text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert query.text.encode("utf-8") is not None


def test_an_undecodable_byte_is_named_in_the_message():
    with pytest.raises(InputError, match="byte 0xff, which is not UTF-8, at character 2"):
        check_text("a\udcffb")
    with pytest.raises(InputError, match="must be text"):
        check_text(b"bytes", "'id'")


def test_inputs_hold_only_what_was_given_and_blank_text_is_nothing():
    assert Query(text="  ").inputs() == {}
    assert Query(text="  ").is_empty()
    assert Query(text=" dog ", image="x.png").inputs() == {"text": "dog", "image": "x.png"}
    assert not Query(likes=("a",)).is_empty()
    assert not Query(dislikes=("a",)).is_empty()


def test_likes_and_dislikes_fold_into_one_unit_vector():
    a, b, c = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(fold_examples([a, b], []), unit_vectors(a + b))
    # mean(pos) + (mean(pos) - mean(neg)): away from what was disliked
    np.testing.assert_allclose(fold_examples([a], [c]), unit_vectors(2 * a - c))
    np.testing.assert_allclose(fold_examples([], [a, b]), unit_vectors(-(a + b)))
    assert fold_examples([], []) is None
    assert fold_examples([a, -a], []) is None  # cancelled out: no direction left to search


def test_the_pearson_view_centres_every_vector_on_its_own_mean():
    v = {"text": np.array([1.0, 2.0, 3.0], dtype=np.float32)}
    q = QueryVectors(native=v, shared={"image": np.array([0.0, 1.0], dtype=np.float32)})
    centred = q.centred()
    np.testing.assert_allclose(centred.native["text"], fusion.centre(v["text"]))
    assert abs(float(centred.side(True)["image"].mean())) < 1e-7
    assert q.side(False) is q.native
