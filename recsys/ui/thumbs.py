"""Square thumbnails for cards and neighbour strips, so every card has the same picture height."""

from __future__ import annotations

import io
import os

import streamlit as st

THUMB_PX = 256


@st.cache_data(show_spinner=False, max_entries=4096)
def _thumbnail(path: str, mtime_ns: int, size: int) -> bytes:
    from recsys.media import load_image  # pads transparent clip-art onto white, square

    img = load_image(path)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def thumbnail(path: str | os.PathLike[str], size: int = THUMB_PX) -> bytes | str:
    """PNG bytes of a square thumbnail of ``path``; the path itself if it cannot be read that way."""
    try:
        return _thumbnail(str(path), os.stat(path).st_mtime_ns, size)
    except Exception:  # an unreadable file still shows whatever the browser can make of it
        return str(path)
