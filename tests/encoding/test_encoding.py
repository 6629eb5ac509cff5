"""The catalogue encoding pass: one forward per item for every output, resumable, workers, bad files."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from fakes import FakeAudioEncoder, FakeTextEncoder, TinyImageEncoder, build_catalogue, build_image_catalogue

from recsys import pipeline
from recsys.catalogue import load_catalogue
from recsys.encoding import BatchOptions, FeaturePlan, ItemDataset, Job, catalogue_features, feature_id
from recsys.encoding.cache import FeatureStore, content_key
from recsys.errors import InputError

BOTH = ("embedding", "class_proba")
IN_PROCESS = BatchOptions(batch_size=2, chunk_size=2, workers=0)


@pytest.fixture
def ten(tmp_path):
    return load_catalogue(build_image_catalogue(tmp_path / "cat", 10))


def test_one_forward_per_image_fills_every_output(tmp_path):
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    encoder = TinyImageEncoder()
    feats = catalogue_features(catalogue, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert encoder.forwarded == 4  # five pictures, four distinct contents, each through the network once
    has_image = catalogue.has_modality("image")
    for name, width in (("embedding", 3), ("class_proba", 4)):
        assert feats[name].vectors.shape == (len(catalogue), width)
        assert feats[name].present.tolist() == has_image.tolist()
    np.testing.assert_allclose(feats["class_proba"].vectors[has_image].sum(axis=1), 1.0, atol=1e-5)
    again = catalogue_features(catalogue, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert encoder.forwarded == 4
    for name in BOTH:
        np.testing.assert_array_equal(again[name].vectors, feats[name].vectors)


class _BothInputsAligner:
    """Takes embeddings and class probabilities side by side, like the shipped image ensemble."""

    name = "both"
    source_modality = "image"
    input_kind = "embedding+class_proba"

    def describe(self) -> str:
        return "both inputs, test aligner"

    def transform(self, features: np.ndarray) -> np.ndarray:
        assert features.shape[1] == 3 + 4
        out = np.zeros((len(features), 64), np.float32)
        out[:, :7] = features
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_build_engine_runs_the_image_network_once_per_image(tmp_path, monkeypatch):
    image = TinyImageEncoder()
    encoders = {"minilm": FakeTextEncoder(), "efficientnet-lite0": image, "aisfx+yamnet": FakeAudioEncoder()}
    monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encoders[name])
    monkeypatch.setattr(pipeline, "_build_aligner", lambda spec, source, text, *_: _BothInputsAligner())
    monkeypatch.setenv("RECSYS_BATCH_WORKERS", "0")
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "c"), audio_aligner=None, image_aligner="both")
    engine = pipeline.build_engine(catalogue, config)
    assert image.forwarded == 4
    ix = engine.indexes["image"]
    assert ix.shared is not None and (ix.shared[ix.present] != 0).any() and not ix.shared[~ix.present].any()
    pipeline.build_engine(catalogue, config)
    assert image.forwarded == 4


def test_a_crashed_run_resumes_with_only_the_rest(ten, tmp_path):
    crashing = TinyImageEncoder(fail_after=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        catalogue_features(ten, "image", crashing, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert crashing.forwarded == 6  # three batches of two, each chunk written as it completed
    encoder = TinyImageEncoder()
    feats = catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert encoder.forwarded == 4 and feats["embedding"].present.all() and feats["class_proba"].present.all()
    fresh = catalogue_features(ten, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "x", options=IN_PROCESS)
    np.testing.assert_allclose(feats["embedding"].vectors, fresh["embedding"].vectors, atol=1e-6)


def test_a_corrupt_shard_is_recomputed(ten, tmp_path, caplog):
    catalogue_features(ten, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    store = FeatureStore(tmp_path / "c", feature_id(TinyImageEncoder(), "embedding"))
    shard = store.shards()[1]
    shard.write_bytes(shard.read_bytes()[:100])
    encoder = TinyImageEncoder()
    with caplog.at_level(logging.WARNING):
        feats = catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert "rebuilding feature cache image/tiny@1" in caplog.text
    assert encoder.forwarded == 2 and feats["embedding"].present.all()


def test_a_missing_output_alone_reruns_the_pass_but_writes_only_that_output(ten, tmp_path):
    catalogue_features(ten, "image", TinyImageEncoder(), ["embedding"], cache_dir=tmp_path / "c", options=IN_PROCESS)
    embedding_shards = FeatureStore(tmp_path / "c", "image/tiny@1").shards()
    encoder = TinyImageEncoder()
    feats = catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert encoder.forwarded == 10 and feats["class_proba"].present.all()
    assert FeatureStore(tmp_path / "c", "image/tiny@1").shards() == embedding_shards


def test_the_single_file_cache_of_earlier_versions_is_reused(ten, tmp_path):
    encoder = TinyImageEncoder()
    reference = catalogue_features(ten, "image", encoder, ["embedding"], cache_dir=tmp_path / "ref")["embedding"]
    legacy = FeatureStore(tmp_path / "c", encoder.encoder_id).legacy_file
    keys = [content_key(item, "image") for item in ten.items]
    legacy.parent.mkdir(parents=True)
    np.savez(legacy, keys=np.array(keys[:7]), vectors=reference.vectors[:7])
    counting = TinyImageEncoder()
    feats = catalogue_features(ten, "image", counting, ["embedding"], cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert counting.forwarded == 3
    np.testing.assert_allclose(feats["embedding"].vectors, reference.vectors, atol=1e-6)


def test_worker_processes_give_the_same_vectors_and_survive_a_bad_file(ten, tmp_path, caplog):
    (ten.root / "media" / "4.png").write_bytes(b"this is no picture")
    workers = BatchOptions(batch_size=2, chunk_size=4, workers=1)
    with caplog.at_level(logging.WARNING, logger="recsys.encoding"):
        pooled = catalogue_features(ten, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "w", options=workers)
    assert "1 item(s) have no image vector (fix or replace their files): i4: Image file" in caplog.text
    assert pooled["embedding"].present.tolist() == [i != 4 for i in range(10)]
    inline = catalogue_features(ten, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "i", options=IN_PROCESS)
    for name in BOTH:
        np.testing.assert_allclose(pooled[name].vectors, inline[name].vectors, atol=1e-6)


def test_progress_counts_distinct_items_including_failures(ten, tmp_path):
    (ten.root / "media" / "0.png").write_bytes(b"broken")
    seen = []
    catalogue_features(
        ten, "image", TinyImageEncoder(), ["embedding"], cache_dir=tmp_path / "c", options=IN_PROCESS,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen[0] == (0, 10) and seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_unknown_output_and_bad_options_are_refused(ten, tmp_path):
    with pytest.raises(InputError, match="no output"):
        catalogue_features(ten, "image", TinyImageEncoder(), ["logits"], cache_dir=tmp_path)
    with pytest.raises(InputError, match="precision"):
        BatchOptions(precision="fp8")


def test_half_precision_has_its_own_cache_on_cuda_only():
    encoder = TinyImageEncoder()
    assert feature_id(encoder, "embedding", "bf16") == "image/tiny@1"  # on the CPU everything is fp32
    encoder.device = "cuda:0"
    assert feature_id(encoder, "class_proba", "bf16") == "image/tiny@1#class_proba~bf16"


def test_datasets_pickle_with_every_offline_preprocessor(tmp_path):
    """Worker processes receive the dataset pickled (spawn/forkserver): no model may hide inside."""
    from recsys.encoders.base import Preprocessor
    from recsys.encoders.efficientnet import SquareResize
    from recsys.encoders.sfx import LogMelWindows

    for pre in (Preprocessor(), SquareResize(224), LogMelWindows()):
        dataset = ItemDataset([Job("k", "id", str(tmp_path / "x.png"))], "image", pre)
        clone = pickle.loads(pickle.dumps(dataset))
        assert type(clone.preprocessor) is type(pre) and clone.jobs == dataset.jobs
    bad = ItemDataset([Job("k", "id", str(tmp_path / "missing.png"))], "image", SquareResize(8))[0]
    assert bad.value is None and "does not exist" in bad.error


class _LoggedLaunches(TinyImageEncoder):
    """Records when each batch is launched and when its outputs are read back."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device
        self.events: list[tuple[str, int]] = []

    def launch_batch(self, batch):
        number = sum(1 for kind, _ in self.events if kind == "launch")
        self.events.append(("launch", number))
        out = self.forward_batch(batch)

        def finish():
            self.events.append(("finish", number))
            return out

        return finish


