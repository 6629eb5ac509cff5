"""Report shaping and the Fusion lab page, on results from the two-cluster dataset.

The attention entry is a results record made by hand (metrics copied from late fusion, per-user
weights drawn at random): it exercises the weight-distribution chart without training a model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recsys.lab import report
from recsys.lab.evaluate import ModelResult, evaluate, save_results

MODELS = ["random", "popularity", "itemknn", "content:text", "content:audio", "early-fusion", "late-fusion"]
PAGE = Path(__file__).resolve().parents[2] / "pages" / "3_Fusion_lab.py"


def _with_attention(run):
    late = run.model("late-fusion")
    w = np.random.default_rng(0).dirichlet([2.0, 1.0], size=62)
    info = {
        "modalities": ["text", "audio"],
        "attention_weights": {  # (n, M) matrices beside their modalities, as AttentionFusion reports
            "modalities": ["text", "audio"],
            "per_user": w.tolist(),
            "per_item": w[:40].tolist(),
            "mean": w.mean(axis=0).tolist(),
        },
        "item_weights": {"text": w[:40, 0].tolist(), "audio": w[:40, 1].tolist()},  # {modality: [w]}
    }
    att = ModelResult("attention", "hand-made record", 0.1, 0.0, late.metrics, info)
    return replace(run, models=[*run.models, att])


@pytest.fixture(scope="module")
def runs(two_clusters):
    given = evaluate(two_clusters.dataset, "given", MODELS, ks=(5, 10))
    cold = evaluate(two_clusters.dataset, "cold-items", MODELS, ks=(5, 10), seed=1)
    return [_with_attention(given), cold]


@pytest.fixture(scope="module")
def results_file(runs, tmp_path_factory):
    return save_results(tmp_path_factory.mktemp("lab") / "results.json", runs)


def test_metrics_frame_is_long_and_complete(runs):
    frame = report.metrics_frame(runs)
    assert set(frame.metric) == {"recall", "ndcg", "precision", "map", "mrr", "hit", "coverage", "diversity"}
    assert set(frame.k) == {5, 10}
    assert set(frame.protocol) == {"given", "cold-items"}
    assert frame[frame.model == "content:text"].kind.iloc[0] == "single modality"


def test_warm_cold_takes_cold_from_the_cold_protocol(runs):
    wc = report.warm_cold_frame(report.metrics_frame(runs), "recall", 10)
    assert set(wc[wc.protocol == "cold-items"]["items"]) == {"cold"}
    assert set(wc[wc.protocol == "given"]["items"]) == {"warm"}


def test_weight_distributions_read_matrix_and_dict_shapes(runs):
    dist = report.weight_distributions(runs[0])
    assert set(dist.group) == {"attention_weights.per_user", "attention_weights.per_item", "item_weights"}
    assert len(dist[dist.group == "attention_weights.per_user"]) == 62 * 2
    assert set(dist.modality) == {"text", "audio"}
    fixed = report.fixed_weights(runs[0])
    assert set(fixed.model) == {"early-fusion", "late-fusion"}
    assert fixed.groupby("model").weight.sum().round(6).eq(1.0).all()


def test_figures_build(runs):
    frame = report.metrics_frame(runs)
    assert report.bar_figure(frame, "recall", 10).data
    assert report.line_figure(frame, "ndcg").data
    assert report.warm_cold_figure(report.warm_cold_frame(report.metrics_frame(runs), "recall", 10), "recall", 10).data
    assert report.weights_figure(report.weight_distributions(runs[0])).data


def test_sanity_checks_compare_fused_with_single_modality(runs):
    lines = report.sanity_checks(runs, k=10)
    assert any("best modality fusion" in line and "given" in line for line in lines)
    assert any("best modality fusion" in line and "cold-items" in line for line in lines)


def test_page_shows_charts_and_tables(results_file):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["results_path"] = str(results_file)
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 5  # bar, line, warm/cold, weight distribution, tuned weights
    # per run: its fusion-vs-one-modality table, and its metrics table (given has only the "all" segment here)
    assert len(at.dataframe) == 4
    assert any("fusion" in (w.value if hasattr(w, "value") else "") for w in [*at.success, *at.warning])
    assert any("cold-start items" in c.value for c in at.caption)
    assert at.success or at.warning


def test_page_explains_a_missing_file(tmp_path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["results_path"] = str(tmp_path / "none.json")
    at.run()
    assert not at.exception
    assert any("No results file" in i.value for i in at.info)


def test_page_switches_results_files(results_file, runs, tmp_path):
    """Loading another file resets the run selection to the new file's runs."""
    from streamlit.testing.v1 import AppTest

    other = save_results(tmp_path / "other.json", runs[1:])
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["results_path"] = str(results_file)
    at.run()
    at.text_input(key="results_path").set_value(str(other)).run()
    assert not at.exception
    assert at.main.multiselect[0].value == ["two-clusters / cold-items"]
    assert len(at.get("plotly_chart")) >= 3


def test_page_runs_an_evaluation(two_clusters, tmp_path):
    from streamlit.testing.v1 import AppTest

    folder = two_clusters.write_mmrec(tmp_path / "toy")
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(folder)
    at.run()
    assert any("press *Run*" in i.value for i in at.info)
    at.multiselect(key="models").set_value(["popularity", "content:text", "late-fusion"])
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    assert at.main.multiselect[0].value == ["toy / given", "toy / cold-items"]
    assert len(at.get("plotly_chart")) >= 4


def _record(name, recall, info=None):
    return ModelResult(name, "", 0.0, 0.0, {"all": {"recall@20": recall}}, info or {})


