"""``kill -9`` during ``python -m recsys index`` (issue 12): finished work survives, the rerun encodes
only what was lost (at most the chunk in flight) and ends with exactly the cache of an uninterrupted run.

The CLI runs in a subprocess through a small driver that puts the fake encoders of fakes.py in place
of the models, with a slow image encoder so that the kill lands mid-pass, and four-item shards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import build_image_catalogue

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
ITEMS, CHUNK, BATCH = 24, 4, 2

DRIVER = f"""
import functools, os, sys, time
sys.path.insert(0, {str(TESTS)!r})
from fakes import FAKE_NAMES, FakeImageEncoder, fake_encoders
from recsys import pipeline
from recsys.encoding import BatchOptions


class SlowImageEncoder(FakeImageEncoder):
    def encode(self, inputs, batch_size=32):
        time.sleep(float(os.environ["SLOW_S"]))
        with open(os.environ["FORWARD_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{{len(inputs)}}\\n")
        return super().encode(inputs, batch_size)


encoders = {{**fake_encoders(), "image": SlowImageEncoder()}}
pipeline._create_encoder = lambda name, device: encoders[FAKE_NAMES[name]]
pipeline.BatchOptions = functools.partial(BatchOptions, chunk_size={CHUNK}, workers=0)
from recsys.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _index(driver: Path, catalogue: Path, cache: Path, log: Path, slow_s: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "RECSYS_CACHE_DIR": str(cache),
        "RECSYS_IMAGE_ALIGNER": "none",
        "RECSYS_BATCH_SIZE": str(BATCH),
        "SLOW_S": str(slow_s),
        "FORWARD_LOG": str(log),
    }
    command = [sys.executable, str(driver), "index", "--catalogue", str(catalogue)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0 and "Traceback" not in err, err
    return out


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.glob("image_fake-3-*/shard-*.npz"))


def _vectors(cache: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for shard in _shards(cache):
        with np.load(shard) as z:
            found.update(zip(z["keys"].tolist(), z["vectors"], strict=True))
    return found


def _encoded(log: Path) -> int:
    return sum(int(n) for n in log.read_text().split()) if log.exists() else 0


@pytest.mark.slow
def test_kill_9_mid_index_loses_only_the_chunk_in_flight(tmp_path):
    catalogue = build_image_catalogue(tmp_path / "cat", ITEMS)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")

    clean = tmp_path / "clean"
    assert f"indexed {ITEMS} items" in _finish(_index(driver, catalogue, clean, tmp_path / "clean.log", 0.0))

    cache, log = tmp_path / "cache", tmp_path / "killed.log"
    process = _index(driver, catalogue, cache, log, 0.25)
    deadline = time.monotonic() + 120
    while len(_shards(cache)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-pass"
    survivors = {shard: shard.read_bytes() for shard in _shards(cache)}
    assert 2 <= len(survivors) < ITEMS // CHUNK

    rerun_log = tmp_path / "rerun.log"
    assert f"indexed {ITEMS} items" in _finish(_index(driver, catalogue, cache, rerun_log, 0.0))
    assert all(shard.read_bytes() == data for shard, data in survivors.items())  # finished shards untouched
    assert _encoded(rerun_log) == ITEMS - CHUNK * len(survivors)  # nothing finished is encoded again
    got, want = _vectors(cache), _vectors(clean)
    assert got.keys() == want.keys() and len(want) == ITEMS
    assert all(np.array_equal(got[key], want[key]) for key in want)
