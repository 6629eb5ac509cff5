"""Seeds and confidence: intervals and paired tests against scipy, and summaries of real runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from recsys.errors import InputError
from recsys.lab.evaluate import ModelResult, Results, load_results, save_results
from recsys.lab.metrics import MetricAccumulator
from recsys.lab.stats import (
    evaluate_seeds,
    hyper_parameters,
    paired_p_value,
    per_user_mean,
    seed_range,
    summarise,
    t_interval,
)


def test_t_interval_matches_scipy():
    values = [0.41, 0.43, 0.40, 0.44]
    mean, half = t_interval(values)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert mean - half == pytest.approx(low) and mean + half == pytest.approx(high)


def test_one_seed_has_no_interval():
    mean, half = t_interval([0.4])
    assert mean == 0.4 and math.isnan(half)


def test_interval_shrinks_with_more_seeds():
    spread = [0.40, 0.42]
    halves = [t_interval(spread * n)[1] for n in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(halves, halves[1:], strict=False))


def test_paired_p_value_matches_scipy_wilcoxon():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.05 + rng.normal(0, 0.1, 200)
    assert paired_p_value(a, b) == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert paired_p_value(a, b) < 0.05


def test_identical_samples_are_not_significant():
    a = np.random.default_rng(1).random(50)
    assert paired_p_value(a, a.copy()) == 1.0
    with pytest.raises(InputError, match="differ in length"):
        paired_p_value(a, a[:-1])


def test_per_user_values_match_the_averages():
    acc = MetricAccumulator((2,), 4)
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.9, 0.8], [0.5, 0.4, 0.3, 0.2]], dtype=np.float32)
    import scipy.sparse as sp

    test = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    acc.add(scores, test, np.array([7, 8, 9]))
    ids, values = acc.per_user()
    np.testing.assert_array_equal(ids, [7, 8])  # user 9 has no test item
    np.testing.assert_allclose(values["recall@2"], [0.5, 0.0])
    assert acc.result()["recall@2"] == pytest.approx(values["recall@2"].mean())


def _result(name: str, seed: int, recall: np.ndarray, info: dict | None = None) -> ModelResult:
    users = np.arange(recall.size) + 100 * seed % 3  # overlapping user sets across seeds
    metrics = {"all": {"recall@20": float(recall.mean()), "ndcg@20": float(recall.mean()) / 2, "users": 1.0}}
    return ModelResult(name, "", 1.0 + seed, 0.0, metrics, info or {}, {"users": users, "recall@20": recall})


def _run(seed: int, models: list[ModelResult]) -> Results:
    return Results({"name": "toy"}, "given", "toy split", seed, [20], {}, ["all"], models)


def test_per_user_mean_averages_each_user_over_seeds():
    a = _result("a", 0, np.array([1.0, 0.0]))
    b = ModelResult("a", "", 0, 0, {}, {}, {"users": np.array([1, 2]), "recall@20": np.array([0.0, 0.5])})
    users, values = per_user_mean([a, b], "recall@20")
    np.testing.assert_array_equal(users, [0, 1, 2])
    np.testing.assert_allclose(values, [1.0, 0.0, 0.5])


def test_summary_marks_identical_models_not_significant():
    rng = np.random.default_rng(0)
    runs = []
    for seed in range(3):
        good = rng.random(300)
        runs.append(
            _run(
                seed,
                [
                    _result("good", seed, good, {"reg": 0.1, "config": {"lr": 0.01}, "best_epoch": 10 + seed}),
                    _result("twin", seed, good.copy()),
                    _result("worse", seed, np.clip(good - 0.2, 0, 1)),
                ],
            )
        )
    summary = summarise(runs)
    assert summary.best in ("good", "twin") and summary.key == "recall@20"
    other = "twin" if summary.best == "good" else "good"
    assert summary.model(other).p_value == 1.0 and summary.model(other).significant is False
    assert summary.model("worse").significant is True
    best = summary.model("good")
    mean, half = best.metrics["all"]["recall@20"]
    expected = t_interval([r.model("good").metrics["all"]["recall@20"] for r in runs])
    assert (mean, half) == pytest.approx(expected)
    assert best.fit_seconds == pytest.approx(2.0)  # seeds fitted in 1, 2, 3 s
    assert best.hyper_parameters == {"reg": 0.1, "config.lr": 0.01, "best_epoch": [10, 11, 12]}
    table = summary.table()
    assert "n.s." in table and "sig." in table and "+-" in table and "Wilcoxon" in table


def test_hyper_parameters_skip_run_records():
    info = {"dim": 64, "losses": [1.0] * 50, "fit_seconds": 3.0, "config": {"device": "cpu", "lr": 0.1}, "w": [0.5]}
    assert hyper_parameters(info) == {"dim": 64, "config.lr": 0.1, "w": [0.5]}


def test_summarise_refuses_mixed_runs():
    r = _run(0, [_result("a", 0, np.ones(3))])
    other = Results({"name": "toy"}, "cold-items", "", 1, [20], {}, ["all"], [_result("a", 1, np.ones(3))])
    with pytest.raises(InputError, match="one protocol"):
        summarise([r, other])
    with pytest.raises(InputError, match="same models"):
        summarise([r, _run(1, [_result("b", 1, np.ones(3))])])


def test_seed_range_checks_its_count():
    assert seed_range(5, 3) == [5, 6, 7]
    with pytest.raises(InputError, match="at least 1"):
        seed_range(0, 0)


def test_evaluate_seeds_on_two_clusters_round_trips(two_clusters, tmp_path):
    runs, summary = evaluate_seeds(two_clusters.dataset, "cold-items", ["popularity", "content:text"], [0, 1], ks=(2,))
    assert [r.seed for r in runs] == [0, 1] and summary.seeds == [0, 1]
    assert summary.best == "content:text" and summary.key == "recall@2"
    assert summary.model("popularity").significant
    path = save_results(tmp_path / "r.json", runs, [summary])
    record = json.loads(path.read_text())
    models = {m["name"]: m for m in record["summaries"][0]["models"]}
    assert models["popularity"]["significant"] is True and models["content:text"]["p_value"] is None
    assert "per_user" not in record["runs"][0]["models"][0]
    assert len(load_results(path)) == 2


def test_summary_frame_and_dict_round_trip(two_clusters):
    from recsys.lab.stats import SeedSummary

    _, summary = evaluate_seeds(two_clusters.dataset, "cold-items", ["popularity", "content:text"], [0, 1], ks=(2,))
    frame = summary.frame()
    assert list(frame.index) == ["popularity", "content:text"]
    assert {"recall@2", "recall@2 +-", "fit_s", "p(recall@2)", "vs best"} <= set(frame.columns)
    assert frame.loc["content:text", "vs best"] == "best" and frame.loc["popularity", "vs best"] == "sig."
    mean = summary.model("popularity").metrics["all"]["recall@2"][0]
    assert frame.loc["popularity", "recall@2"] == pytest.approx(mean)
    back = SeedSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert back.to_dict() == summary.to_dict() and back.paired
    assert back.table() == summary.table()
    with pytest.raises(InputError, match="Not a seed summary record"):
        SeedSummary.from_dict({"models": [{"name": "x"}]})


def test_runs_without_per_user_figures_are_summarised_without_a_test(two_clusters):
    runs, _ = evaluate_seeds(two_clusters.dataset, "cold-items", ["popularity", "content:text"], [0, 1], ks=(2,))
    read_back = [Results.from_dict(r.to_dict()) for r in runs]
    summary = summarise(read_back)
    assert not summary.paired and summary.best == "content:text"
    assert all(m.p_value is None and m.verdict == "" for m in summary.models)
    assert "no paired test" in summary.test and "n.s." not in summary.table()


def test_evaluate_seeds_reports_progress_with_its_seed(two_clusters):
    seen, plain = [], []
    evaluate_seeds(
        two_clusters.dataset, "given", ["popularity", "bpr"], [3, 4], ks=(2,),
        on_seed_progress=seen.append, on_progress=plain.append,
    )
    assert {(p.seed, p.index, p.total) for p in seen} == {(3, 1, 2), (4, 2, 2)}
    assert [p.event for p in seen] == plain  # the bare events still reach on_progress
    assert any(p.event.phase == "epoch" for p in seen)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1].describe().startswith("given, seed 4 (2 of 2): model 2 of 2: bpr, done in")
