"""The four error cases on the Recommend page: each shows a clear message, no traceback, state kept.

AppTest cannot upload files, so these tests replace the page's file uploader by one that returns
the given bytes (the same ``name`` / ``getvalue()`` interface as Streamlit's UploadedFile).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from recsys import media


class FakeUpload:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data, self.size = name, data, len(data)

    def getvalue(self) -> bytes:
        return self._data


@pytest.fixture
def uploads(monkeypatch):
    """Files 'uploaded' per widget key; set ``files['query-image'] = FakeUpload(...)``."""
    files: dict[str, FakeUpload] = {}
    original = DeltaGenerator.file_uploader

    def file_uploader(self, label, *args, key=None, **kwargs):
        original(self, label, *args, key=key, **kwargs)  # still render the widget
        return files.get(key)

    monkeypatch.setattr(DeltaGenerator, "file_uploader", file_uploader)
    return files


def png(colour=(220, 20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, format="PNG")
    return buf.getvalue()


def wav(samples: np.ndarray, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_a_good_image_is_shown_back_and_used(fake_app, uploads):
    uploads["query-image"] = FakeUpload("red.png", png())
    at = fake_app().run()
    assert not at.exception and not at.error
    assert at.session_state["last_search"].result_ids[0] == "apple"
    assert "your image" in [c for img in at.get("image") for c in img.captions]  # shown back


def test_unreadable_image_shows_an_error_and_keeps_the_text_query(fake_app, uploads):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("a red apple").run()
    at.button(key="card-like-car").click().run()
    before = at.session_state["last_search"].result_ids
    uploads["query-image"] = FakeUpload("broken.png", b"\x89PNG\r\n\x1a\n this is not a picture")
    at.run()
    assert not at.exception
    assert any("broken.png" in e and re.search("corrupt|not a readable", e) for e in errors(at))
    assert at.session_state["last_search"].result_ids == before  # the text and likes still answer
    assert at.session_state["profile"].likes == ["car"]  # the session's state is kept


def test_oversized_image_states_the_limit(fake_app, uploads):
    uploads["query-image"] = FakeUpload("huge.png", png() + b"\0" * (media.MAX_IMAGE_BYTES + 1))
    at = fake_app().run()
    assert not at.exception
    limit_mb = media.MAX_IMAGE_BYTES // (1024 * 1024)
    assert any("huge.png" in e and f"limit is {limit_mb} MB" in e for e in errors(at))


def test_oversized_audio_states_the_limit(fake_app, uploads):
    uploads["query-audio"] = FakeUpload("long.wav", b"RIFF" + b"\0" * (media.MAX_AUDIO_BYTES + 1))
    at = fake_app().run()
    limit_mb = media.MAX_AUDIO_BYTES // (1024 * 1024)
    assert any("long.wav" in e and f"limit is {limit_mb} MB" in e for e in errors(at))


def test_silent_audio_is_rejected_with_a_message(fake_app, uploads):
    uploads["query-audio"] = FakeUpload("quiet.wav", wav(np.zeros(16000)))
    at = fake_app().run()
    assert not at.exception
    assert any("quiet.wav" in e and "silent" in e for e in errors(at))
    # nothing usable is left in the query: the empty-query message follows
    assert any("query is empty" in e for e in errors(at))


def test_a_tone_is_played_back_and_used(fake_app, uploads):
    t = np.arange(8000) / 16000
    uploads["query-audio"] = FakeUpload("tone.wav", wav(0.5 * np.sin(2 * np.pi * 900 * t)))
    at = fake_app().run()
    assert not at.exception and not at.error
    assert any("your sound" in c.value for c in at.caption)
    assert at.session_state["last_search"].result_ids[0] == "car"  # the fakes map 900 Hz to the car


def test_empty_query_message(fake_app, uploads):
    at = fake_app().run()
    at.text_input(key="query-text").set_value("   ").run()
    at.button(key="recommend").click().run()
    assert any("query is empty" in e for e in errors(at))
    assert not at.exception
