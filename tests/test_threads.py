"""The thread policy: counts per role, environment overrides, restoring, and who applies which role."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from recsys import threads
from recsys.errors import RecsysError
from recsys.threads import ROLES, thread_count, use_threads


@pytest.fixture(autouse=True)
def _restore_counts(monkeypatch):
    """Every test starts from 1 torch thread with no override set, and leaves the process as it found it."""
    for name in ROLES.values():
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    pools = threadpool_limits(limits=None)  # records the current limits without changing them
    torch.set_num_threads(1)
    yield
    pools.restore_original_limits()
    torch.set_num_threads(before)


def pool_counts() -> list[int]:
    return [info["num_threads"] for info in threadpool_info()]


def test_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert threads.available_cores() == 3


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (1, {"query": 1, "batch": 1, "train": 1, "search": 1}),
        (2, {"query": 1, "batch": 2, "train": 1, "search": 2}),
        (16, {"query": 1, "batch": 16, "train": 4, "search": 4}),
        (64, {"query": 1, "batch": 64, "train": 4, "search": 4}),
    ],
)
def test_defaults_per_role(monkeypatch, cores, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert {role: thread_count(role) for role in ROLES} == expected


def test_batch_leaves_cores_to_dataloader_workers(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert thread_count("batch", workers=3) == 5
    assert thread_count("batch", workers=20) == 1


@pytest.mark.parametrize("role", list(ROLES))
def test_environment_overrides_each_role(monkeypatch, role):
    monkeypatch.setenv(ROLES[role], " 3 ")
    assert thread_count(role) == 3
    monkeypatch.setenv(ROLES[role], "")
    assert thread_count(role) >= 1  # empty means unset


@pytest.mark.parametrize(
    ("value", "message"), [("two", "whole number"), ("1.5", "whole number"), ("0", "at least 1"), ("-2", "at least 1")]
)
def test_bad_overrides_are_user_errors(monkeypatch, value, message):
    monkeypatch.setenv("RECSYS_TRAIN_THREADS", value)
    with pytest.raises(RecsysError, match=f"RECSYS_TRAIN_THREADS.*{message}"):
        thread_count("train")
    with pytest.raises(RecsysError, match="RECSYS_TRAIN_THREADS"):
        use_threads("train")


def test_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown thread role"):
        thread_count("gpu")


def test_context_manager_sets_and_restores_torch_and_blas_pools():
    before_pools = pool_counts()
    with use_threads("batch", threads=2) as scope:
        assert scope.count == 2
        assert torch.get_num_threads() == 2
        assert set(pool_counts()) == {2}
        with use_threads("query"):
            assert torch.get_num_threads() == 1 and set(pool_counts()) == {1}
        assert torch.get_num_threads() == 2 and set(pool_counts()) == {2}
    assert torch.get_num_threads() == 1
    assert pool_counts() == before_pools


def test_restores_after_an_exception():
    with pytest.raises(KeyError), use_threads("batch", threads=2):
        raise KeyError("boom")
    assert torch.get_num_threads() == 1


def test_plain_call_switches_for_good(monkeypatch):
    monkeypatch.setenv("RECSYS_QUERY_THREADS", "2")
    use_threads("query")
    assert torch.get_num_threads() == 2 and set(pool_counts()) == {2}


def test_interop_threads_are_set_at_most_once_and_never_crash(monkeypatch):
    calls = []

    def refuse(n):
        calls.append(n)
        raise RuntimeError("cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(threads, "_interop_done", False)
    monkeypatch.setattr(torch, "set_num_interop_threads", refuse)
    torch.ones(1000).sum()  # parallel work has started in this process
    use_threads("query")
    use_threads("batch")
    assert calls == [max(thread_count(role) for role in ROLES)]


def test_load_engine_encodes_in_batch_role_and_leaves_the_query_role(tmp_path, monkeypatch, patched_encoders):
    from fakes import build_catalogue

    from recsys.pipeline import load_engine

    monkeypatch.setenv("RECSYS_BATCH_THREADS", "2")
    monkeypatch.setenv("RECSYS_QUERY_THREADS", "1")
    seen = []
    for encoder in patched_encoders.values():
        original = encoder.encode

        def encode(inputs, batch_size=32, _original=original):
            seen.append(torch.get_num_threads())
            return _original(inputs, batch_size)

        monkeypatch.setattr(encoder, "encode", encode)
    torch.set_num_threads(2)  # e.g. a process that ran something else before
    engine = load_engine(
        build_catalogue(tmp_path / "cat"), cache_dir=str(tmp_path / "cache"), image_aligner="none", audio_aligner="none"
    )
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == 1 and set(pool_counts()) == {1}
    assert engine.recommend(engine_query("a red apple"), k=1)[0].item.id == "apple"


def engine_query(text: str):
    from recsys.recommend.query import Query

    return Query(text=text)


def test_a_failed_build_restores_the_counts(tmp_path, monkeypatch, patched_encoders):
    from fakes import build_catalogue

    from recsys.pipeline import load_engine

    def broken(inputs, batch_size=32):
        raise RecsysError("the model cannot run")

    monkeypatch.setattr(patched_encoders["text"], "encode", broken)
    monkeypatch.setenv("RECSYS_BATCH_THREADS", "1")
    torch.set_num_threads(2)
    with pytest.raises(RecsysError, match="cannot run"):
        load_engine(
            build_catalogue(tmp_path / "cat"),
            cache_dir=str(tmp_path / "cache"),
            image_aligner="none",
            audio_aligner="none",
        )
    assert torch.get_num_threads() == 2


def torch_threads_inside(monkeypatch, module, name: str) -> list[int]:
    """Wrap ``module.name`` to record torch's thread count at each call; returns the record."""
    inside: list[int] = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        inside.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return inside


