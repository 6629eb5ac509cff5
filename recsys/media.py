"""Decoding and validation of user media (images, audio).

Every image or clip the product touches -- an upload, a catalogue file -- goes through here, so
the limits and the error messages live in one place. All failures raise :class:`InputError`
with a message that names the file and says what is wrong.

Limits (module constants):

- images: files up to ``MAX_IMAGE_BYTES`` (20 MB) and ``MAX_IMAGE_PIXELS`` (50 megapixels; larger
  is treated as a decompression bomb); PNG, JPEG, WebP, GIF (first frame) or BMP. The decoded
  image is shrunk to at most ``MAX_IMAGE_SIDE`` px (the encoders work at ~224 px).
- audio: files up to ``MAX_AUDIO_BYTES`` (30 MB); WAV, OGG, FLAC or MP3, and whatever else
  libsndfile reads (AIFF, AU, CAF, ...), at ``MIN_SAMPLE_RATE`` to ``MAX_SAMPLE_RATE`` (1 kHz to
  384 kHz; other rates are refused with a message). An oversized *file* is rejected, but a long
  *clip* is truncated to its first ``MAX_AUDIO_SECONDS`` (30 s) and the returned :class:`Audio`
  carries a ``note`` saying so. A clip whose peak is below ``SILENCE_DBFS`` (-60 dBFS), or that
  holds NaN or infinite samples, is rejected.
- paths: a folder, FIFO, symlink loop, over-long name or NUL byte is named as such (never opened).

The catalogue's load-time checks (:func:`check_image_file`, :func:`check_audio_file`) stay cheap
(headers, PIL ``verify``): a file they accept can still fail to decode (a truncated JPEG, garbage
PNG data, a silent or NaN clip, corrupt FLAC frames). Indexing then decodes every file: items
that fail are listed in one warning line with their ids and get no vector for that modality
(:func:`recsys.encoding.store_encoded`); their other modalities still count.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np

from recsys.errors import InputError
from recsys.paths import file_problem

if TYPE_CHECKING:
    from PIL import Image as PILImage

MB = 1024 * 1024
MAX_IMAGE_BYTES = 20 * MB
MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_SIDE = 1024
MAX_AUDIO_BYTES = 30 * MB
MAX_AUDIO_SECONDS = 30.0
SILENCE_DBFS = -60.0
#: Sample rates outside these bounds are refused: below, no audible content survives; above, the
#: header is almost surely damaged (studio audio stops at 384 kHz).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000

IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP"}  # MPO: multi-picture JPEG from phone cameras
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
AUDIO_EXTENSIONS = {".wav", ".ogg", ".oga", ".flac", ".mp3"}

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


@dataclass(frozen=True)
class Audio:
    """A decoded clip: mono float32 samples in [-1, 1] at ``sample_rate`` Hz.

    ``note`` is a message for the user when the clip was changed on the way (e.g. truncated).
    """

    samples: np.ndarray
    sample_rate: int
    note: str | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def sniff_modality(filename: str | os.PathLike[str]) -> Literal["image", "audio"] | None:
    """``"image"`` / ``"audio"`` from the file extension, ``None`` for anything else."""
    suffix = Path(filename).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    return None


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


def _limit(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


def _describe(src: object) -> str:
    """How messages name the input: ``file 'x.png'`` or ``upload``."""
    if isinstance(src, bytes | bytearray | memoryview):
        return "upload"
    name = getattr(src, "name", None)  # e.g. Streamlit's UploadedFile
    if name is not None and not isinstance(src, str | os.PathLike):
        return f"file '{name}'"
    return f"file '{src}'"


def _read_bytes(src: object, kind: str, max_bytes: int) -> bytes:
    """The raw bytes of ``src`` (path, bytes or file-like), size-checked before a big file is read."""
    what = _describe(src)
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
    elif hasattr(src, "getvalue"):
        data = src.getvalue()
    elif hasattr(src, "read"):
        data = src.read()
    else:
        path = Path(src)  # type: ignore[arg-type]
        _check_file_size(path, kind, max_bytes)
        data = path.read_bytes()
    if not data:
        raise InputError(f"{kind} {what} is empty.")
    if len(data) > max_bytes:
        raise InputError(f"{kind} {what} is {_mb(len(data))}; the limit is {_limit(max_bytes)}.")
    return data


def _check_file_size(path: Path, kind: str, max_bytes: int) -> int:
    """What every read of a media file checks before reading: a regular file, within ``max_bytes``;
    returns its size."""
    problem = file_problem(path)
    if problem is not None:
        raise InputError(f"{kind} {_describe(_short(path))} {problem}.")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{kind} {_describe(path)} is {_mb(size)}; the limit is {_limit(max_bytes)}.")
    return size


def _short(path: Path) -> str:
    """A path as messages show it: at most 120 characters (a 300-character name stays readable)."""
    text = str(path).replace("\0", "\\0")
    return text if len(text) <= 120 else f"{text[:60]}...{text[-57:]}"


def _open_image(data: bytes | BinaryIO, what: str) -> PILImage.Image:
    """Open (header only) and check format and pixel count, without decoding the pixels; ``data``
    is the file's bytes or the open file, of which PIL reads the header alone."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"Image {what} has too many pixels to decode safely ({exc}).") from exc
        except UnidentifiedImageError as exc:
            raise InputError(f"Image {what} is not a readable image; use PNG, JPEG, WebP, GIF or BMP.") from exc
        except Exception as exc:  # PIL raises assorted errors on malformed headers
            raise InputError(f"Image {what} is corrupt ({exc}).") from exc
    if img.format not in IMAGE_FORMATS:
        raise InputError(f"Image {what} is in {img.format} format; use PNG, JPEG, WebP, GIF or BMP.")
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"Image {what} is {width} x {height} px, over the {MAX_IMAGE_PIXELS // 1_000_000} megapixel limit."
        )
    if width == 0 or height == 0:
        raise InputError(f"Image {what} has no pixels ({width} x {height}).")
    return img


