"""Process-wide cached resources for the pages: the engine (built once, with a progress bar) and maps."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from recsys.errors import RecsysError

if TYPE_CHECKING:  # pragma: no cover
    from recsys.projection import Projection, ProjectionParams
    from recsys.recommend import RecommendationEngine

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_ENV = "RECSYS_CATALOGUE"
DEFAULT_CATALOGUE = REPO_ROOT / "data" / "tuxpaint"


def catalogue_dir() -> Path:
    """The catalogue the demo serves: ``RECSYS_CATALOGUE`` or the bundled Tux Paint catalogue."""
    return Path(os.environ.get(CATALOGUE_ENV) or DEFAULT_CATALOGUE)


def cache_dir() -> Path:
    """Where derived files (maps) go: beside the embedding cache (``RECSYS_CACHE_DIR`` or ~/.cache/recsys)."""
    from recsys.cache import default_cache_dir

    return Path(default_cache_dir())


@dataclass
class _Engines:
    """Engines by catalogue folder, shared by every session of the process."""

    by_dir: dict[str, RecommendationEngine] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner=False)
def _engines() -> _Engines:
    # The registry itself is the cached resource: building an engine inside a cached function would
    # make Streamlit replay the progress bar, which lives outside it.
    return _Engines()


def get_engine() -> RecommendationEngine:
    """The engine for :func:`catalogue_dir`; the first call builds the embedding cache with a progress bar.

    A catalogue or model problem is shown as an error and stops the page (no traceback).
    """
    registry = _engines()
    key = str(catalogue_dir())
    engine = registry.by_dir.get(key)
    if engine is not None:
        return engine
    slot = st.empty()
    bar = None

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal bar
        frac = min(max(done / total if total else 1.0, 0.0), 1.0)
        text = f"Building the embedding cache (first start only): {stage} {done}/{total}"
        if bar is None:
            bar = slot.progress(frac, text=text)
        else:
            bar.progress(frac, text=text)

    from recsys.pipeline import load_engine

    try:
        with registry.lock, st.spinner("Loading the models and the catalogue..."):
            # load_engine encodes in the batch thread role and leaves the process in the query role
            engine = registry.by_dir.get(key) or load_engine(key, progress=progress)
            registry.by_dir[key] = engine
    except RecsysError as exc:
        slot.empty()
        st.error(f"The recommender could not start: {exc}")
        st.stop()
    slot.empty()
    return engine


@st.cache_resource(show_spinner=False, max_entries=16)
def _projection(vectors_key: str, _vectors, _groups, params: ProjectionParams, directory: str) -> Projection:
    from recsys.projection import project

    return project(_vectors, params, cache_dir=directory, groups=_groups)


def get_projection(vectors, params: ProjectionParams, groups=None) -> Projection:
    """A map of ``vectors`` (``groups``: strata of its fitted sample): from memory, else disk, else computed."""
    from recsys.projection import input_hash

    key = input_hash(vectors, params, groups)
    with st.spinner("Computing the map (UMAP on a sample, the rest placed beside it); cached afterwards..."):
        return _projection(key, vectors, groups, params, str(cache_dir() / "projections"))


@st.cache_data(show_spinner=False, max_entries=8)
def decode_image(name: str, data: bytes):
    """Cached :func:`recsys.ui.uploads.decode_image_upload` (errors are not cached)."""
    from recsys.ui.uploads import decode_image_upload

    return decode_image_upload(name, data)


@st.cache_data(show_spinner=False, max_entries=8)
def decode_audio(name: str, data: bytes):
    """Cached :func:`recsys.ui.uploads.decode_audio_upload`: long clips take a while to decode."""
    from recsys.ui.uploads import decode_audio_upload

    return decode_audio_upload(name, data)
