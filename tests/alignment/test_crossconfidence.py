"""Calibration across catalogues on the small synthetic sources of test_crosscatalogue."""

from __future__ import annotations

import numpy as np
import pytest
from alignment.test_crosscatalogue import _cross, encode

from recsys.alignment.confidence import Platt, aligner_signature
from recsys.alignment.crosscatalogue import SourceData
from recsys.alignment.crossconfidence import (
    DIRECTIONS,
    calibration_split,
    direction_pairs,
    fit_calibration,
    fixed_aligner_splits,
)
from recsys.errors import InputError
from recsys.vectors import unit_vectors


def test_direction_pairs_score_titles_against_images_and_images_against_item_texts():
    titles = ["cat", "cat", "dog", "sun"]
    data = SourceData("s", np.zeros((4, 2)), np.zeros((4, 2)), titles, [""] * 4, [""] * 4, [f"{t}." for t in titles])
    vectors = encode(titles)  # a perfect aligner: each image lands on its own title
    pairs = direction_pairs(vectors, data, encode)
    forward, backward = pairs["text->image"], pairs["image->text"]
    assert len(forward) == 3 * 4 and len(backward) == 4 * 4  # top 10 of a 4-item gallery: all of it
    assert forward.relevant.sum() == 4 and backward.relevant.sum() == 2 + 2 + 1 + 1
    assert forward.z[forward.relevant].min() > forward.z[~forward.relevant].max()
    assert data.subset(np.array([2])).indexed_texts() == ["dog."]


@pytest.fixture(scope="module")
def cross():
    return _cross()


def test_a_split_fits_on_the_training_sources_and_measures_the_held_out_one(cross):
    result = calibration_split(cross, "c")
    assert result["train"] == ["a", "b"] and "leave-one-source-out" in result["fitted_on"]
    for direction in DIRECTIONS:
        d = result["directions"][direction]
        assert d["fit_pairs"] > 0 and Platt.from_json(d["fit"]["z"]).slope > 0
        for kind in ("z", "cosine", "base_rate"):
            report = d["test"][kind]
            assert 0 <= report["ece"] <= 1 and 0 <= report["brier"] <= 1
            assert report["pairs"] == d["test"]["z"]["pairs"] > 0
    # the choice and heads of the retrieval split are reused, not trained again
    assert cross.select(["a", "b"]) is cross.select(["a", "b"])
    assert cross.train_head(["a"], "title") is cross.train_head(["a"], "title")


def _fixed(cross):
    head = cross.train_head(["a"], "description")
    d_emb = cross.sources["a"].embedding.shape[1]

    class Shipped:
        source_modality, source_encoder_id, input_dim = "image", "image/fake@1", d_emb + 6

        def transform(self, features):
            return unit_vectors(head.transform(np.asarray(features)[:, :d_emb]))

        def describe(self):
            return "head on a"

    return Shipped()


def test_a_fixed_aligner_is_calibrated_only_on_sources_it_did_not_train_on(cross):
    shipped = _fixed(cross)
    splits = fixed_aligner_splits(cross, shipped.transform, {"a"})
    by_test = {s["test"]: s for s in splits}
    assert by_test["a"]["fitted_on"] == ["b", "c"] and by_test["a"]["aligner_trained_on_test"]
    assert by_test["b"]["fitted_on"] == ["c"] and not by_test["b"]["aligner_trained_on_test"]
    calibration = fit_calibration(cross, shipped, {"a"}, "text/fake@1")
    assert calibration.meta["fitted_on"] == ["b", "c"] and set(calibration.pairs) == set(DIRECTIONS)
    assert calibration.signature == aligner_signature(shipped)
    with pytest.raises(InputError, match="none is left"):
        fit_calibration(cross, shipped, {"a", "b", "c"}, "text/fake@1")
