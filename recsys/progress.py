"""Progress of long stages (indexing a catalogue) with rate and ETA, on a terminal or in a log.

Everything reports through one callback signature, ``progress(stage, done, total)`` (the app's
progress bar, the CLI). :class:`ProgressLog` turns those calls into a ``logging`` INFO line every
few seconds, so a run whose output goes to a file still says how far it is:

    image embeddings: 12,800/20,000 items (64%), 45.1 items/s, ETA 2m40s; all stages 13,750/21,184 (65%), ETA 2m45s

A stage announced with ``progress(stage, 0, total)`` before any work starts counts towards the
overall estimate at once (the pipeline announces every stage first).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

StageProgress = Callable[[str, int, int], None]

log = logging.getLogger(__name__)

#: Seconds between two log lines of one stage (its first and last update are always logged).
LOG_INTERVAL_S = 10.0


def format_duration(seconds: float) -> str:
    """``42s``, ``2m40s``, ``3h05m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class _Stage:
    total: int
    done: int = 0
    started: float | None = None  # the last report of 0 done (the stage began), else the first report
    start_done: int = 0
    updated: float | None = None
    last_logged: float | None = None

    def worked(self) -> tuple[int, float]:
        """(items done since the clock started, seconds spent on them)."""
        if self.started is None or self.updated is None:
            return 0, 0.0
        return self.done - self.start_done, self.updated - self.started

    def rate(self) -> float | None:
        items, seconds = self.worked()
        return items / seconds if items > 0 and seconds > 0 else None


@dataclass
class ProgressLog:
    """A ``progress(stage, done, total)`` callback that logs lines with rate and ETA every ``interval`` s.

    ``unit`` names what is counted (``items``; the lab counts ``epochs``).
    """

    interval: float = LOG_INTERVAL_S
    logger: logging.Logger = log
    clock: Callable[[], float] = time.monotonic
    stages: dict[str, _Stage] = field(default_factory=dict)
    unit: str = "items"

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        state = self.stages.get(stage)
        if state is None or total != state.total:
            state = self.stages[stage] = _Stage(total)
        if done == 0 or state.started is None:
            state.started, state.start_done = now, done
        state.done, state.updated = done, now
        due = state.last_logged is None or (done > 0 and now - state.last_logged >= self.interval)
        if total > 0 and (due or (done >= total and state.last_logged is not None)):
            self.logger.info(self.line(stage))
            state.last_logged = now

    def line(self, stage: str) -> str:
        """The current line of ``stage``: counts, rate, its ETA and, with several stages, the overall one."""
        state = self.stages[stage]
        pct = 100 * state.done / state.total if state.total else 100.0
        text = f"{stage}: {state.done:,}/{state.total:,} {self.unit} ({pct:.0f}%)"
        rate = state.rate()
        if rate:
            text += f", {rate:,.1f} {self.unit}/s"
            if state.done < state.total:
                text += f", ETA {format_duration((state.total - state.done) / rate)}"
        if len(self.stages) > 1:
            text += "; " + self._overall()
        return text

    def _overall(self) -> str:
        """All stages together: each stage's remaining items at its own rate; stages not begun at the
        rate of all the work so far (the best guess there is)."""
        done = sum(s.done for s in self.stages.values())
        total = sum(s.total for s in self.stages.values())
        text = f"all stages {done:,}/{total:,} ({100 * done / total if total else 100:.0f}%)"
        items = sum(s.worked()[0] for s in self.stages.values())
        seconds = sum(s.worked()[1] for s in self.stages.values())
        if done < total and items > 0 and seconds > 0:
            fallback = items / seconds
            eta = sum((s.total - s.done) / (s.rate() or fallback) for s in self.stages.values())
            text += f", ETA {format_duration(eta)}"
        return text


def no_progress(stage: str, done: int, total: int) -> None:
    """A ``progress`` callback that reports nothing (a step whose caller reports for it)."""


def fan_out(*callbacks: StageProgress | None) -> StageProgress:
    """One callback calling every given one (``None`` entries are skipped)."""
    live = [c for c in callbacks if c is not None]

    def report(stage: str, done: int, total: int) -> None:
        for callback in live:
            callback(stage, done, total)

    return report


def terminal_progress() -> StageProgress:
    """tqdm bars (with rate and ETA) on stderr when it is a terminal, else nothing (see :func:`progress_lines`)."""
    if not _is_tty(sys.stderr):
        return no_progress
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if total == 0:
            return
        bar = bars.get(stage)
        if bar is None or bar.total != total:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="item", file=sys.stderr, leave=False)
        if done > bar.n:
            bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (it may be swapped after set-up)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


@contextlib.contextmanager
def progress_lines() -> Iterator[None]:
    """While inside, :class:`ProgressLog`'s lines go to stderr if it is not a terminal (a log file)."""
    if _is_tty(sys.stderr):
        yield
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
