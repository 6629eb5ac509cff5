"""Run progress: model-by-model events and the epoch lines (rate, ETA) the CLI and benchmark print."""

from __future__ import annotations

import logging

from recsys.lab.progress import EpochLog, ModelProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_epoch_lines_have_rate_and_eta_and_bars_close_on_early_stop(caplog):
    clock, bars = Clock(), []
    log = EpochLog(bars=lambda stage, done, total: bars.append((stage, done, total)), clock=clock)
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        log(ModelProgress("bpr", 2, 3, "fit"))
        for epoch in range(0, 41):
            log(ModelProgress("bpr", 2, 3, "epoch", epoch=epoch, epochs=150))
            clock.now += 0.5  # 2 epochs/s
        log(ModelProgress("bpr", 2, 3, "done", seconds=20.0))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "[2/3] bpr: 0/150 epochs (0%)"
    assert lines[1] == "[2/3] bpr: 20/150 epochs (13%), 2.0 epochs/s, ETA 1m05s"  # every 10 s
    assert bars[-1] == ("[2/3] bpr", 150, 150)  # stopped early at 40: the bar is filled and closed


def test_refit_is_its_own_stage():
    seen = []
    log = EpochLog(bars=lambda stage, done, total: seen.append(stage))
    log(ModelProgress("bpr", 1, 1, "epoch", epoch=1, epochs=2))
    log(ModelProgress("bpr", 1, 1, "epoch", epoch=1, epochs=2, refit=True))
    assert seen == ["[1/1] bpr", "[1/1] bpr", "[1/1] bpr (refit on train+validation)"]


def test_fraction_and_description():
    assert ModelProgress("a", 1, 4, "fit").fraction == 0.0
    assert ModelProgress("a", 2, 4, "epoch", epoch=5, epochs=10).fraction == (1 + 0.5) / 4
    assert ModelProgress("a", 4, 4, "done").fraction == 1.0
    assert ModelProgress("a", 1, 2, "fit").describe() == "model 1 of 2: a, fitting"
    assert ModelProgress("a", 1, 2, "done", seconds=1.25).describe() == "model 1 of 2: a, done in 1.2s"


def test_seed_progress_spans_every_seed():
    from recsys.lab.progress import SeedProgress

    event = ModelProgress("bpr", 2, 4, "epoch", epoch=50, epochs=100, valid_recall=0.31)
    first, last = SeedProgress("given", 7, 1, 2, event), SeedProgress("given", 8, 2, 2, event)
    assert first.fraction == (1 + 0.5) / 4 / 2 and last.fraction == 0.5 + first.fraction
    assert last.describe() == "given, seed 8 (2 of 2): model 2 of 4: bpr, epoch 50/100, validation recall 0.3100"
