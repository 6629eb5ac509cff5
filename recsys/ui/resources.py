"""Process-wide cached resources for the pages: the engine (built once, with a progress bar) and maps."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from recsys.errors import RecsysError
from recsys.progress import ProgressLog

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping

    from recsys.maps import MapMemo, MapVectors, Projection, ProjectionParams
    from recsys.recommend.engine import RecommendationEngine

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_ENV = "RECSYS_CATALOGUE"
DEFAULT_CATALOGUE = REPO_ROOT / "data" / "tuxpaint"


def catalogue_dir() -> Path:
    """The catalogue the demo serves: ``RECSYS_CATALOGUE`` or the bundled Tux Paint catalogue."""
    return Path(os.environ.get(CATALOGUE_ENV) or DEFAULT_CATALOGUE)


def cache_dir() -> Path:
    """Where derived files (maps) go: beside the embedding cache (``RECSYS_CACHE_DIR`` or ~/.cache/recsys)."""
    from recsys.encoding.cache import default_cache_dir

    return Path(default_cache_dir())


#: Seconds between two updates of the build's progress bar.
POLL_S = 0.5


@dataclass
class _Build:
    """One engine build, in a thread of its own: it survives a closed tab or a page switch (which stop
    the script that started it), and every session of the process follows the same progress."""

    catalogue: str
    tracker: ProgressLog = field(default_factory=lambda: ProgressLog(logger=_QUIET))
    stage: str | None = None
    engine: RecommendationEngine | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None
    #: set once the engine (or the error) is there: the thread goes on to load the encoders' networks
    done: threading.Event = field(default_factory=threading.Event)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.tracker(stage, done, total)
        self.stage = stage

    def run(self) -> None:
        from recsys.pipeline import load_engine

        try:  # load_engine encodes in the batch thread role and leaves the process in the query role
            self.engine = load_engine(self.catalogue, progress=self.progress)
        except BaseException as exc:  # handed to the page that waits for it
            self.error = exc

    def bar(self) -> tuple[float, str] | None:
        """One bar for every stage together: the fraction done and a line with rates and the ETA."""
        stages = dict(self.tracker.stages)
        total = sum(s.total for s in stages.values())
        if not total or self.stage not in stages:
            return None
        done = sum(min(s.done, s.total) for s in stages.values())
        return done / total, f"Building the embedding cache (first start only): {self.tracker.line(self.stage)}"


#: ProgressLog's lines feed the bar here, not the log (the pipeline logs its own).
_QUIET = logging.getLogger(__name__ + ".bar")
_QUIET.setLevel(logging.WARNING)


@dataclass
class _Engines:
    """Engines (and builds under way) by catalogue folder, shared by every session of the process."""

    by_dir: dict[str, RecommendationEngine] = field(default_factory=dict)
    builds: dict[str, _Build] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, key: str) -> _Build:
        """The build of ``key`` under way, or a new one started."""
        with self.lock:
            build = self.builds.get(key)
            if build is None:
                build = self.builds[key] = _Build(key)
                build.thread = threading.Thread(target=self._run, args=(key, build), name="recsys-engine", daemon=True)
                build.thread.start()
            return build

    def _run(self, key: str, build: _Build) -> None:
        try:
            build.run()
            with self.lock:
                if build.engine is not None:
                    self.by_dir[key] = build.engine
                del self.builds[key]  # a failed build is tried again by the next run of a page
        finally:
            build.done.set()
        # Networks load on first use: here, text's first, while the page shows, rather than on the
        # first query. A failure is left to that query, which raises it again where its asker sees it.
        encoders = getattr(build.engine, "query_encoders", None) or {}
        for encoder in sorted(encoders.values(), key=lambda e: getattr(e, "modality", "") != "text"):
            load = getattr(encoder, "load", None)
            if load is not None:
                with contextlib.suppress(Exception):
                    load()


@st.cache_resource(show_spinner=False)
def _engines() -> _Engines:
    # The registry itself is the cached resource: building an engine inside a cached function would
    # make Streamlit replay the progress bar, which lives outside it.
    return _Engines()


def get_engine() -> RecommendationEngine:
    """The engine for :func:`catalogue_dir`; the first call builds it in a background thread while the
    page shows one progress bar over every stage, with an estimate of the time left.

    The shipped data of the demo catalogue (:mod:`recsys.prebuilt`) makes that build load the
    models and read vectors only. A catalogue or model problem is shown as an error and stops the
    page (no traceback).
    """
    registry = _engines()
    key = str(catalogue_dir())
    engine = registry.by_dir.get(key)
    if engine is not None:
        return engine
    build = registry.build(key)
    slot = st.empty()
    with st.spinner("Loading the models and the catalogue..."):
        while True:
            finished = build.done.is_set()
            state = build.bar()
            if state is not None:
                slot.progress(*state)
            if finished:
                break
            build.done.wait(POLL_S)
    slot.empty()
    if isinstance(build.error, RecsysError):
        st.error(f"The recommender could not start: {build.error}")
        st.stop()
    if build.error is not None:
        raise build.error
    assert build.engine is not None
    return build.engine


@st.cache_resource(show_spinner=False, max_entries=16)
def _projection(map_key: str, _vectors, _groups, params: ProjectionParams, directory: str, _placed) -> Projection:
    from recsys.maps import project

    return project(_vectors, params, cache_dir=directory, groups=_groups, placed=_placed)


@st.cache_resource(show_spinner=False)
def _maps() -> MapMemo:
    from recsys.maps import MapMemo

    return MapMemo()


def get_map(
    engine: RecommendationEngine, source: str, weights: Mapping[str, float] | None, params: ProjectionParams
) -> tuple[np.ndarray, list[str], Projection, np.ndarray | None]:
    """The catalogue indices on the ``source`` map, their top categories, the map, and the points it
    draws besides the results past :data:`recsys.ui.explore.MAX_DRAWN` (None below): worked out once
    per engine and :func:`recsys.maps.map_key` (a rerun then gathers, hashes and samples nothing)."""
    from recsys.maps import MapVectors, map_key
    from recsys.ui import explore

    key = (*map_key(source, weights, params), explore.MAX_DRAWN)
    found = _maps().get(engine, key)
    if found is not None:
        return found
    vectors = MapVectors(engine, source, weights)
    groups = explore.item_groups(engine.catalogue, vectors.indices)
    sample = explore.fixed_sample(groups, explore.MAX_DRAWN) if len(groups) > explore.MAX_DRAWN else None
    placed = np.flatnonzero(sample) if sample is not None else None
    result = (vectors.indices, groups, get_projection(vectors, params, groups, placed), sample)
    _maps().put(engine, key, result)
    return result


def get_projection(
    vectors: MapVectors,
    params: ProjectionParams,
    groups: list[str] | None = None,
    placed: np.ndarray | None = None,
) -> Projection:
    """A map of ``vectors`` (``groups``: strata of its fitted sample) with at least the items at
    ``placed`` (default: all) placed: from memory, else disk, else computed."""
    from recsys.maps import map_path
    from recsys.prebuilt import seed_map

    key = vectors.key(params, groups)
    directory = cache_dir() / "projections"
    target = map_path(directory, key)
    if not target.exists():  # the demo ships its default maps
        seed_map(catalogue_dir(), vectors, params, groups, target)
    with st.spinner("Computing the map (UMAP on a sample, the drawn items placed beside it); cached afterwards..."):
        return _projection(key, vectors, groups, params, str(directory), placed)


def map_coords(
    engine: RecommendationEngine, source: str, weights: Mapping[str, float] | None, projection: Projection
) -> Callable[[np.ndarray], np.ndarray]:
    """Coordinates of positions on ``projection``, a map of ``engine``'s ``source``: an item it has
    not placed yet (a result outside a large map's drawn sample) is placed when first asked for,
    its vector gathered then."""
    from recsys.maps import MapVectors

    def rows_of(positions: np.ndarray) -> np.ndarray:
        return MapVectors(engine, source, weights).rows(positions)

    return functools.partial(projection.coords_at, rows_of=rows_of)


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