def _to_rgb_square(img: PILImage.Image, min_side: int | None = None) -> PILImage.Image:
    """RGB on white, padded (not cropped) to a square: clip-art keeps its whole outline.

    Bounded to ``MAX_IMAGE_SIDE`` for display; with ``min_side`` (a caller that resizes further
    itself) only shrunk by a whole factor, see :func:`_reduced`.
    """
    from PIL import Image, ImageOps

    ImageOps.exif_transpose(img, in_place=True)  # the caller's fresh decode: no copy of the pixels
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float greyscale
        arr = np.asarray(img, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        if not _shrinks(rgba, min_side):  # laid on white straight into the square: one canvas, one paste
            return _on_white(rgba, max(rgba.size))
        img = _on_white(rgba, None)
    elif img.mode != "RGB":  # converting to its own mode would copy the pixels
        img = img.convert("RGB")
    if min_side is None:
        img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    else:
        img = _reduced(img, min_side)
    side = max(img.size)
    if img.size == (side, side):
        return img
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return square


def _on_white(rgba: PILImage.Image, side: int | None) -> PILImage.Image:
    """``rgba`` laid on white, centred in a white ``side`` x ``side`` square (None: its own size)."""
    from PIL import Image

    size = rgba.size if side is None else (side, side)
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(rgba, ((size[0] - rgba.width) // 2, (size[1] - rgba.height) // 2), mask=rgba)
    return canvas


def _shrinks(img: PILImage.Image, min_side: int | None) -> bool:
    """Whether :func:`_to_rgb_square` makes ``img`` smaller (``thumbnail``, or :func:`_reduced`)."""
    if min_side is None:
        return max(img.size) > MAX_IMAGE_SIDE
    return _factor(img, min_side) >= 2


def _factor(img: PILImage.Image, min_side: int) -> int:
    """The whole factor :func:`_reduced` averages ``img`` down by (< 2: none)."""
    width, height = img.size
    return max(min(width, height) // min_side, -(-max(width, height) // (2 * MAX_IMAGE_SIDE)))


def _reduced(img: PILImage.Image, min_side: int) -> PILImage.Image:
    """``img`` averaged down by the largest whole factor that keeps both sides >= ``min_side``, and
    by more where its long side would stay over twice ``MAX_IMAGE_SIDE`` (a panorama's square).

    Why not the display path's Lanczos to ``MAX_IMAGE_SIDE``: a 1,290 px photo took 15 ms there, for
    a picture the encoder shrinks to 224 anyway; the box average and the encoder's own resize took
    a third of the time, with vectors as close to a full-size decode's.
    """
    factor = _factor(img, min_side)
    return img.reduce(factor) if factor >= 2 else img


def load_image(src: Source, *, max_bytes: int = MAX_IMAGE_BYTES, min_side: int | None = None) -> PILImage.Image:
    """Decode an image (path, bytes or uploaded file) into a square RGB ``PIL.Image`` on white.

    A JPEG larger than needed is decoded at a reduced scale (libjpeg's 1/2, 1/4 or 1/8, in the DCT:
    a fraction of the work) whose sides are both at least ``MAX_IMAGE_SIDE``, or ``min_side`` when
    the caller needs only that much (EfficientNet-Lite0's 448: a 4,000 x 3,000 photo then decodes
    at 1,000 x 750 instead of 2,000 x 1,500). With ``min_side`` the picture is not bounded to
    ``MAX_IMAGE_SIDE`` for display either, only averaged down by whole factors (:func:`_reduced`):
    the caller resizes it.
    """
    what = _describe(src)
    data = _read_bytes(src, "Image", max_bytes)
    img = _open_image(data, what)
    side = MAX_IMAGE_SIDE if min_side is None else max(1, min(int(min_side), MAX_IMAGE_SIDE))
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (side, side))
        img.load()
    except Exception as exc:  # truncated / corrupt pixel data
        raise InputError(f"Image {what} is corrupt or truncated ({exc}).") from exc
    return _to_rgb_square(img, None if min_side is None else side)


@dataclass(frozen=True)
class JpegFile:
    """A JPEG's bytes for a GPU to decode, with what the decoder does not apply: the EXIF orientation."""

    data: np.ndarray  # (n,) uint8, the whole file
    orientation: int  # EXIF 1-8 (1: as stored)
    width: int
    height: int


def read_jpeg(src: Source, *, max_bytes: int = MAX_IMAGE_BYTES) -> JpegFile | None:
    """The file as it is, when it is a baseline JPEG in RGB or greyscale (what nvJPEG decodes); None
    for anything else, which is decoded on the CPU as usual. Size and pixel limits are checked as
    :func:`load_image` checks them; the pixels are not decoded, so damage there shows on the GPU."""
    what = _describe(src)
    data = _read_bytes(src, "Image", max_bytes)
    img = _open_image(data, what)
    progressive = img.info.get("progressive") or img.info.get("progression")
    if img.format != "JPEG" or img.mode not in ("RGB", "L") or progressive:
        return None
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block: decoded on the CPU, which reports what is wrong
        return None
    if not 1 <= orientation <= 8:
        orientation = 1  # as PIL's exif_transpose treats an unknown value
    return JpegFile(np.frombuffer(data, dtype=np.uint8), orientation, img.width, img.height)


def check_image_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_IMAGE_BYTES) -> None:
    """Cheap validity check for catalogue images: size, header and PIL ``verify`` (no full decode).

    Only the header is read, except from a PNG: PNG is the one format PIL's ``verify`` checks
    (every chunk's CRC); for the others it does nothing. Why: reading every byte of every photo to
    look at its header made a first load of a photo catalogue read it all (~300 GB at 1M photos),
    once more than hashing and decoding it do; a 1 MB JPEG was checked in 179 us from the page cache,
    its header alone in ~35 us.
    """
    what = f"file '{path}'"
    if _check_file_size(Path(path), "Image", max_bytes) == 0:
        raise InputError(f"Image {what} is empty.")
    try:
        with open(path, "rb") as fh:
            img = _open_image(fh, what)
            if img.format == "PNG":
                try:
                    img.verify()
                except Exception as exc:
                    raise InputError(f"Image {what} is corrupt ({exc}).") from exc
    except OSError as exc:  # opening or reading it (a file that went away, a read error)
        raise InputError(f"Image {what} cannot be read ({exc.strerror or exc}).") from exc


def _check_rate(rate: int, what: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(
            f"Audio {what} has a sample rate of {rate:,} Hz; "
            f"accepted rates are {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz."
        )


def _decode_soundfile(data: bytes, max_seconds: float) -> tuple[np.ndarray, int, float]:
    """(samples (n, channels), rate, full duration) reading at most ``max_seconds`` of audio."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as fh:
        rate = int(fh.samplerate)
        _check_rate(rate, "clip")  # before reading: a damaged rate can ask for absurd sample counts
        total = fh.frames / rate if rate > 0 else 0.0
        frames = fh.read(int(max_seconds * rate) if rate > 0 else -1, dtype="float32", always_2d=True)
    return frames, rate, total


def _decode_audioread(data: bytes, suffix: str, max_seconds: float) -> tuple[np.ndarray, int, float]:
    """Fallback for what libsndfile cannot read (e.g. some MP3s): librosa over audioread (needs a path)."""
    import librosa

    with tempfile.TemporaryDirectory(prefix="recsys-audio-") as tmp:
        path = Path(tmp) / f"clip{suffix or '.mp3'}"
        path.write_bytes(data)  # scratch copy for the decoder, deleted on exit
        with warnings.catch_warnings():  # librosa warns that its audioread path is deprecated: it is our fallback
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)  # "PySoundFile failed. Trying audioread instead."
            total = float(librosa.get_duration(path=str(path)))
            samples, rate = librosa.load(str(path), sr=None, mono=False, duration=max_seconds, dtype=np.float32)
    samples = np.atleast_2d(samples).T  # librosa gives (channels, n)
    return samples, int(rate), total


def load_audio(src: Source, *, max_bytes: int = MAX_AUDIO_BYTES, max_seconds: float = MAX_AUDIO_SECONDS) -> Audio:
    """Decode a clip to mono float32. Long clips are truncated to ``max_seconds`` (see ``Audio.note``)."""
    what = _describe(src)
    data = _read_bytes(src, "Audio", max_bytes)
    suffix = "" if isinstance(src, bytes | bytearray | memoryview) else Path(str(getattr(src, "name", src))).suffix
    try:
        frames, rate, total = _decode_soundfile(data, max_seconds)
    except InputError as exc:  # read but refused (an absurd sample rate): no second decoder
        raise InputError(str(exc).replace("Audio clip", f"Audio {what}")) from None
    except Exception as first:
        try:
            frames, rate, total = _decode_audioread(data, suffix.lower(), max_seconds)
        except Exception:
            raise InputError(
                f"Audio {what} could not be decoded: it is not a WAV, OGG, FLAC or MP3 file, or it is corrupt."
            ) from first
    _check_rate(rate, what)
    if frames.size == 0:
        raise InputError(f"Audio {what} contains no samples (empty clip).")
    samples = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    if not np.all(np.isfinite(samples)):
        raise InputError(f"Audio {what} contains invalid samples (NaN or infinity).")
    samples = np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
    peak = float(np.max(np.abs(samples)))
    if peak <= 10 ** (SILENCE_DBFS / 20):
        raise InputError(
            f"Audio {what} is silent (its loudest sample is below {SILENCE_DBFS:.0f} dBFS); check the recording."
        )
    note = None
    if total > max_seconds + 1e-3:
        note = f"Only the first {max_seconds:g} s of the {total:.1f} s clip are used."
    return Audio(samples=np.ascontiguousarray(samples), sample_rate=rate, note=note)


def check_audio_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_AUDIO_BYTES) -> None:
    """Cheap validity check for catalogue audio: size and a header probe (no full decode). libsndfile
    reads the header from the file itself; the whole file is read only for the fallback decoder."""
    import soundfile as sf

    _check_file_size(Path(path), "Audio", max_bytes)
    try:
        info = sf.info(os.fspath(path))
    except Exception:
        data = _read_bytes(path, "Audio", max_bytes)
        try:  # what libsndfile cannot probe, decode a little with the fallback
            frames, rate, _ = _decode_audioread(data, Path(path).suffix.lower(), max_seconds=1.0)
        except Exception as exc:
            raise InputError(
                f"Audio file '{path}' could not be decoded: it is not a WAV, OGG, FLAC or MP3 file, or it is corrupt."
            ) from exc
        _check_rate(rate, f"file '{path}'")
        if frames.size == 0:
            raise InputError(f"Audio file '{path}' contains no samples (empty clip).") from None
        return
    _check_rate(int(info.samplerate), f"file '{path}'")
    if info.frames == 0:
        raise InputError(f"Audio file '{path}' contains no samples (empty clip).")


def resampled(samples: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 ``samples`` at ``target_rate``: soxr's high quality, trimmed or padded to
    ``ceil(n * target / rate)`` samples (exactly what ``librosa.resample(res_type="soxr_hq")`` gives).

    soxr is called directly: librosa's first resample imports its lazy submodules (~1.5 s), a cost
    every batch worker process and every app process paid once. Encoders may be handed an
    :class:`Audio` built in code rather than by :func:`load_audio`, so the checks that matter to
    their front ends are repeated here: samples present, finite, a usable rate.
    """
    y = np.asarray(samples, dtype=np.float32).reshape(-1)
    if y.size == 0:
        raise InputError("An audio clip has no samples; it cannot be encoded.")
    if not np.all(np.isfinite(y)):
        raise InputError("An audio clip contains invalid samples (NaN or infinity); it cannot be encoded.")
    _check_rate(int(sample_rate), "clip")
    if int(sample_rate) == int(target_rate):
        return y
    import soxr

    out = np.asarray(soxr.resample(y, int(sample_rate), int(target_rate), quality="HQ"), dtype=np.float32)
    size = int(np.ceil(y.size * int(target_rate) / int(sample_rate)))
    return out[:size] if out.size >= size else np.pad(out, (0, size - out.size))
