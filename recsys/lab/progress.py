"""Progress of an evaluation run, model by model and epoch by epoch.

The runner reports :class:`ModelProgress` events (model i of n, its phase, the epoch and the
latest validation recall); the dashboard draws them, and :class:`EpochLog` turns them into the
project's progress lines (:class:`recsys.progress.ProgressLog`: rate and ETA, plain log lines when
stderr is not a terminal) plus tqdm bars on a terminal, for the CLI and the benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from recsys.progress import ProgressLog, StageProgress, terminal_progress

#: Phases of one model in a run, in order (``fit`` and ``epoch`` again with ``refit`` set when refitting).
PHASES = ("fit", "epoch", "done")


@dataclass(frozen=True)
class ModelProgress:
    """Where a run stands: ``index`` of ``total`` models, and that model's training state.

    ``epochs`` is the maximum (early stopping usually ends sooner, so an ETA is an upper bound);
    ``valid_recall`` is the latest validation Recall@20 seen; ``recall`` the test figure at ``done``.
    """

    model: str
    index: int
    total: int
    phase: str
    epoch: int = 0
    epochs: int = 0
    valid_recall: float | None = None
    recall: float | None = None
    seconds: float = 0.0
    refit: bool = False  # the second fit, on train + validation

    @property
    def stage(self) -> str:
        return f"[{self.index}/{self.total}] {self.model}" + (" (refit on train+validation)" if self.refit else "")

    @property
    def fraction(self) -> float:
        """How much of the run is done, 0..1, counting each model as one share split over its epochs."""
        part = min(1.0, self.epoch / self.epochs) if self.epochs else 0.0
        if self.phase == "done":
            part = 1.0
        return min(1.0, max(0.0, (self.index - 1 + part) / max(1, self.total)))

    def describe(self) -> str:
        """One line for people: ``[2/5] bpr: epoch 12/150, validation recall 0.3012``."""
        text = f"model {self.index} of {self.total}: {self.model}" + (" (refit)" if self.refit else "")
        if self.phase == "done":
            return text + f", done in {self.seconds:.1f}s"
        if self.epochs:
            text += f", epoch {self.epoch}/{self.epochs}"
        if self.valid_recall is not None:
            text += f", validation recall {self.valid_recall:.4f}"
        return text + ("" if self.epochs else ", fitting")


ProgressCallback = Callable[[ModelProgress], None]


@dataclass(frozen=True)
class SeedProgress:
    """A model's event inside a several-seed run (:func:`recsys.lab.stats.evaluate_seeds`): seed
    ``index`` of ``total``, so the dashboard's bar covers every seed rather than restarting."""

    protocol: str
    seed: int
    index: int
    total: int
    event: ModelProgress

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, (self.index - 1 + self.event.fraction) / max(1, self.total)))

    def describe(self) -> str:
        """``given, seed 1 (2 of 3): model 2 of 5: bpr, epoch 12/150, validation recall 0.3012``."""
        return f"{self.protocol}, seed {self.seed} ({self.index} of {self.total}): {self.event.describe()}"


class EpochLog:
    """:class:`ModelProgress` -> epoch lines with rate and ETA (one :class:`ProgressLog` per model, so
    one model's speed never estimates another's) and tqdm bars when stderr is a terminal."""

    def __init__(self, bars: StageProgress | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._bars = terminal_progress() if bars is None else bars
        self._clock = clock
        self._log: ProgressLog | None = None
        self._stage = ""
        self._last = (0, 0)

    def __call__(self, event: ModelProgress) -> None:
        if event.phase == "epoch":
            if event.stage != self._stage or self._log is None:
                self._close()
                self._log, self._stage = ProgressLog(unit="epochs", clock=self._clock), event.stage
            self._log(event.stage, event.epoch, event.epochs)
            self._bars(event.stage, event.epoch, event.epochs)
            self._last = (event.epoch, event.epochs)
        elif event.phase == "done":
            self._close()

    def _close(self) -> None:
        """Fill the current bar: early stopping ends a fit before its maximum epoch."""
        if self._stage and self._last[1]:
            self._bars(self._stage, self._last[1], self._last[1])
        self._stage, self._last = "", (0, 0)