def test_on_a_gpu_the_next_batch_is_queued_before_the_last_one_is_read_back(ten, tmp_path):
    """The device gets batch i+1 before the host waits for batch i; on the CPU each batch is finished
    first (a killed run loses one batch). Both give the same vectors, in the same order."""
    feats = {}
    for device in ("cpu", "cuda:0"):
        encoder = _LoggedLaunches(device)
        feats[device] = catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / device, options=IN_PROCESS)
        launches = [n for kind, n in encoder.events if kind == "launch"]
        assert launches == list(range(5)) and sorted(n for k, n in encoder.events if k == "finish") == launches
        finish_first = [encoder.events.index(("finish", n)) < encoder.events.index(("launch", n + 1)) for n in range(4)]
        assert all(finish_first) if device == "cpu" else not any(finish_first), encoder.events
    for name in BOTH:
        np.testing.assert_array_equal(feats["cpu"][name].vectors, feats["cuda:0"][name].vectors)


def test_host_outputs_on_the_cpu_are_float32_arrays():
    torch = pytest.importorskip("torch")
    from recsys.encoders.base import host_outputs

    got = host_outputs({"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.ones(2, 1)})()
    assert got["a"].dtype == np.float32 and got["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got["b"].shape == (2, 1)


def test_a_crash_on_a_gpu_keeps_the_batch_already_computed(ten, tmp_path):
    """With one batch in flight, a failing launch still hands over the batch before it."""
    crashing = _LoggedLaunches("cuda:0")
    crashing.fail_after = 3
    with pytest.raises(RuntimeError, match="simulated crash"):
        catalogue_features(ten, "image", crashing, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert ("finish", 2) in crashing.events
    encoder = TinyImageEncoder()
    catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert encoder.forwarded == 4  # three batches of two were written before the crash


def test_on_a_gpu_shards_are_written_off_the_main_thread_one_chunk_at_a_time(ten, tmp_path, monkeypatch):
    """The same shards and vectors as on the CPU, written by one background thread, never two at once."""
    import threading
    import time

    real = FeatureStore.append
    writes: list[tuple[str, float, float]] = []

    def slow_append(self, keys, vectors):
        start = time.perf_counter()
        time.sleep(0.02)
        path = real(self, keys, vectors)
        writes.append((threading.current_thread().name, start, time.perf_counter()))
        return path

    real_fill = FeaturePlan.fill
    fills: list[str] = []

    def recorded_fill(self, name, keys, vectors):
        fills.append(threading.current_thread().name)
        return real_fill(self, name, keys, vectors)

    monkeypatch.setattr(FeatureStore, "append", slow_append)
    monkeypatch.setattr(FeaturePlan, "fill", recorded_fill)
    feats = {}
    for device in ("cpu", "cuda:0"):
        writes.clear()
        fills.clear()
        feats[device] = catalogue_features(
            ten, "image", _LoggedLaunches(device), BOTH, cache_dir=tmp_path / device, options=IN_PROCESS
        )
        assert len(writes) == 10 and len(fills) == 10  # five chunks of two items, one shard per output each
        names = {name for name, _, _ in writes} | set(fills)  # joining and filling in the rows go there too
        assert names == {"MainThread"} if device == "cpu" else all(n.startswith("recsys-shards") for n in names)
        spans = sorted((start, end) for _, start, end in writes)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
        store = FeatureStore(tmp_path / device, feature_id(TinyImageEncoder(), "embedding"))
        assert len(store.shards()) == 5 and store.load([content_key(i, "image") for i in ten.items]).present.all()
    for name in BOTH:
        np.testing.assert_array_equal(feats["cpu"][name].vectors, feats["cuda:0"][name].vectors)


def test_a_failing_background_write_is_raised_and_a_crash_still_waits_for_the_write(ten, tmp_path, monkeypatch, caplog):
    real = FeatureStore.append
    calls = []

    def failing_append(self, keys, vectors):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("simulated write failure")
        return real(self, keys, vectors)

    monkeypatch.setattr(FeatureStore, "append", failing_append)
    with pytest.raises(ValueError, match="simulated write failure"):
        catalogue_features(ten, "image", _LoggedLaunches("cuda:0"), BOTH, cache_dir=tmp_path / "a", options=IN_PROCESS)
    calls.clear()
    crashing = _LoggedLaunches("cuda:0")
    crashing.fail_after = 2
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="simulated crash"):
        catalogue_features(ten, "image", crashing, BOTH, cache_dir=tmp_path / "b", options=IN_PROCESS)
    assert "writing a cache shard failed too" in caplog.text  # the crash is what the caller sees


def test_unset_batch_size_is_the_devices_default(tmp_path):
    """32 items a forward on the CPU when the user has not said; 256 for an encoder on CUDA."""
    from types import SimpleNamespace

    catalogue = load_catalogue(build_image_catalogue(tmp_path / "cat", 40))
    log = tmp_path / "forwards.txt"
    encoder = TinyImageEncoder(forward_log=log)
    catalogue_features(catalogue, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=BatchOptions(workers=0))
    assert log.read_text().split() == ["32", "8"]
    assert BatchOptions().for_encoder(SimpleNamespace(device="cuda:1")).batch_size == 256
    assert BatchOptions(batch_size=7).for_encoder(SimpleNamespace(device="cuda")).batch_size == 7
    with pytest.raises(InputError, match="at least 1"):
        BatchOptions(batch_size=0)


def test_a_device_out_of_memory_says_which_setting_to_lower(ten, tmp_path, monkeypatch):
    from recsys.errors import ConfigError

    encoder = TinyImageEncoder()
    real = encoder.forward_batch

    def too_big_after_two(batch):
        if encoder.forward_calls >= 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB")  # torch's OutOfMemoryError text
        return real(batch)

    monkeypatch.setattr(encoder, "forward_batch", too_big_after_two)
    with pytest.raises(ConfigError, match=r"out of device memory at 2 items a batch.*--batch-size"):
        catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    again = TinyImageEncoder()
    catalogue_features(ten, "image", again, BOTH, cache_dir=tmp_path / "c", options=IN_PROCESS)
    assert again.forwarded == 10 - 4  # the two batches before the error were kept
    monkeypatch.setattr(encoder, "forward_batch", lambda batch: (_ for _ in ()).throw(RuntimeError("other")))
    with pytest.raises(RuntimeError, match="other"):
        catalogue_features(ten, "image", encoder, BOTH, cache_dir=tmp_path / "d", options=IN_PROCESS)
