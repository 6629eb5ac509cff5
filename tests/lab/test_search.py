"""The validation-only search: default first, best validation setting wins, budget, test never read."""

from __future__ import annotations

import importlib.machinery
import math
import sys
import types
from typing import Self

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import RecsysError
from recsys.lab import registry
from recsys.lab import search as lab_search
from recsys.lab.base import Recommender, TrainData
from recsys.lab.evaluate import Results, evaluate
from recsys.lab.protocols import make_split
from recsys.lab.search import check_budget, check_space, parse_candidates, plan_settings, search, search_models
from recsys.lab.stats import summarise

FAKE_MODULE = "fake_search_models"


class Recorder(Recommender):
    """Validation recall rises with ``quality`` (it ranks the validation items up, on purpose, so
    the test knows the best setting); every ``TrainData`` it is fitted on is recorded."""

    seen: list[TrainData] = []

    def __init__(self, quality: float = 0.0, size: int = 8) -> None:
        if quality < 0:
            raise RecsysError("quality must be >= 0")
        self.quality = quality
        self.size = size

    def fit(self, data: TrainData) -> Self:
        Recorder.seen.append(data)
        self.valid = data.valid.toarray()
        self.noise = np.random.default_rng(0).random(self.valid.shape).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.quality * self.valid[users] + self.noise[users]


@pytest.fixture
def recorder(monkeypatch):
    """A registered model ``recorder`` with a search space over ``quality``."""
    module = types.ModuleType(FAKE_MODULE)
    module.__spec__ = importlib.machinery.ModuleSpec(FAKE_MODULE, None)
    module.Recorder = Recorder
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    spec = registry.ModelSpec(f"{FAKE_MODULE}:Recorder", "records what it saw", search={"quality": (0.5, 2.0, 0.2)})
    monkeypatch.setitem(registry.MODELS, "recorder", spec)
    Recorder.seen = []
    return Recorder


def _data(seed: int = 0) -> TrainData:
    rng = np.random.default_rng(seed)
    train = sp.csr_matrix((rng.random((30, 40)) < 0.2).astype(np.float32))
    valid = sp.csr_matrix(((rng.random((30, 40)) < 0.1) & (train.toarray() == 0)).astype(np.float32))
    return TrainData(train, valid, seed=seed)


def test_the_default_is_tried_first_and_the_best_validation_setting_wins(recorder):
    tried = []
    result = search("recorder", _data(), 60.0, on_trial=tried.append)
    assert tried[0].params == {} and result.trials[0].params == {}
    assert {t.params["quality"] for t in tried[1:]} == {0.5, 2.0, 0.2}
    assert result.chosen == {"quality": 2.0}
    assert result.best.valid_recall == max(t.valid_recall for t in tried) > result.trials[0].valid_recall
    assert result.mode == "grid" and result.planned == 4 and len(result.trials) == 4
    record = result.record()
    assert record["chosen"] == {"quality": 2.0} and record["settings_tried"] == 4
    assert record["valid_recall@20"] == result.best.valid_recall
    assert "quality=2.0" in result.line() and "4 of 4 settings" in result.line()


def test_the_default_wins_ties_and_worse_settings(recorder):
    result = search("recorder", _data(), 60.0, space={"quality": (0.0, 1e-9)})  # default 0: nothing beats it
    assert result.chosen == {} and "registered default" in result.line()


def test_a_budget_of_zero_tries_only_the_default(recorder):
    result = search("recorder", _data(), 0)
    assert [t.params for t in result.trials] == [{}] and result.chosen == {}
    assert len(recorder.seen) == 1


def test_a_failing_setting_is_recorded_and_the_search_goes_on(recorder, monkeypatch):
    real_fit = Recorder.fit

    def fit(self, data):
        if self.quality == 0.5:
            raise RecsysError("diverged")
        return real_fit(self, data)

    monkeypatch.setattr(Recorder, "fit", fit)
    result = search("recorder", _data(), 60.0)
    failed = [t for t in result.trials if t.error]
    assert [t.params for t in failed] == [{"quality": 0.5}] and "diverged" in failed[0].line()
    assert result.chosen == {"quality": 2.0} and "1 failed" in result.line()


def test_the_search_never_reads_the_test_split(recorder, monkeypatch, two_clusters):
    ds = two_clusters.dataset
    real = make_split(ds, "given", seed=0)

    class Guarded:
        """The real split, except that reading its test interactions fails the test."""

        train = real.train

        @property
        def test(self):
            raise AssertionError("the search read the test split")

    monkeypatch.setattr(lab_search, "make_split", lambda *a, **k: Guarded())
    found = search_models(ds, "given", ["recorder"], 0, 60.0)
    assert recorder.seen and all(d is real.train for d in recorder.seen)
    for data in recorder.seen:  # the matrices it fitted on hold no test interaction
        assert data.train.multiply(real.test).nnz == 0 and data.valid.multiply(real.test).nnz == 0
    assert found["recorder"].chosen == {"quality": 2.0}


