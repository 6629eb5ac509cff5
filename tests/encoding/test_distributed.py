"""Encoding on Ray Data: same vectors and cache as the local pass, one forward per item, bad files, CLI.

The ``slow`` tests start one local two-CPU Ray cluster for the module (127.0.0.1 only, no
dashboard, no usage stats) and shut it down at the end.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import (
    FakeAudioEncoder,
    FakeTextEncoder,
    TinyImageEncoder,
    build_catalogue,
    build_image_catalogue,
)

from recsys import pipeline
from recsys.catalogue import load_catalogue
from recsys.encoding import BatchOptions, catalogue_features, feature_id, plan_features
from recsys.encoding.cache import FeatureStore
from recsys.encoding.distributed import EncoderRecipe, Layout, local_cluster, plan_layout, ray_cluster, run_plan_on_ray
from recsys.errors import RecsysError

REPO = Path(__file__).resolve().parents[2]
BOTH = ("embedding", "class_proba")
SMALL = BatchOptions(batch_size=4, chunk_size=4)
LOCAL = BatchOptions(batch_size=4, chunk_size=4, workers=0)


@pytest.fixture(scope="module")
def cluster():
    """A two-CPU local Ray cluster for this module (127.0.0.1 only); yields its address.

    Its worker processes inherit this environment: ``PYTHONPATH`` gets tests/ (for the encoders of
    fakes.py, which actors build) and the repository (Ray adds only the driver's working folder).
    """
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), str(REPO), saved]))
    try:
        with local_cluster(num_cpus=2, object_store_memory=200 * 2**20) as address:
            yield address
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _forwarded(log: Path) -> int:
    return sum(int(line) for line in log.read_text().split()) if log.exists() else 0


# -- no cluster needed ----------------------------------------------------------------------------
def test_layout_splits_the_cluster_between_models_and_decoding():
    assert plan_layout({"CPU": 2}, cuda=False) == Layout(1, 1, 0, decoders=2)  # 1 would fuse the stages
    assert plan_layout({"CPU": 16}, cuda=False) == Layout(3, 4, 0, decoders=4)
    assert plan_layout({"CPU": 16}, cuda=False, actors=2) == Layout(2, 6, 0, decoders=4)
    assert plan_layout({"CPU": 16, "GPU": 4}, cuda=True) == Layout(4, 1, 1, decoders=12)
    with pytest.raises(RecsysError, match="no GPU"):
        plan_layout({"CPU": 16}, cuda=True)
    with pytest.raises(RecsysError, match="need 3 CPUs"):
        plan_layout({"CPU": 2}, cuda=False, actors=2)


def test_without_ray_installed_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(RecsysError, match=r'pip install "ray\[data'), ray_cluster("auto"):
        pass


def test_ray_is_a_layered_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_RAY", "auto")
    monkeypatch.setenv("RECSYS_RAY_ACTORS", "3")
    config = pipeline.PipelineConfig.layered(tmp_path)
    assert (config.ray, config.ray_actors) == ("auto", 3)
    assert pipeline.PipelineConfig.layered(tmp_path, ray="ray://head:10001").ray == "ray://head:10001"
    monkeypatch.setenv("RECSYS_RAY_ACTORS", "many")
    with pytest.raises(RecsysError, match="RECSYS_RAY_ACTORS"):
        pipeline.PipelineConfig.layered(tmp_path)


def test_auto_passes_over_a_cluster_that_is_gone(monkeypatch, caplog):
    """A killed ``ray start`` leaves its address behind; ``auto`` must not wait minutes on it."""
    import ray._private.utils

    from recsys.encoding import distributed

    monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: "127.0.0.1:1")
    with caplog.at_level(logging.WARNING, logger="recsys.encoding.distributed"):
        assert not distributed._last_started_cluster_answers()
    assert "(127.0.0.1:1) is gone" in caplog.text
    monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: None)
    assert not distributed._last_started_cluster_answers()


def test_a_bad_address_is_a_one_line_error(tmp_path, monkeypatch, patched_encoders, capsys):
    """Before the module's cluster starts: a connected process would use that one, by design."""
    from recsys.cli import main

    with (
        pytest.raises(RecsysError, match="Cannot connect to the Ray cluster at '127.0.0.1:1'"),
        ray_cluster("127.0.0.1:1"),
    ):
        pass
    root = build_catalogue(tmp_path / "cat")
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "none")
    monkeypatch.setenv("RECSYS_AUDIO_ALIGNER", "none")
    args = ["index", "--catalogue", str(root), "--cache-dir", str(tmp_path / "c"), "--ray", "ray://127.0.0.1:1"]
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the stages' announcements
    assert last.startswith("error: Cannot connect to the Ray cluster at 'ray://127.0.0.1:1'")


def test_a_recipe_pickles_without_a_model():
    import pickle

    recipe = pickle.loads(pickle.dumps(EncoderRecipe("efficientnet-lite0", "cpu")))
    assert recipe == EncoderRecipe("efficientnet-lite0", "cpu")


