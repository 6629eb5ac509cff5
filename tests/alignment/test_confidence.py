"""Match-confidence calibration: Platt fits, ECE / Brier, the shipped file and its refusal paths."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recsys.alignment.base import NativeAligner
from recsys.alignment.confidence import (
    FORMAT,
    Calibration,
    Platt,
    aligner_signature,
    brier_score,
    calibration_pairs,
    expected_calibration_error,
    find_calibrations,
    fit_platt,
    ranking_auc,
    read_calibrations,
    standardise,
    write_calibrations,
)
from recsys.errors import InputError, RecsysError


def _logistic_data(n=4000, slope=1.5, intercept=-3.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) * 2
    y = rng.random(n) < 1 / (1 + np.exp(-(slope * x + intercept)))
    return x, y


def test_platt_recovers_a_known_logistic_and_is_increasing():
    x, y = _logistic_data()
    fit = fit_platt(x, y)
    assert fit.slope == pytest.approx(1.5, rel=0.15) and fit.intercept == pytest.approx(-3.0, rel=0.15)
    grid = np.linspace(-10, 10, 101)
    assert np.all(np.diff(fit(grid)) >= 0)
    assert fit(np.array([-1e6]))[0] == 0.0 and fit(np.array([1e6]))[0] == 1.0


def test_platt_on_a_shifted_scale_maps_the_same():
    """Fitting on cosines that span 0.3 (not z units) reaches the same probabilities."""
    x, y = _logistic_data()
    fit_z, fit_small = fit_platt(x, y), fit_platt(0.5 + 0.05 * x, y, score="cosine")
    assert np.allclose(fit_z(x), fit_small(0.5 + 0.05 * x), atol=1e-6)


def test_platt_on_separable_data_stays_finite_and_increasing():
    fit = fit_platt([0.0, 0.1, 0.2, 1.0, 1.1, 1.2], [0, 0, 0, 1, 1, 1])
    assert np.isfinite(fit.slope) and fit.slope > 0
    assert fit(np.array([0.0]))[0] < 0.5 < fit(np.array([1.2]))[0]


def test_platt_needs_both_outcomes_and_matching_lengths():
    with pytest.raises(InputError, match="both"):
        fit_platt([0.1, 0.2], [1, 1])
    with pytest.raises(InputError, match="labels"):
        fit_platt([0.1, 0.2], [1])


def test_ece_and_brier_on_known_values():
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 1, 1, 1])
    # bins: 0.1 holds {0, 1} (rate 0.5, conf 0.1) and 0.9 holds {1, 1} (rate 1, conf 0.9)
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert brier_score(p, y) == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    assert expected_calibration_error([0.0, 1.0], [0, 1]) == 0.0  # 1.0 lands in the last bin
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [1])


def test_auc_counts_ordered_pairs_and_ties_half():
    assert ranking_auc([0.9, 0.8, 0.1], [1, 0, 0]) == 1.0
    assert ranking_auc([0.1, 0.8, 0.9], [1, 0, 0]) == 0.0
    assert ranking_auc([0.5, 0.5], [1, 0]) == 0.5
    assert ranking_auc([0.5, 0.6], [0, 0]) is None


def test_a_calibrated_fit_has_low_ece_on_fresh_data_of_the_same_law():
    x, y = _logistic_data(seed=1)
    fit = fit_platt(x, y)
    x2, y2 = _logistic_data(seed=2)
    assert expected_calibration_error(fit(x2), y2) < 0.03


def test_standardise_and_its_refusals():
    assert standardise([3.0, 2.0], [1.0, 3.0]).tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="spread"):
        standardise([0.5], [0.2, 0.2, 0.2])
    with pytest.raises(InputError, match="NaN"):
        standardise([np.nan], [0.0, 1.0])


def test_calibration_pairs_take_each_querys_top_k():
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.1, 0.0], [0.5, 0.5, 0.5, 0.4]])
    relevant = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)  # the last query has none
    pairs = calibration_pairs(scores, relevant, k=2)
    assert len(pairs) == 4
    assert pairs.relevant.sum() == 2  # query 0's relevant item ranks 1st, query 1's 2nd
    assert sorted(pairs.cosine.tolist()) == sorted([0.9, 0.5, 0.8, 0.2])
    row = scores[0]
    assert np.isclose(pairs.z[pairs.cosine == 0.9][0], (0.9 - row.mean()) / row.std())


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    st.floats(-50, 50),
    st.floats(-50, 50),
)
def test_any_similarity_array_gives_an_error_or_probabilities(values, slope, intercept):
    try:
        out = Platt(slope, intercept)(values)
    except RecsysError:
        assert values.size == 0 or not np.all(np.isfinite(values))
        return
    assert out.shape == values.shape and np.all((out >= 0) & (out <= 1))


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(0, 8), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    hnp.arrays(np.float64, st.integers(0, 8), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
)
def test_standardised_confidence_of_any_arrays(scores, reference):
    try:
        out = Platt(1.0, -2.0)(standardise(scores, reference))
    except RecsysError:
        return
    assert np.all((out >= 0) & (out <= 1))


# -- the shipped file --------------------------------------------------------------------------


class _Projection(NativeAligner):
    """A linear aligner with a settable matrix, so a "retrained" one can be made."""

    name = "test-linear"

    def __init__(self, matrix):
        super().__init__("image", "image/test@1", "text/test@1", matrix.shape[0])
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.output_dim = matrix.shape[1]

    def _transform(self, features):
        return features @ self.matrix


def _calibration(aligner, **changes):
    values = {
        "modality": "image",
        "source_encoder_id": "image/test@1",
        "text_encoder_id": "text/test@1",
        "signature": aligner_signature(aligner),
        "pairs": {"text->image": Platt(2.0, -4.0), "image->text": Platt(1.0, -3.0)},
        "meta": {"fitted_on": ["a", "b"]},
    }
    return Calibration(**{**values, **changes})


@pytest.fixture
def aligner():
    return _Projection(np.random.default_rng(0).normal(size=(6, 5)))


def test_a_written_file_loads_back_for_its_aligner(tmp_path, aligner):
    path = write_calibrations(tmp_path / "confidence.json", [_calibration(aligner)])
    [back] = read_calibrations(path)
    assert back.pairs["text->image"] == Platt(2.0, -4.0) and back.meta == {"fitted_on": ["a", "b"]}
    clash = _calibration(aligner, meta={"pairs": {"text->image": 5}})  # metadata never hides the fits
    [back] = read_calibrations(write_calibrations(tmp_path / "clash.json", [clash]))
    assert back.pairs["text->image"] == Platt(2.0, -4.0)
    found = find_calibrations(path, {"image": aligner}, "text/test@1")
    assert set(found) == {"text->image", "image->text"}


@pytest.mark.parametrize(
    "content, why",
    [
        (None, "no confidence calibration file"),
        ("{not json", "cannot be read"),
        (json.dumps({"format": "other"}), "is not a"),
        (json.dumps({"format": FORMAT, "calibrations": [{"modality": "image"}]}), "malformed"),
        (
            json.dumps(
                {
                    "format": FORMAT,
                    "calibrations": [
                        {
                            "modality": "image",
                            "source_encoder_id": "e",
                            "text_encoder_id": "t",
                            "aligner_signature": [[0.0]],
                            "pairs": {"text->image": {"slope": "nan", "intercept": 0}},
                        }
                    ],
                }
            ),
            "malformed",
        ),
    ],
)
def test_a_missing_or_damaged_file_gives_no_confidence_and_a_log_line(tmp_path, aligner, caplog, content, why):
    path = tmp_path / "confidence.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RecsysError, match=why):
        read_calibrations(path)
    with caplog.at_level(logging.INFO, logger="recsys.alignment.confidence"):
        assert find_calibrations(path, {"image": aligner}, "text/test@1") == {}
    assert why in caplog.text


def test_a_calibration_for_other_encoders_or_another_aligner_is_refused(tmp_path, aligner, caplog):
    retrained = _Projection(aligner.matrix + 0.1)
    path = write_calibrations(tmp_path / "c.json", [_calibration(aligner)])
    with caplog.at_level(logging.INFO, logger="recsys.alignment.confidence"):
        assert find_calibrations(path, {"image": retrained}, "text/test@1") == {}
        assert "signature differs" in caplog.text
        assert find_calibrations(path, {"image": aligner}, "text/other@2") == {}
        assert "text/other@2" in caplog.text
        assert find_calibrations(path, {"audio": aligner}, "text/test@1") == {}
        assert "none for this modality" in caplog.text


def test_an_aligner_without_a_signature_is_refused_not_crashed(tmp_path, aligner, caplog):
    class Opaque:  # no input_dim: its behaviour cannot be probed
        source_encoder_id = "image/test@1"

    path = write_calibrations(tmp_path / "c.json", [_calibration(aligner)])
    with caplog.at_level(logging.INFO, logger="recsys.alignment.confidence"):
        assert find_calibrations(path, {"image": Opaque()}, "text/test@1") == {}
    assert "cannot be computed" in caplog.text


def test_updating_a_file_replaces_only_the_same_aligners_entry(tmp_path, aligner):
    from recsys.alignment.confidence import update_calibrations

    path = tmp_path / "confidence.json"
    update_calibrations(path, [_calibration(aligner)])  # a missing file is created
    sound = _calibration(
        aligner, modality="audio", source_encoder_id="audio/test@1", pairs={"text->audio": Platt(0.5, -2.0)}
    )
    update_calibrations(path, [sound])
    image_text = json.dumps(json.loads(path.read_text())["calibrations"][0], sort_keys=True)
    refit = _calibration(
        aligner, modality="audio", source_encoder_id="audio/test@1", pairs={"audio->text": Platt(1, 0)}
    )
    update_calibrations(path, [refit])
    image, audio = read_calibrations(path)
    assert json.dumps(json.loads(path.read_text())["calibrations"][0], sort_keys=True) == image_text  # untouched
    assert image.modality == "image" and audio.pairs == {"audio->text": Platt(1.0, 0.0)}
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RecsysError, match="cannot be read"):  # a damaged file is reported, not overwritten
        update_calibrations(path, [refit])
    assert path.read_text(encoding="utf-8") == "{not json"


@pytest.mark.slow
def test_the_shipped_file_holds_a_calibration_for_the_shipped_sound_aligner():
    """data/aligners/confidence.json fits the shipped audio aligner (its encoder ids and signature): a
    retrained one, or a rewrite that dropped it, would leave the demo's sounds without confidence.
    The aligner is an ensemble with a label bridge, so it loads with the real audio encoder (its class
    names); the image ensemble likewise, which the slow demo-engine test covers."""
    from recsys.alignment.factory import CONFIDENCE_FILE, DEFAULT_ALIGNERS, REPO_ROOT, load_aligner
    from recsys.alignment.projection import read_head_meta
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder

    calibrations = read_calibrations(CONFIDENCE_FILE)
    assert sorted(c.modality for c in calibrations) == ["audio", "image"]
    text = create_encoder(DEFAULT_ENCODERS["text"])
    audio = create_encoder(DEFAULT_ENCODERS["audio"])
    head = load_aligner(REPO_ROOT / DEFAULT_ALIGNERS["audio"], source_encoder=audio, text_encoder=text)
    image_meta = read_head_meta(REPO_ROOT / DEFAULT_ALIGNERS["image"])
    image = next(c for c in calibrations if c.modality == "image")
    assert image.source_encoder_id == image_meta["source_encoder_id"]
    found = find_calibrations(CONFIDENCE_FILE, {"audio": head}, text.encoder_id)
    assert set(found) == {"text->audio", "audio->text"}
    assert all(p.score == "z" and p.slope > 0 for p in found.values())  # a higher z never lowers the confidence
    audio = next(c for c in calibrations if c.modality == "audio")
    assert audio.meta["fitted_on"] == ["tuxpaint"] and "out of fold" in audio.meta["scores"]
