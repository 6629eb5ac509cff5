from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from recsys import media
from recsys.errors import InputError


def _png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_transparent_png_becomes_square_rgb_on_white(tmp_path: Path, media_factory) -> None:
    path = media_factory.shape_png(tmp_path / "c.png", "circle", (200, 0, 0), size=(80, 40))
    img = media.load_image(path)
    assert img.mode == "RGB" and img.size == (80, 80)
    arr = np.asarray(img)
    assert tuple(arr[0, 0]) == (255, 255, 255)  # padding and transparent corners are white
    assert tuple(arr[40, 40]) == (200, 0, 0)  # the shape is centred, not cropped
    assert tuple(arr[15, 40]) == (255, 255, 255)  # padding band above the 40 px tall original


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "RGBa"])
@pytest.mark.parametrize("size", [(37, 90), (120, 31), (64, 64), (300, 1000)])
@pytest.mark.parametrize("min_side", [None, 448])
def test_semi_transparent_pixels_are_laid_on_white_then_padded(mode, size, min_side) -> None:
    """One paste into the white square gives what laying the picture on white, then padding it gave."""
    rng = np.random.default_rng(len(mode) * size[0] + size[1])
    original = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode)
    rgba = original.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    side = max(size)
    expected = Image.new("RGB", (side, side), (255, 255, 255))
    expected.paste(flat, ((side - size[0]) // 2, (side - size[1]) // 2))
    out = media._to_rgb_square(original, min_side)  # PNG keeps neither PA nor RGBa: the decoded picture as is
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF", "BMP"])
def test_other_formats_from_bytes(fmt: str) -> None:
    data = _png_bytes(Image.new("RGB", (30, 20), (10, 120, 10)), fmt)
    img = media.load_image(data)
    assert img.mode == "RGB" and img.size == (30, 30)


def test_palette_png_with_transparency() -> None:
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    out = media.load_image(_png_bytes(img))
    assert tuple(np.asarray(out)[5, 5]) == (255, 255, 255)


def test_large_image_is_shrunk() -> None:
    out = media.load_image(_png_bytes(Image.new("RGB", (3000, 1500), (1, 2, 3))))
    assert out.size == (media.MAX_IMAGE_SIDE, media.MAX_IMAGE_SIDE)


@pytest.mark.parametrize(("height", "side"), [(1048, 1048), (3000, 1500), (9000, 1800)])
def test_a_long_thin_picture_for_an_encoder_is_squared_under_twice_the_display_bound(height, side) -> None:
    """With ``min_side`` only whole factors shrink a picture: its square may pass ``MAX_IMAGE_SIDE``
    but not twice it (found by the long Hypothesis profile: the bound asserted there was the display one)."""
    out = media.load_image(_png_bytes(Image.new("RGB", (24, height), (1, 2, 3))), min_side=13)
    assert out.size == (side, side) and side <= 2 * media.MAX_IMAGE_SIDE


def _photo_jpeg(width: int, height: int) -> bytes:
    """A real photograph (scikit-learn's sample) scaled up to a product-photo size, as a JPEG."""
    from sklearn.datasets import load_sample_image

    photo = Image.fromarray(load_sample_image("china.jpg")).resize((width, height), Image.Resampling.BICUBIC)
    return _png_bytes(photo, "JPEG")


@pytest.mark.parametrize("size", [(2000, 1500), (1500, 2000), (4000, 3000)])
def test_min_side_decodes_a_big_jpeg_at_a_reduced_scale(size) -> None:
    """Decoded at the smallest DCT scale that keeps both sides >= min_side, and after the encoder's
    resize the pixels are those of the full-size decode up to resampling noise."""
    data = _photo_jpeg(*size)
    small = media.load_image(data, min_side=448)
    full = media.load_image(data)
    short_side = round(small.width * min(size) / max(size))  # the square's side is the long one
    assert small.width < full.width and 448 <= short_side < 2 * 448  # one more halving would go below
    from recsys.encoders.efficientnet import SquareResize

    resize = SquareResize(224)
    diff = np.abs(resize(small).astype(int) - resize(full).astype(int))
    assert diff.mean() < 0.5


def test_min_side_leaves_small_pngs_and_small_jpegs_as_they_were() -> None:
    png = _png_bytes(Image.new("RGB", (1000, 500), (1, 2, 3)))
    assert np.array_equal(np.asarray(media.load_image(png, min_side=448)), np.asarray(media.load_image(png)))
    jpeg = _photo_jpeg(640, 480)  # under twice 448: libjpeg has no scale that keeps 448
    assert np.array_equal(np.asarray(media.load_image(jpeg, min_side=448)), np.asarray(media.load_image(jpeg)))


@pytest.mark.parametrize(
    ("size", "fmt", "side"),
    [
        ((1300, 700), "JPEG", 1300),  # no DCT scale keeps 448, nor a whole factor: left at full size
        ((3000, 1500), "PNG", 1000),  # averaged by 3 (1500 // 448), not Lanczos-resized to 1,024
        ((9000, 500), "PNG", 1800),  # a panorama: by 5, so its square's side stays under 2,048
    ],
)
def test_min_side_skips_the_display_bound_and_averages_by_whole_factors(size, fmt, side) -> None:
    """The encoder resizes the picture itself: at the network's input the result is within
    resampling noise of the full-size picture resized once, and no bigger than twice the display bound."""
    from recsys.encoders.efficientnet import SquareResize

    data = _photo_jpeg(*size) if fmt == "JPEG" else _png_bytes(Image.open(io.BytesIO(_photo_jpeg(*size))), "PNG")
    small = media.load_image(data, min_side=448)
    assert small.size == (side, side)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    square = Image.new("RGB", (max(size), max(size)), (255, 255, 255))
    square.paste(full, ((max(size) - size[0]) // 2, (max(size) - size[1]) // 2))
    resize = SquareResize(224)
    diff = np.abs(resize(small).astype(int) - resize(square).astype(int))
    assert diff.mean() < 0.5


def test_corrupt_image(tmp_path: Path) -> None:
    data = _png_bytes(Image.new("RGB", (200, 200), (5, 5, 5)))
    (tmp_path / "bad.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt|truncated"):
        media.load_image(tmp_path / "bad.png")


def test_non_image_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(InputError, match="not a readable image"):
        media.load_image(tmp_path / "notes.png")


def test_unsupported_image_format() -> None:
    with pytest.raises(InputError, match="TIFF format"):
        media.load_image(_png_bytes(Image.new("RGB", (4, 4)), "TIFF"))


def test_oversized_image_file(tmp_path: Path, media_factory) -> None:
    path = media_factory.shape_png(tmp_path / "c.png", "circle", (1, 2, 3))
    with pytest.raises(InputError, match=r"limit is 0 MB|the limit is"):
        media.load_image(path, max_bytes=10)
    with pytest.raises(InputError, match="the limit is 20 MB"):
        media.load_image(b"\0" * (media.MAX_IMAGE_BYTES + 1))


def test_decompression_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InputError, match="megapixel limit"):
        media.load_image(_png_bytes(Image.new("L", (20, 20))))
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 50)  # PIL's own bomb guard also becomes an InputError
    with pytest.raises(InputError, match="too many pixels"):
        media.load_image(_png_bytes(Image.new("L", (20, 20))))


@pytest.mark.parametrize("loader", [media.load_image, media.load_audio])
def test_empty_bytes_and_missing_file(loader, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is empty"):
        loader(b"")
    with pytest.raises(InputError, match="does not exist"):
        loader(tmp_path / "nope.bin")


@pytest.mark.parametrize("suffix", [".wav", ".ogg", ".flac", ".mp3"])
def test_audio_roundtrip_mono_float32(tmp_path: Path, suffix: str, media_factory) -> None:
    stereo = np.stack([media_factory.tone(440), media_factory.tone(440)], axis=1)
    path = tmp_path / f"a{suffix}"
    if suffix == ".flac":
        sf.write(path, stereo, 16000, format="FLAC")
    elif suffix == ".mp3":
        sf.write(path, stereo, 16000, format="MP3", subtype="MPEG_LAYER_III")
    else:
        media_factory.write_sound(path, stereo)
    clip = media.load_audio(path)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sample_rate == 16000 and abs(clip.seconds - 0.5) < 0.05  # MP3 adds encoder padding
    assert clip.note is None and 0.4 < np.abs(clip.samples).max() <= 1.0


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    path.write_text("definitely not audio\n" * 20)
    with pytest.raises(InputError, match="could not be decoded"):
        media.load_audio(path)


def test_silent_audio(tmp_path: Path, media_factory) -> None:
    path = media_factory.write_sound(tmp_path / "quiet.wav", np.zeros(16000, dtype=np.float32))
    with pytest.raises(InputError, match="silent.*-60 dBFS"):
        media.load_audio(path)


def test_empty_clip(tmp_path: Path, media_factory) -> None:
    path = media_factory.write_sound(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(InputError, match="no samples"):
        media.load_audio(path)


def test_long_clip_truncated_with_note(tmp_path: Path, media_factory) -> None:
    path = media_factory.write_sound(tmp_path / "long.wav", media_factory.tone(300, seconds=3.0, rate=8000), rate=8000)
    clip = media.load_audio(path.read_bytes(), max_seconds=1.0)
    assert clip.seconds == pytest.approx(1.0)
    assert clip.note is not None and "first 1 s of the 3.0 s" in clip.note


def test_oversized_audio_file(tmp_path: Path, media_factory) -> None:
    path = media_factory.write_sound(tmp_path / "a.wav", media_factory.tone(440))
    with pytest.raises(InputError, match="the limit is"):
        media.load_audio(path, max_bytes=100)


def test_check_files(tmp_path: Path, media_factory) -> None:
    media.check_image_file(media_factory.shape_png(tmp_path / "ok.png", "square", (1, 1, 1)))
    media.check_audio_file(media_factory.write_sound(tmp_path / "ok.ogg", media_factory.tone(440)))
    (tmp_path / "bad.ogg").write_bytes(b"OggS but not really")
    with pytest.raises(InputError, match="could not be decoded"):
        media.check_audio_file(tmp_path / "bad.ogg")


def test_sniff_modality() -> None:
    assert media.sniff_modality("A.PNG") == "image"
    assert media.sniff_modality("x/y.mp3") == "audio"
    assert media.sniff_modality("notes.txt") is None


@pytest.mark.parametrize(
    ("rate", "target"), [(5000, 44100), (8000, 16000), (22050, 44100), (48000, 44100), (44100, 16000)]
)
@pytest.mark.parametrize("n", [1, 7, 1000, 44_101])
def test_resampled_is_librosas_soxr_hq(rate, target, n):
    """Called directly, soxr gives what librosa's resample gave before: same values, same length."""
    import librosa

    y = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    expected = librosa.resample(y, orig_sr=rate, target_sr=target, res_type="soxr_hq")
    got = media.resampled(y, rate, target)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_resampled_rejects_what_no_encoder_can_use():
    with pytest.raises(InputError, match="no samples"):
        media.resampled(np.zeros(0, np.float32), 22050, 44100)
    with pytest.raises(InputError, match="NaN"):
        media.resampled(np.array([0.1, np.nan], np.float32), 22050, 44100)
    with pytest.raises(InputError, match="sample rate"):
        media.resampled(np.ones(10, np.float32), 10, 44100)


def test_a_catalogue_image_check_reads_a_pngs_chunks_and_only_the_header_of_other_formats(tmp_path, monkeypatch):
    """PIL's verify checks PNG chunks alone: a JPEG's pixel data is never read by the check (a first
    load of a photo catalogue read every byte of every photo), a PNG's is (a damaged chunk is found)."""
    import builtins

    rng = np.random.default_rng(0)
    pixels = (rng.random((600, 800, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(pixels).save(tmp_path / "picture.png")
    read: dict[str, int] = {}
    real_open = builtins.open

    class Counting:
        def __init__(self, fh, name):
            self._fh, self._name = fh, name

        def read(self, *args):
            data = self._fh.read(*args)
            read[self._name] = read.get(self._name, 0) + len(data)
            return data

        def __getattr__(self, attr):
            return getattr(self._fh, attr)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    monkeypatch.setattr(media, "open", lambda p, mode="r": Counting(real_open(p, mode), Path(p).name), raising=False)
    for name in ("photo.jpg", "picture.png"):
        media.check_image_file(tmp_path / name)
    assert read["photo.jpg"] < 70_000 < (tmp_path / "photo.jpg").stat().st_size
    assert read["picture.png"] >= (tmp_path / "picture.png").stat().st_size
    data = bytearray((tmp_path / "picture.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an IDAT chunk: its CRC no longer matches
    (tmp_path / "damaged.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        media.check_image_file(tmp_path / "damaged.png")


def test_a_catalogue_audio_check_reads_the_header_from_the_file(tmp_path, monkeypatch):
    """libsndfile probes a clip's header from the file: the whole file is read only for the fallback."""
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.sin(np.linspace(0, 600, 48_000)).astype(np.float32) * 0.5, 16_000)
    real = media._read_bytes
    monkeypatch.setattr(media, "_read_bytes", lambda *a, **k: pytest.fail("read the whole clip"))
    media.check_audio_file(clip)
    monkeypatch.setattr(media, "_read_bytes", real)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        media.check_audio_file(tmp_path / "empty.wav")
