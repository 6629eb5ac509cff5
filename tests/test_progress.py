"""Progress with rate and ETA: log lines when nobody watches a terminal, overall estimate across stages."""

from __future__ import annotations

import logging
import sys

import pytest
from fakes import build_catalogue

from recsys import pipeline
from recsys.catalogue import load_catalogue
from recsys.progress import ProgressLog, format_duration, progress_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42.4, "42s"), (160, "2m40s"), (3 * 3600 + 300, "3h05m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_lines_carry_counts_rate_and_eta_every_interval(caplog):
    clock = Clock()
    report = ProgressLog(interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        report("image embeddings", 0, 20_000)
        for done in range(1_000, 12_801, 1_000):
            clock.now += 20 * 1_000 / 1_000  # 50 items/s
            report("image embeddings", done, 20_000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "image embeddings: 0/20,000 items (0%)"
    assert lines[-1] == "image embeddings: 12,000/20,000 items (60%), 50.0 items/s, ETA 2m40s"
    assert len(lines) == 13  # one per update here: every update is 20 s apart, past the 10 s interval


def test_quiet_between_intervals_but_the_end_is_always_logged(caplog):
    clock = Clock()
    report = ProgressLog(interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        report("text embeddings", 0, 100)
        for done in range(10, 101, 10):
            clock.now += 0.5
            report("text embeddings", done, 100)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[-1] == "text embeddings: 100/100 items (100%), 20.0 items/s"


def test_overall_estimate_spans_the_announced_stages(caplog):
    clock = Clock()
    report = ProgressLog(interval=0.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        report("text embeddings", 0, 100)
        report("image embeddings", 0, 300)
        clock.now += 5
        report("text embeddings", 0, 100)  # the stage begins now: the wait does not count against it
        clock.now += 1
        report("text embeddings", 100, 100)
        last = caplog.records[-1].getMessage()
        assert last.startswith("text embeddings: 100/100 items (100%), 100.0 items/s; all stages 100/400 (25%)")
        assert last.endswith("ETA 3s")  # the image stage has no rate of its own yet: the text one stands in
        report("image embeddings", 0, 300)
        clock.now += 2
        report("image embeddings", 20, 300)  # 10 items/s: 280 left take 28 s, whatever text's speed was
    assert caplog.records[-1].getMessage().endswith("all stages 120/400 (30%), ETA 28s")
    assert sum("image embeddings: 0/300" in r.getMessage() for r in caplog.records) == 1


def test_build_engine_logs_progress_lines_with_rate(tmp_path, patched_encoders, caplog):
    root = build_catalogue(tmp_path / "cat")
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "c"), image_aligner=None, audio_aligner=None)
    seen = []
    with caplog.at_level(logging.INFO, logger="recsys.progress"):
        pipeline.build_engine(load_catalogue(root), config, lambda *a: seen.append(a))
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("image embeddings: 4/4 items (100%)") and "items/s" in line for line in lines)
    assert ("image embeddings", 4, 4) in seen  # the caller's (stage, done, total) callback still gets every call


def test_progress_lines_go_to_stderr_only_inside_the_block(capsys):
    assert not sys.stderr.isatty()
    report = ProgressLog(interval=0.0)
    with progress_lines():
        report("audio embeddings", 0, 8)
        report("audio embeddings", 8, 8)
    report("audio embeddings", 8, 8)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "audio embeddings: 0/8 items (0%)"
    assert err[1].startswith("audio embeddings: 8/8 items (100%)")
    assert len(err) == 2