# -- on a local Ray cluster -----------------------------------------------------------------------
@pytest.mark.slow
def test_ray_gives_the_local_vectors_and_the_same_cache(cluster, tmp_path):
    catalogue = load_catalogue(build_image_catalogue(tmp_path / "cat", 10))
    local = catalogue_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "a", options=LOCAL)

    log = tmp_path / "forwards.txt"
    plan = plan_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "b")
    calls: list[tuple[int, int]] = []
    remote = run_plan_on_ray(
        plan, functools.partial(TinyImageEncoder, forward_log=log), SMALL, lambda d, t: calls.append((d, t))
    )
    assert _forwarded(log) == 10  # one forward per item, across the actors
    assert calls[0] == (0, 10) and calls[-1] == (10, 10)
    assert cluster.startswith("127.0.0.1:")
    for name in BOTH:
        assert remote[name].present.all()
        np.testing.assert_allclose(remote[name].vectors, local[name].vectors, atol=1e-5)
        shards = FeatureStore(tmp_path / "b", feature_id(TinyImageEncoder(), name)).shards()
        assert len(shards) == 3  # chunks of 4, as the local path writes them

    again = TinyImageEncoder()  # the local path finds everything in the cache the Ray path wrote
    cached = catalogue_features(catalogue, "image", again, BOTH, cache_dir=tmp_path / "b", options=LOCAL)
    assert again.forwarded == 0
    np.testing.assert_allclose(cached["embedding"].vectors, local["embedding"].vectors, atol=1e-5)


@pytest.mark.slow
def test_a_corrupt_image_is_skipped_with_a_warning(cluster, tmp_path, caplog):
    catalogue = load_catalogue(build_image_catalogue(tmp_path / "cat", 6))
    (catalogue.root / "media" / "3.png").write_bytes(b"not a png at all")  # broken after the catalogue was read
    plan = plan_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "c")
    with caplog.at_level(logging.WARNING, logger="recsys.encoding"):
        feats = run_plan_on_ray(plan, TinyImageEncoder, SMALL)
    assert feats["embedding"].present.tolist() == [True, True, True, False, True, True]
    assert any("have no image vector (fix or replace their files): i3: " in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_a_crashed_ray_run_resumes_locally_with_only_the_rest(cluster, tmp_path):
    catalogue = load_catalogue(build_image_catalogue(tmp_path / "cat", 10))
    plan = plan_features(catalogue, "image", TinyImageEncoder(), BOTH, cache_dir=tmp_path / "c")
    options = BatchOptions(batch_size=2, chunk_size=2)
    with pytest.raises(Exception, match="simulated crash"):
        run_plan_on_ray(plan, functools.partial(TinyImageEncoder, fail_after=3), options)
    kept = int(FeatureStore(tmp_path / "c", "image/tiny@1").load(plan.keys).present.sum())
    encoder = TinyImageEncoder()
    feats = catalogue_features(catalogue, "image", encoder, BOTH, cache_dir=tmp_path / "c", options=LOCAL)
    assert encoder.forwarded == 10 - kept and feats["embedding"].present.all()


@pytest.mark.slow
def test_build_engine_on_ray_matches_the_local_engine(cluster, tmp_path, monkeypatch):
    encoders = {
        "minilm": FakeTextEncoder(),
        "efficientnet-lite0": TinyImageEncoder(),
        "aisfx+yamnet": FakeAudioEncoder(),
    }
    recipes = {"minilm": FakeTextEncoder, "efficientnet-lite0": TinyImageEncoder, "aisfx+yamnet": FakeAudioEncoder}
    monkeypatch.setattr(pipeline, "_create_encoder", lambda name, device: encoders[name])
    monkeypatch.setattr(pipeline, "_encoder_recipe", lambda name, device: recipes[name])
    catalogue = load_catalogue(build_catalogue(tmp_path / "cat"))
    base = {"image_aligner": None, "audio_aligner": None, "batch_size": 2}
    local = pipeline.build_engine(catalogue, pipeline.PipelineConfig(cache_dir=str(tmp_path / "a"), **base))
    config = pipeline.PipelineConfig(cache_dir=str(tmp_path / "b"), ray="auto", **base)  # reuses the fixture's
    remote = pipeline.build_engine(catalogue, config)
    assert encoders["efficientnet-lite0"].forwarded == 4  # the local pass (4 distinct pictures); Ray's ran in actors
    for modality, index in local.indexes.items():
        np.testing.assert_array_equal(remote.indexes[modality].present, index.present)
        np.testing.assert_allclose(remote.indexes[modality].native, index.native, atol=1e-5)


@pytest.mark.slow
def test_index_on_ray_from_the_command_line(cluster, tmp_path):
    """``python -m recsys index --ray auto`` with the real offline encoders, on the fixture's cluster."""
    root = build_catalogue(tmp_path / "cat")
    env = {**os.environ, "RAY_ADDRESS": cluster, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "recsys", "index", "--catalogue", str(root), "--cache-dir", str(tmp_path / "c")]
    run = subprocess.run([*command, "--ray", "auto"], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "indexed 6 items (text: 6, image: 5, audio: 5)" in run.stdout
    # Ray Data's plan line: the passes ran on the cluster, decoding in tasks apart from the model actors
    stages = "TaskPoolMapOperator[MapBatches(decode_block)] -> ActorPoolMapOperator[MapBatches(ForwardActor)]"
    assert stages in run.stderr
    local = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    assert "embeddings:" not in local.stderr  # a local run finds every vector in the cache the Ray run wrote
