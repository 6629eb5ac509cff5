"""Match confidence from one catalogue's held-out folds, on small synthetic features (no encoder)."""

from __future__ import annotations

import numpy as np
import pytest
from alignment.test_crosscatalogue import encode

from recsys.alignment.confidence import CalibrationPairs, merge_pairs
from recsys.alignment.heldout import fold_splits
from recsys.alignment.heldoutconfidence import fold_pairs, pair_names, rotated_report
from recsys.alignment.training import Pairs
from recsys.errors import InputError


def test_pair_names_are_the_engines():
    assert pair_names("audio") == ("text->audio", "audio->text")


def test_fold_pairs_give_each_text_query_to_the_fold_of_its_clips():
    descriptions = ["a cat", "a cat", "a dog", "the sun", "rain"]  # two clips share a description
    vectors = encode(descriptions)  # a perfect aligner: each clip lands on its own description
    splits = [(np.array([2, 3, 4]), np.array([0, 1])), (np.array([0, 1]), np.array([2, 3, 4]))]
    gallery = [*descriptions, "a cat"]  # an item without a sound shares the cats' description
    indexed = [f"T. {d}" for d in gallery]  # "title. description", as the engine indexes item texts

    def encode_indexed(texts):  # item texts embed like their descriptions (as a good text encoder would)
        return encode([t.removeprefix("T. ") for t in texts])

    parts = fold_pairs("audio", vectors, descriptions, indexed, gallery, splits, encode_indexed)
    first, second = parts
    assert len(first["text->audio"]) == 1 * 5 and len(second["text->audio"]) == 3 * 5  # top 10 of 5 clips: all
    assert first["text->audio"].relevant.sum() == 2 and second["text->audio"].relevant.sum() == 3
    assert len(first["audio->text"]) == 2 * 6 and first["audio->text"].relevant.sum() == 2 * 3
    assert second["audio->text"].relevant.sum() == 3
    for part in parts:
        for pairs in part.values():
            assert pairs.z[pairs.relevant].min() > pairs.z[~pairs.relevant].max()


def test_fold_pairs_refuse_mismatched_inputs():
    with pytest.raises(InputError, match="gallery"):
        fold_pairs("audio", encode(["a"]), ["a"], ["a", "b"], ["a"], [], encode)
    with pytest.raises(InputError, match="aligned vectors"):
        fold_pairs("audio", encode(["a", "b"]), ["a"], ["a"], ["a"], [], encode)


def _logistic_part(rng, n=3000, slope=1.2, intercept=-4.0):
    z = rng.normal(size=n) * 2
    relevant = rng.random(n) < 1 / (1 + np.exp(-(slope * z + intercept)))
    pairs = CalibrationPairs(z, 0.3 + 0.05 * z, relevant)
    return {"text->audio": pairs, "audio->text": pairs}


def test_rotation_fits_on_the_other_folds_and_pools_every_held_out_fold():
    rng = np.random.default_rng(0)
    parts = [_logistic_part(rng) for _ in range(4)]
    report = rotated_report(parts)
    assert len(report["folds"]) == 4
    for fold in report["folds"]:
        assert fold["audio->text"]["fit_pairs"] == 3 * 3000  # never the fold it is measured on
        assert fold["audio->text"]["test"]["z"]["pairs"] == 3000
    pooled = report["pooled"]["text->audio"]
    assert set(pooled) == {"z", "cosine", "base_rate"}
    assert pooled["z"]["pairs"] == len(merge_pairs(parts)["text->audio"]) == 4 * 3000
    assert pooled["z"]["ece"] < 0.03 and pooled["z"]["brier"] < pooled["base_rate"]["brier"]


def test_rotation_needs_two_folds():
    with pytest.raises(InputError, match="two folds"):
        rotated_report([_logistic_part(np.random.default_rng(1))])


def test_grouped_folds_keep_a_descriptions_clips_together_so_no_text_query_straddles_two():
    rng = np.random.default_rng(2)
    descriptions = [f"thing {i % 7}" for i in range(30)]
    source = rng.normal(size=(30, 4)).astype(np.float32)
    splits = fold_splits(Pairs(source, encode(descriptions), descriptions, np.arange(30)), 3)
    parts = fold_pairs("audio", encode(descriptions), descriptions, descriptions, descriptions, splits, encode)
    queries = sum(len(p["text->audio"]) for p in parts) // 10  # top 10 of 30 clips per query
    assert queries == 7  # each description queried once, in the fold holding its clips
