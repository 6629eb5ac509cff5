"""recsys.ui.uploads without Streamlit: decoding, limits and the wording of the messages."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from recsys import media
from recsys.errors import InputError
from recsys.ui.uploads import decode_audio_upload, decode_image_upload, human_size, query_media


class Upload:
    def __init__(self, name, data):
        self.name, self.data = name, data

    def getvalue(self):
        return self.data


def webp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (30, 20), (0, 0, 255, 128)).save(buf, format="WEBP")
    return buf.getvalue()


def flac(samples) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), 22050, format="FLAC")
    return buf.getvalue()


def test_human_size():
    assert human_size(512) == "512 bytes"
    assert human_size(1536) == "1.5 KB"
    assert human_size(20 * 1024 * 1024) == "20 MB"


def test_decodes_webp_to_rgb():
    img = decode_image_upload("a.webp", webp())
    assert img.mode == "RGB"


def test_decodes_flac():
    clip = decode_audio_upload("a.flac", flac(0.3 * np.sin(np.linspace(0, 400, 22050))))
    assert clip.sample_rate > 0 and len(clip.samples) > 0


@pytest.mark.parametrize(
    ("call", "data", "words"),
    [
        (decode_image_upload, b"", "empty"),
        (decode_image_upload, b"GIF89a nonsense", "image"),
        (decode_image_upload, b"\0" * (media.MAX_IMAGE_BYTES + 1), "limit is 20 MB"),
        (decode_audio_upload, b"not audio at all", "x.bin"),
        (decode_audio_upload, b"\0" * (media.MAX_AUDIO_BYTES + 1), "limit is 30 MB"),
    ],
)
def test_bad_files_raise_input_errors_naming_the_file(call, data, words):
    with pytest.raises(InputError) as info:
        call("x.bin", data)
    assert "x.bin" in str(info.value) and words in str(info.value)


def test_silent_audio():
    with pytest.raises(InputError, match="silent"):
        decode_audio_upload("s.flac", flac(np.zeros(22050)))


def test_query_media_keeps_good_inputs_and_reports_bad_ones():
    image, audio, errors = query_media(Upload("ok.webp", webp()), Upload("bad.ogg", b"OggS broken"))
    assert image is not None and audio is None
    assert len(errors) == 1 and "bad.ogg" in errors[0]
    assert query_media(None, None) == (None, None, [])
