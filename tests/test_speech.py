"""The speech detector: its file format, refusals, probabilities, and the shipped head on real clips.

Most tests build a tiny head here (a few weights for a made-up encoder id) and save it, so they run
without the shipped file or any model; the shipped head is checked on real demo clips when present.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys import speech
from recsys.errors import RecsysError
from recsys.speech import SpeechDetector, SpeechDetectorError, read_detector, save_detector

DEMO_SOUNDS = Path(__file__).resolve().parents[1] / "data" / "tuxpaint" / "sounds"
HEAD = {"format": speech.FORMAT, "encoder_id": "a", "bias": 0.0, "threshold": 0.5, "weights": [1.0]}
TINY = SpeechDetector(encoder_id="audio/tiny@1", weights=np.array([4.0, -4.0, 0.0]), bias=0.0, threshold=0.6)


@pytest.fixture(autouse=True)
def fresh_cache():
    speech.clear_cache()
    yield
    speech.clear_cache()


def test_a_saved_head_reads_back_and_scores_the_same(tmp_path):
    path = save_detector(TINY, tmp_path / "head.json")
    back = read_detector(path, "audio/tiny@1")
    assert back.encoder_id == TINY.encoder_id and back.threshold == 0.6
    x = np.array([1.0, 0.0, 0.0])
    assert back.probability(x) == pytest.approx(1 / (1 + math.exp(-4)))
    assert back.note(x) is not None and back.note(np.array([0.0, 1.0, 0.0])) is None
    assert "type the words as text" in back.note(x).message


def test_a_head_for_another_encoder_is_refused_with_the_rebuild_command(tmp_path):
    path = save_detector(TINY, tmp_path / "head.json")
    with pytest.raises(SpeechDetectorError, match=r"encoder audio/tiny@1, not audio/other.*build_"):
        read_detector(path, "audio/other")


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "No speech detector"),
        ("{not json", "cannot be read"),
        (json.dumps({"format": "something else"}), "is not a speech detector"),
        (json.dumps({"format": speech.FORMAT, "encoder_id": "a", "bias": 0.0}), "damaged"),
        (json.dumps({**HEAD, "threshold": 2}), "threshold"),
        (json.dumps({**HEAD, "weights": [[1], [2]]}), "weights"),
        (json.dumps({**HEAD, "weights": ["x"]}), "damaged"),
    ],
)
def test_missing_or_damaged_heads_are_refused(tmp_path, content, match):
    path = tmp_path / "head.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpeechDetectorError, match=match):
        read_detector(path)


def test_detector_for_logs_once_and_gives_none_when_it_cannot_load(tmp_path, caplog):
    path = save_detector(TINY, tmp_path / "head.json")
    assert speech.detector_for("audio/tiny@1", path) is not None
    with caplog.at_level(logging.WARNING, logger="recsys.speech"):
        assert speech.detector_for("audio/other", path) is None
        assert speech.detector_for("audio/other", path) is None  # read once: no second line
        assert speech.detector_for("audio/tiny@1", tmp_path / "missing.json") is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "not audio/other" in lines[0] and "No speech detector" in lines[1]


@given(
    st.one_of(
        arrays(np.float64, st.integers(0, 6), elements=st.floats(allow_nan=True, allow_infinity=True)),
        arrays(np.float32, 3, elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
        st.lists(st.one_of(st.floats(), st.text(max_size=2), st.none()), max_size=4),
        st.text(max_size=4),
    )
)
def test_any_embedding_gives_a_probability_or_a_recsys_error(x):
    try:
        p = TINY.probability(x)
    except RecsysError:
        return
    assert 0.0 <= p <= 1.0


CLIP_VALUES = st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf])


@given(arrays(np.float64, st.tuples(st.integers(0, 8), st.just(3)), elements=CLIP_VALUES))
def test_flagging_many_clips_at_once_agrees_with_one_at_a_time(x):
    flags = TINY.is_speech(x)
    for row, flagged in zip(x, flags, strict=True):
        if not np.isfinite(row).all():
            assert not flagged
            continue
        z = float(row @ TINY.weights + TINY.bias)
        if abs(z - math.log(TINY.threshold / (1 - TINY.threshold))) > 1e-9:  # off the exact boundary
            assert flagged == (TINY.note(row) is not None)
    with pytest.raises(SpeechDetectorError):
        TINY.is_speech(np.zeros((2, 4)))


# -- the shipped head on real clips --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    if not speech.DEFAULT_DETECTOR.is_file():
        pytest.skip(f"no shipped head at {speech.DEFAULT_DETECTOR}")
    from recsys.encoders import create_encoder

    encoder = create_encoder("aisfx", device="cpu")
    return encoder, read_detector(speech.DEFAULT_DETECTOR, encoder.encoder_id)


@pytest.mark.slow
def test_shipped_head_hears_a_spoken_letter_as_speech_and_effects_as_not(shipped):
    from recsys.media import load_audio

    encoder, detector = shipped
    names = ["A_filled.ogg", "fox.ogg", "hammer.ogg", "Washing-machine.ogg"]  # effects the head never trained on
    vectors = encoder.encode([load_audio(DEMO_SOUNDS / n) for n in names])
    p = {n: detector.probability(v) for n, v in zip(names, vectors, strict=True)}
    assert p["A_filled.ogg"] >= detector.threshold, p
    assert all(p[n] < detector.threshold for n in names[1:]), p
