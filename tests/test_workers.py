"""A function over many files in worker processes (recsys.workers)."""

from __future__ import annotations

import os

import pytest

from recsys.workers import map_in_processes


def _square_or_fail(x: int) -> int:
    if x < 0:
        raise FileNotFoundError(f"item {x}")
    return x * x


def _pid(_: int) -> int:
    return os.getpid()


def test_results_come_back_in_order_from_the_workers():
    items = list(range(50))
    assert map_in_processes(_square_or_fail, items, processes=2, chunk=4) == [x * x for x in items]
    assert set(map_in_processes(_pid, items, processes=2, chunk=4)) - {os.getpid()}  # other processes ran them
    assert set(map_in_processes(_pid, items, processes=1, chunk=4)) == {os.getpid()}


def test_an_oserror_in_a_worker_is_raised_in_the_caller():
    with pytest.raises(FileNotFoundError, match="item -1"):
        map_in_processes(_square_or_fail, [*range(10), -1, *range(10)], processes=2, chunk=4)
