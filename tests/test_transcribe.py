"""Speech recognition: real spoken digits from the demo are heard, refusals are clear errors.

espeak-ng's synthetic voice is not used here: PocketSphinx's acoustic model, trained on human
speech, hears espeak-ng's "dog" as "aw" (checked by hand), so the tests use the demo's human
recordings of digits instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys import transcribe
from recsys.errors import InputError, MissingWeightsError
from recsys.media import Audio, load_audio

pytest.importorskip("pocketsphinx", reason=f"speech recognition needs {transcribe.PACKAGE}")

DEMO_SOUNDS = Path(__file__).resolve().parents[1] / "data" / "tuxpaint" / "sounds"


@pytest.fixture(scope="module")
def transcriber() -> transcribe.Transcriber:
    return transcribe.shared_transcriber()


def needs_demo(name: str) -> Path:
    path = DEMO_SOUNDS / name
    if not path.is_file():
        pytest.skip(f"demo clip {path} is not present")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("clip", "word"), [("3.ogg", "three"), ("7.ogg", "seven"), ("0.ogg", "zero")])
def test_spoken_digit_is_heard(transcriber: transcribe.Transcriber, clip: str, word: str) -> None:
    heard = transcriber.transcribe(needs_demo(clip))
    assert word in heard.words
    assert heard.heard and word in heard.search_text.split()


@pytest.mark.slow
def test_batch_matches_one_by_one_and_takes_paths_bytes_and_audio(transcriber: transcribe.Transcriber) -> None:
    path = needs_demo("3.ogg")
    clips = [path, path.read_bytes(), load_audio(path)]
    batch = transcriber.transcribe_batch(clips)
    assert batch == [transcriber.transcribe(path)] * 3


def test_words_are_distinct_and_best_first() -> None:
    assert transcribe._distinct_words(["seven", "seven up", "heaven seven"]) == ("seven", "up", "heaven")
    assert transcribe.Transcript(text="", words=()).heard is False


def test_pcm_is_16k_with_padding_on_both_sides() -> None:
    clip = Audio(samples=np.full(44_100, 0.5, dtype=np.float32), sample_rate=44_100)
    data = np.frombuffer(transcribe.pcm16(clip, pad_seconds=0.5), dtype="<i2")
    assert abs(len(data) - 2 * 16_000) <= 2
    assert not data[:7_000].any() and not data[-7_000:].any()
    assert abs(int(data[16_000]) - 16_383) <= 2


def test_bad_audio_is_an_input_error(transcriber: transcribe.Transcriber) -> None:
    with pytest.raises(InputError, match="could not be decoded"):
        transcriber.transcribe(b"not a sound file at all")
    with pytest.raises(InputError, match="list of clips"):
        transcriber.transcribe_batch(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"n_best": 0}, {"n_best": 2.5}, {"n_best": True}, {"pad_seconds": -1}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(InputError):
        transcribe.Transcriber(**kwargs)


def test_missing_model_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pocketsphinx

    monkeypatch.setattr(pocketsphinx, "get_model_path", lambda *a: str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"incomplete .*pip install --force-reinstall pocketsphinx=="):
        transcribe.Transcriber()


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import fails as if not installed
    with pytest.raises(MissingWeightsError, match=r"pip install pocketsphinx=="):
        transcribe.model_folder()