def test_lab_fits_run_in_the_train_role(monkeypatch):
    from clusters import clustered

    from recsys.lab import training
    from recsys.lab.models.bpr import BPRMF

    monkeypatch.setenv("RECSYS_TRAIN_THREADS", "2")
    inside = torch_threads_inside(monkeypatch, training, "_train_loop")
    data, _ = clustered()
    BPRMF(epochs=1).fit(data)
    BPRMF(epochs=1, num_threads=1).fit(data)  # a model's own setting wins
    assert inside == [2, 1]
    assert torch.get_num_threads() == 1


def test_implicit_als_takes_the_train_count_and_bpr_stays_reproducible(monkeypatch):
    pytest.importorskip("implicit")
    from recsys.lab.models.reference import ImplicitALS, ImplicitBPR

    monkeypatch.setenv("RECSYS_TRAIN_THREADS", "3")
    assert ImplicitALS()._make(0).num_threads == 3
    assert ImplicitBPR()._make(0).num_threads == 1


def test_alignment_heads_train_on_one_thread(monkeypatch):
    from recsys.alignment import projection

    inside = torch_threads_inside(monkeypatch, projection, "_fit")
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    projection.train_projection(
        rng.normal(size=(8, 4)).astype(np.float32),
        rng.normal(size=(8, 3)).astype(np.float32),
        source_modality="image",
        source_encoder_id="image/test",
        text_encoder_id="text/test",
        target_space="text/test",
        config=projection.TrainConfig(epochs=1),
    )
    assert inside == [1] and torch.get_num_threads() == 2


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_a_malformed_worker_count_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv("RECSYS_BATCH_WORKERS", raw)
    with pytest.raises(RecsysError, match="RECSYS_BATCH_WORKERS"):
        threads.worker_processes()


def test_worker_processes_follow_the_override_and_the_device(monkeypatch):
    monkeypatch.setenv("RECSYS_BATCH_WORKERS", "0")
    assert threads.worker_processes() == 0
    monkeypatch.delenv("RECSYS_BATCH_WORKERS")
    monkeypatch.setattr(threads, "available_cores", lambda: 16)
    assert threads.worker_processes("cpu") == 4
    assert threads.worker_processes("cuda:0") == 15


def test_side_by_side_keeps_order_runs_in_parallel_and_raises(monkeypatch):
    import threading

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    both = threading.Barrier(2, timeout=10)  # passes only if two calls run at once

    def call(x: int) -> int:
        both.wait()
        return x * 10

    assert threads.run_side_by_side(call, [1, 2]) == [10, 20]
    monkeypatch.setenv("RECSYS_SEARCH_THREADS", "1")
    assert threads.run_side_by_side(lambda x: -x, [3, 1, 2]) == [-3, -1, -2]  # in order, in this thread
    with pytest.raises(ZeroDivisionError):
        threads.run_side_by_side(lambda x: 1 // x, [1, 0])


class _WorkerCounts:
    """A one-item dataset reporting the thread counts inside the DataLoader worker that reads it."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> tuple[int, int]:
        return threads.active_threads(), torch.get_num_threads()


def test_a_batch_worker_runs_one_thread_whatever_its_parent_had():
    """onnxruntime sessions in a worker (YAMNet) size themselves by active_threads: 1, not the parent's."""
    from torch.utils.data import DataLoader

    from recsys.threads import one_thread_per_worker

    with use_threads("batch", threads=2):
        loader = DataLoader(_WorkerCounts(), batch_size=None, num_workers=1, worker_init_fn=one_thread_per_worker)
        (active, intra_op) = next(iter(loader))
        assert threads.active_threads() == 2  # the parent keeps its own
    assert (int(active), int(intra_op)) == (1, 1)
