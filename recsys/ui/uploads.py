"""Turning uploaded files into query media, with messages a person can act on."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recsys.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from recsys.media import Audio

IMAGE_TYPES = ("png", "jpg", "jpeg", "webp")
AUDIO_TYPES = ("wav", "ogg", "flac", "mp3")


def human_size(n_bytes: int) -> str:
    """1536 -> '1.5 KB', 10485760 -> '10 MB'."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" or size.is_integer() else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _check(name: str, data: bytes, limit: int, kind: str, types: tuple[str, ...]) -> None:
    if not data:
        raise InputError(f"The {kind} file {name!r} is empty. Upload a {'/'.join(types).upper()} file.")
    if len(data) > limit:
        raise InputError(
            f"The {kind} file {name!r} is {human_size(len(data))}; the limit is {human_size(limit)}. "
            f"Upload a smaller file."
        )


def _name_file(message: str, name: str, kind: str) -> str:
    """Put the uploaded file's name into a media error (media only knows it was given bytes)."""
    named = message.replace("the uploaded file", repr(name))
    return named if repr(name) in named else f"Could not use the {kind} {name!r}: {message}"


def decode_image_upload(name: str, data: bytes) -> Image.Image:
    """Validate and decode an uploaded image; raises InputError naming the file and the problem."""
    from recsys import media

    _check(name, data, media.MAX_IMAGE_BYTES, "image", IMAGE_TYPES)
    try:
        return media.load_image(data)
    except InputError as exc:
        raise InputError(_name_file(str(exc), name, "image")) from exc


def decode_audio_upload(name: str, data: bytes) -> Audio:
    """Validate and decode an uploaded sound; raises InputError for unreadable, oversized or silent clips."""
    from recsys import media

    _check(name, data, media.MAX_AUDIO_BYTES, "audio", AUDIO_TYPES)
    try:
        return media.load_audio(data)
    except InputError as exc:
        raise InputError(_name_file(str(exc), name, "sound")) from exc


def digest(data: bytes) -> str:
    """Short content hash: the cache key of a decoded upload."""
    return hashlib.sha256(data).hexdigest()[:16]


def query_media(
    image_file: Any,
    audio_file: Any,
    decode_image: Callable[[str, bytes], Image.Image] | None = None,
    decode_audio: Callable[[str, bytes], Audio] | None = None,
) -> tuple[Image.Image | None, Audio | None, list[str]]:
    """Decode the uploaded files (objects with ``name`` and ``getvalue()``, e.g. Streamlit's UploadedFile).

    A bad file becomes a message and is left out of the query; the other inputs still count.
    The decoders default to :func:`decode_image_upload` / :func:`decode_audio_upload` (the app
    passes cached ones so a rerun does not decode the same file again).
    """
    decode_image = decode_image or decode_image_upload
    decode_audio = decode_audio or decode_audio_upload
    image, audio, errors = None, None, []
    if image_file is not None:
        try:
            image = decode_image(image_file.name, image_file.getvalue())
        except InputError as exc:
            errors.append(str(exc))
    if audio_file is not None:
        try:
            audio = decode_audio(audio_file.name, audio_file.getvalue())
        except InputError as exc:
            errors.append(str(exc))
    return image, audio, errors


def image_limit() -> int:
    from recsys.media import MAX_IMAGE_BYTES

    return MAX_IMAGE_BYTES


def audio_limit() -> int:
    from recsys.media import MAX_AUDIO_BYTES

    return MAX_AUDIO_BYTES


def limit_mb(n_bytes: int) -> int:
    """A byte limit in whole MB for Streamlit's uploader, which shows it and enforces it in the browser."""
    return max(1, -(-n_bytes // (1024 * 1024)))