def test_evaluate_runs_the_chosen_setting_and_keeps_the_search(two_clusters):
    ds = two_clusters.dataset
    found = search_models(ds, "given", ["popularity", "itemknn"], 0, 60.0)
    assert found["popularity"].mode == "default" and len(found["popularity"].trials) == 1
    knn = found["itemknn"]
    assert knn.mode == "grid" and knn.trials[0].params == {}
    assert {"k": 100} not in [t.params for t in knn.trials]  # the default's own value is not fitted twice
    run = evaluate(ds, "given", ["popularity", "itemknn"], seed=0, searched=found)
    info = run.model("itemknn").extra_info["search"]
    assert info["chosen"] == knn.chosen and info["settings_tried"] == len(knn.trials)
    back = Results.from_dict(run.to_dict())  # a results file keeps it
    assert back.model("itemknn").extra_info["search"]["valid_recall@20"] == pytest.approx(knn.best.valid_recall)
    settings = summarise([run]).model("itemknn").hyper_parameters
    assert settings["search.settings_tried"] == len(knn.trials) and "search.seconds" not in settings


def test_plans_grid_when_small_random_when_large():
    space = {"a": (1, 2, 3), "b": (0.1, 0.2)}
    mode, plan = plan_settings(space, seed=3)
    assert mode == "grid" and len(plan) == 6 and len({tuple(p.items()) for p in plan}) == 6
    assert plan == plan_settings(space, seed=3)[1]  # seeded
    mode, plan = plan_settings(space, seed=3, default={"a": 2, "b": 0.1})
    assert len(plan) == 5 and {"a": 2, "b": 0.1} not in plan
    big = {f"p{i}": tuple(range(5)) for i in range(6)}  # 15,625 combinations
    mode, plan = plan_settings(big, seed=0, max_settings=12)
    assert mode == "random" and len(plan) == 12 and len({tuple(p.items()) for p in plan}) == 12
    assert plan_settings({}, seed=0) == ("default", [])


def test_every_registered_search_space_is_valid():
    for family, spec in registry.MODELS.items():
        name = f"{family}:text" if spec.per_modality else family
        assert check_space(name, spec.search) == {k: tuple(v) for k, v in spec.search.items()}


@pytest.mark.parametrize(
    ("name", "space", "message"),
    [
        ("itemknn", [("k", [10])], "must map"),
        ("itemknn", {"k": []}, "non-empty list"),
        ("itemknn", {"k": "10,20"}, "non-empty list"),
        ("itemknn", {"k": (10, 10)}, "twice"),
        ("itemknn", {"neighbours": (10,)}, "takes no parameter"),
        ("itemknn", {"k": (10.5,)}, "whole number"),
        ("itemknn", {"k": ("many",)}, "whole number"),
        ("bpr", {"lr": (float("nan"),)}, "finite"),
        ("bpr", {"lr": ([0.1],)}, "not a number"),
        ("bpr", {"lr": (True,)}, "must be a number"),
        ("ease", {"lam": (-1.0,)}, "refused"),
        ("freedom", {"edge_dropout": (1.5,)}, "refused"),
        ("hybrid-bpr", {"loss": ("bce",)}, "fixed by the registration"),
        ("itemknn", {"": (1,)}, "not a parameter name"),
    ],
)
def test_malformed_search_spaces_are_refused(name, space, message):
    with pytest.raises(RecsysError, match=message):
        check_space(name, space)


def test_malformed_budgets_and_candidates_are_refused(recorder):
    for bad in (-1, math.inf, float("nan"), "10", True):
        with pytest.raises(RecsysError, match="budget"):
            check_budget(bad)
    for bad in ("lr", "=1,2", "lr="):
        with pytest.raises(RecsysError, match="key=v1"):
            parse_candidates(bad)
    assert parse_candidates("lr=0.005,0.01") == ("lr", [0.005, 0.01])
    assert parse_candidates("mode=user,item") == ("mode", ["user", "item"])
    with pytest.raises(RecsysError, match="max_settings"):
        plan_settings({"a": (1, 2)}, seed=0, max_settings=-1)
    empty = TrainData(_data().train, sp.csr_matrix((30, 40), dtype=np.float32))
    with pytest.raises(RecsysError, match="no validation"):
        search("recorder", empty, 10.0)


@pytest.mark.slow
def test_epoch_models_keep_early_stopping_in_the_search(two_clusters):
    split = make_split(two_clusters.dataset, "given", seed=0)
    result = search("bpr", split.train, 0, space={"lr": (0.01,)})
    (trial,) = result.trials
    assert trial.best_epoch is not None and trial.best_epoch >= 1 and 0.0 <= trial.valid_recall <= 1.0


def test_the_lfm2k_benchmark_searches_with_search_seconds(two_clusters, tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    from recsys.lab.record import read_record

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "lfm2k.py"
    spec = importlib.util.spec_from_file_location("lfm2k_search_benchmark", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("RECSYS_TRAIN_THREADS", "1")
    out = tmp_path / "r.json"
    folder = two_clusters.write_mmrec(tmp_path / "toy")
    argv = ["--dataset", str(folder), "--models", "popularity,itemknn", "--seeds", "2", "--search", "60",
            "--no-reference-check", "--out", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("chosen on validation:") == 2 and "itemknn: 7 of 7 settings (grid)" in printed
    record = read_record(out)
    assert record.meta["search_seconds"] == 60
    for protocol in ("given", "cold-items"):
        runs = [r for r in record.runs if r.protocol == protocol]
        searches = [r.model("itemknn").extra_info["search"] for r in runs]
        assert len(runs) == 2 and searches[0] == searches[1] and searches[0]["seed"] == 0
    assert bench.main([*argv[:-2], "--search", "-1", "--out", str(out)]) == 2
