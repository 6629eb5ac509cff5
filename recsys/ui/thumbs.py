"""Square thumbnails for cards and neighbour strips, so every card has the same picture height.

Every call yields PNG bytes: an item without a picture, or with one that cannot be read, gets a
plain placeholder instead of a path the browser may fail to load (an empty frame in a row of pictures).
"""

from __future__ import annotations

import io
import os

import streamlit as st

THUMB_PX = 256
PLACEHOLDER_RGB = (238, 238, 238)


@st.cache_data(show_spinner=False, max_entries=4096)
def _thumbnail(path: str, mtime_ns: int, size: int) -> bytes:
    from recsys.media import load_image  # pads transparent clip-art onto white, square

    img = load_image(path, min_side=size)  # a big JPEG decodes at a reduced scale: 5-10x less work
    img.thumbnail((size, size))
    return _png(img)


@st.cache_data(show_spinner=False, max_entries=8)
def placeholder(size: int = THUMB_PX) -> bytes:
    """A light grey square: what a thumbnail shows when there is no picture to show."""
    from PIL import Image

    return _png(Image.new("RGB", (size, size), PLACEHOLDER_RGB))


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def thumbnail(path: str | os.PathLike[str] | None, size: int = THUMB_PX) -> bytes:
    """PNG bytes of a square thumbnail of ``path``; a placeholder when there is none or it cannot be read."""
    if path is None:
        return placeholder(size)
    try:
        return _thumbnail(str(path), os.stat(path).st_mtime_ns, size)
    except Exception:  # a missing or unreadable file must not break the page or leave a broken image
        return placeholder(size)
