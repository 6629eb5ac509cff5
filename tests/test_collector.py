"""The garbage collector's pause (recsys.collector): nested, across threads, through errors."""

from __future__ import annotations

import gc
import threading

import pytest

from recsys.collector import collector_paused


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_pauses_nest_and_the_outermost_restores_the_collector():
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_ends_the_pause_and_the_decorator_pauses_each_call():
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("inside")
    assert gc.isenabled()

    @collector_paused()
    def paused() -> bool:
        return gc.isenabled()

    assert paused() is False and paused() is False and gc.isenabled()


def test_overlapping_pauses_in_threads_end_when_the_last_one_does():
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with collector_paused():
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other thread's pause outlives this one
    leave.set()
    thread.join()
    assert gc.isenabled()


def test_what_a_pause_built_joins_the_oldest_generation_and_its_garbage_is_still_collected():
    import weakref

    class Node:
        pass

    with collector_paused():
        kept = [Node() for _ in range(10)]
        garbage = Node()
        garbage.cycle = garbage  # a cycle only the collector frees
        gone = weakref.ref(garbage)
        del garbage
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(node) in oldest for node in kept) and id(kept) in oldest
    assert not any(id(o) in oldest for o in gc.get_objects(generation=0) if isinstance(o, Node))
    gc.collect()
    assert gone() is None
