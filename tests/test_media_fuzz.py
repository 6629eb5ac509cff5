"""Property: whatever bytes arrive as an image or a sound (random, truncated, bit-flipped, extreme
sizes and sample rates), decoding and the catalogue check raise nothing but ``RecsysError``, and what
decodes is finite: RGB pixels of a bounded square, mono float samples in [-1, 1] at a sane rate.
"""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from recsys import media
from recsys.errors import RecsysError


def _png(size: tuple[int, int] = (12, 9)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 128)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    pixels = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def _wav(rate: int = 16_000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, 0.5 * np.sin(np.arange(rate // 4) / 5.0), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


IMAGES = [_png(), _jpeg(), _png((1, 300))]
SOUNDS = [_wav(), _wav(subtype="FLOAT"), _wav(fmt="FLAC", subtype="PCM_16"), _wav(8_000, fmt="AIFF")]


@st.composite
def damaged(draw, originals: list[bytes]) -> bytes:
    """A valid file cut short, with bits flipped, with garbage spliced in, or plain random bytes."""
    data = bytearray(draw(st.sampled_from(originals)))
    how = draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    if how == "random":
        return draw(st.binary(max_size=2_000))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    at = draw(st.integers(0, len(data)))
    return bytes(data[:at]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[at:])


def _finite_image(img, longest: int = media.MAX_IMAGE_SIDE) -> None:
    assert img.mode == "RGB" and img.width == img.height
    assert 1 <= img.width <= longest


def _finite_audio(clip: media.Audio) -> None:
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1 and clip.samples.size
    assert np.isfinite(clip.samples).all() and np.abs(clip.samples).max() <= 1.0
    assert media.MIN_SAMPLE_RATE <= clip.sample_rate <= media.MAX_SAMPLE_RATE


def _only_messages(data: bytes, load, check, valid, folder: Path, name: str) -> None:
    """Decoding ``data`` (as bytes) and checking it (as a file) raise nothing but ``RecsysError``;
    what decodes passes ``valid``."""
    with contextlib.suppress(RecsysError):
        valid(load(data))
    path = folder / name
    path.write_bytes(data)
    with contextlib.suppress(RecsysError):
        check(path)


@given(data=damaged(IMAGES))
def test_image_bytes_decode_to_a_square_or_raise_a_message(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("img")
    _only_messages(data, media.load_image, media.check_image_file, _finite_image, folder, "x.png")


@given(data=damaged(IMAGES), min_side=st.one_of(st.none(), st.integers(-5, 5000)))
def test_image_bytes_decoded_for_an_encoder_give_a_square_or_a_message(data, min_side):
    """The pipeline's reduced-scale decode (any ``min_side``, even nonsense) gives a square too, only
    averaged down by whole factors: a long thin picture's square may pass ``MAX_IMAGE_SIDE`` (24 x
    1,048 px stays 1,048 wide at min_side 13), never twice it (``media._reduced``)."""
    with contextlib.suppress(RecsysError):
        _finite_image(media.load_image(data, min_side=min_side), 2 * media.MAX_IMAGE_SIDE)


@given(data=damaged(SOUNDS))
def test_sound_bytes_decode_to_finite_samples_or_raise_a_message(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("snd")
    _only_messages(data, media.load_audio, media.check_audio_file, _finite_audio, folder, "x.wav")


@given(rate=st.one_of(st.integers(1, 999), st.integers(384_001, 2**31 - 1), st.integers(1_000, 384_000)))
def test_sample_rates_outside_the_documented_range_are_refused(rate):
    wav = bytearray(_wav())
    wav[24:28] = struct.pack("<I", rate)  # the fmt chunk's sample rate
    wav[28:32] = struct.pack("<I", rate * 2)  # and its byte rate
    if media.MIN_SAMPLE_RATE <= rate <= media.MAX_SAMPLE_RATE:
        assert media.load_audio(bytes(wav)).sample_rate == rate
    else:
        with pytest.raises(RecsysError, match="sample rate"):
            media.load_audio(bytes(wav))


@pytest.mark.parametrize(
    "samples, reason",
    [(np.zeros(4000), "silent"), (np.full(4000, np.nan), "NaN or infinity"), (np.full(4000, np.inf), "NaN")],
)
def test_silent_and_non_finite_clips_are_refused(samples, reason):
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), 16_000, format="WAV", subtype="FLOAT")
    with pytest.raises(RecsysError, match=reason):
        media.load_audio(buf.getvalue())


@given(side=st.sampled_from([(1, 1), (1, 4000), (4000, 1), (3000, 2000)]))
@settings(max_examples=8)
def test_extreme_image_sizes_decode_within_the_side_limit(side):
    buf = io.BytesIO()
    Image.new("L", side, 90).save(buf, "PNG")
    _finite_image(media.load_image(buf.getvalue()))


def test_a_pixel_bomb_is_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(buf, "PNG")  # 60 megapixels in a few kB
    with pytest.raises(RecsysError, match="megapixel|too many pixels"):
        media.load_image(buf.getvalue())


@pytest.mark.parametrize("make, words", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: __import__("os").mkfifo(p), "named pipe"),
    (lambda p: p.symlink_to(p), "symlink loop"),
])  # fmt: skip
def test_paths_that_are_not_files_are_named_for_what_they_are(tmp_path, make, words):
    path = tmp_path / "thing.wav"
    make(path)
    for load in (media.load_audio, media.load_image, media.check_audio_file, media.check_image_file):
        with pytest.raises(RecsysError, match=words):
            load(path)


def test_long_names_and_nul_bytes_are_messages(tmp_path):
    with pytest.raises(RecsysError, match="file name of 304 bytes"):
        media.load_image(tmp_path / ("x" * 300 + ".png"))
    with pytest.raises(RecsysError, match="NUL byte"):
        media.load_audio(str(tmp_path / "a\0b.wav"))


@given(data=damaged([_jpeg(), _jpeg(), _png()]))
def test_image_bytes_for_the_device_give_pixels_or_a_message(data):
    """A JPEG read for the GPU (recsys.encoders.jpeg, decoded here on the CPU by the same call): the
    worker's header check raises only RecsysError, and the device step gives the picture or its
    slot's failure message, never an exception."""
    from recsys.encoders.jpeg import DeviceJpegResize

    pre = DeviceJpegResize()
    try:
        jpeg = media.read_jpeg(data)
    except RecsysError:
        return
    if jpeg is None:
        return
    pixels, failed = pre.finish_batch(pre.collate([jpeg]), "cpu")
    assert set(failed) <= {0} and all(isinstance(m, str) and m for m in failed.values())
    assert tuple(pixels.shape) == (1, 3, 224, 224)