def test_sanity_checks_compare_like_with_like(runs):
    base = replace(runs[0], ks=[20], reference=[])
    bpr = _record("bpr", 0.40, {"dim": 64, "reg": 0.001, "config": {"epochs": 150, "lr": 0.002}})
    ref = _record("implicit-bpr", 0.33, {"params": {"factors": 64, "regularization": 0.05, "iterations": 3000}})
    hybrid = _record("hybrid-bpr", 0.37)
    text = _record("content:text", 0.29)
    run = replace(base, models=[_record("popularity", 0.12), bpr, ref, hybrid, text])
    lines = report.sanity_checks([run])
    (na,) = [line for line in lines if "n.a." in line]
    assert "different hyper-parameters" in na and "3000 iterations" in na and "--reference-check" in na
    (hyb,) = [line for line in lines if "hybrid" in line]
    assert "FAIL" in hyb and "best of its parts" in hyb and "bpr 0.4000" in hyb and "fusion" not in hyb
    matched = replace(run, reference=[_record("bpr (matched)", 0.30), _record("implicit-bpr (matched)", 0.32)])
    lines = report.sanity_checks([matched])
    assert not any("n.a." in line for line in lines)
    assert any(line.startswith("[two-clusters / given] PASS: our bpr") and "(-6.3%)" in line for line in lines)


def test_provenance_line(runs):
    assert report.provenance_line(runs[0]).startswith("recsys ")
    assert "commit" in report.provenance_line(runs[0]) or "git" not in runs[0].environment
    assert "no versions recorded" in report.provenance_line(replace(runs[0], environment={}))


def _recbole_toy(tmp_path, two_clusters):
    """The two-cluster interactions as a RecBole dataset: no given split, one text modality."""
    ds = two_clusters.dataset
    folder = tmp_path / "rb"
    folder.mkdir()
    rows = "\n".join(f"u{u}\ti{i}\t4" for u, i in zip(ds.users, ds.items, strict=True))
    (folder / "rb.inter").write_text("user_id:token\titem_id:token\trating:float\n" + rows + "\n")
    np.save(folder / "text.npy", ds.item_features["text"][: len(np.unique(ds.items))])
    return folder


def test_page_defaults_to_random_without_a_given_split(two_clusters, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.lab import evaluate as runner

    roles = []
    real = runner.use_threads
    monkeypatch.setattr(runner, "use_threads", lambda role, **kw: (roles.append(role), real(role, **kw))[1])
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(_recbole_toy(tmp_path, two_clusters))
    at.session_state["dataset_format"] = "recbole"
    at.run()
    assert not at.exception, at.exception
    assert "early-fusion" not in at.multiselect(key="models").options  # one modality: no fusion rows
    at.multiselect(key="models").set_value(["popularity", "content:text"])
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    assert at.main.multiselect[0].value == ["rb / random", "rb / cold-items"]
    assert roles == ["train"] * 4  # two models under two protocols, every fit in the train thread role


def test_page_keeps_the_runs_that_succeed(two_clusters, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.errors import DatasetError
    from recsys.lab import evaluate as runner

    real = runner.evaluate

    def given_fails(ds, protocol, *args, **kwargs):
        if protocol == "given":
            raise DatasetError("the given split is broken")
        return real(ds, protocol, *args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", given_fails)
    folder = two_clusters.write_mmrec(tmp_path / "toy", ("text",))
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(folder)
    at.run()
    at.multiselect(key="models").set_value(["popularity"])
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    assert any("given: the given split is broken" in e.value for e in at.error)
    assert at.main.multiselect[0].value == ["toy / cold-items"]


@pytest.fixture(scope="module")
def summaries(two_clusters):
    from recsys.lab.stats import evaluate_seeds

    models = ["popularity", "content:text", "content:audio"]
    return [evaluate_seeds(two_clusters.dataset, p, models, [0, 1, 2], ks=(5, 10))[1] for p in ("given", "cold-items")]


def test_summary_frame_carries_intervals_and_verdicts(summaries):
    frame = report.summary_frame(summaries)
    assert set(frame.run) == {"two-clusters / given", "two-clusters / cold-items"}
    row = frame[(frame.run == "two-clusters / given") & (frame.model == "popularity") & (frame.metric == "recall")]
    mean, half = summaries[0].model("popularity").metrics["all"]["recall@10"]
    assert row[row.k == 10].value.item() == pytest.approx(mean) and row[row.k == 10].half.item() == pytest.approx(half)
    assert set(frame.verdict) <= {"best", "sig.", "n.s.", ""} and "best" in set(frame.verdict)
    assert (frame.seeds == 3).all()


def test_bar_chart_has_error_bars(summaries):
    fig = report.bar_figure(report.summary_frame(summaries), "recall", 10)
    assert fig.data and all(trace.error_y.array is not None for trace in fig.data)
    assert "mean of 3 seeds, 95% CI" in fig.layout.title.text
    one_seed = report.bar_figure(report.metrics_frame([]), "recall", 10)  # no intervals: no error bars
    assert all(trace.error_y.array is None for trace in one_seed.data)
    wc = report.warm_cold_frame(report.summary_frame(summaries), "recall", 10)
    assert set(wc["items"]) == {"warm", "cold"} and "half" in wc
    assert report.warm_cold_figure(wc, "recall", 10).data[0].error_y.array is not None


def test_summary_tables_stack_every_run_and_segment(summaries):
    tables = report.summary_tables(summaries)
    assert list(tables.columns[:4]) == ["run", "seeds", "segment", "model"]
    assert set(tables.run) == {"two-clusters / given", "two-clusters / cold-items"}
    assert (tables.seeds == "0 1 2").all()
    assert "vs best" in tables and "recall@10 +-" in tables
    csv = tables.to_csv(index=False)
    assert csv.splitlines()[0].startswith("run,seeds,segment,model,")
