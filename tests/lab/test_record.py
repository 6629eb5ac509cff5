"""Results files as the Fusion lab reads them: summaries kept or rebuilt, provenance, damaged files,
and the shipped lfm2k results themselves."""

from __future__ import annotations

import json
import shlex

import pytest

from recsys.errors import RecsysError
from recsys.lab.evaluate import RESULTS_FORMAT, save_results
from recsys.lab.record import SHIPPED_RESULTS, LabRecord, read_record, shipped_record
from recsys.lab.stats import evaluate_seeds

MODELS = ["popularity", "content:text"]


@pytest.fixture(scope="module")
def seeded(two_clusters):
    return evaluate_seeds(two_clusters.dataset, "cold-items", MODELS, [0, 1], ks=(2, 5))


def test_round_trip_keeps_summaries_and_meta(seeded, tmp_path):
    runs, summary = seeded
    meta = {"command": "python benchmarks/lfm2k.py --seeds 2", "seeds": [0, 1]}
    record = read_record(save_results(tmp_path / "r.json", runs, [summary], meta))
    assert record.labels == ["two-clusters / cold-items"]
    assert record.seeds == [0, 1] and record.meta == meta
    (back,) = record.summaries
    assert back.paired and back.best == "content:text"
    assert back.model("popularity").p_value == pytest.approx(summary.model("popularity").p_value)
    origin = record.origin()
    assert "made by `python benchmarks/lfm2k.py --seeds 2`" in origin and "2 seed(s): 0, 1" in origin
    assert "recsys " in origin
    # the page's JSON download is the same format, read back alike
    again = read_record(record.to_json().encode())
    assert again.summaries[0].to_dict() == back.to_dict() and again.meta == meta
    assert json.loads(record.to_json())["format"] == RESULTS_FORMAT


def test_a_file_without_summaries_gets_intervals_and_no_test(seeded, tmp_path):
    runs, _ = seeded
    record = read_record(save_results(tmp_path / "r.json", runs))
    (summary,) = record.summaries
    assert not summary.paired and "no paired test" in summary.test
    mean, half = summary.model("content:text").metrics["all"]["recall@2"]
    assert mean is not None and half is not None  # two seeds: an interval
    frame = summary.frame()
    assert frame.loc["content:text", "vs best"] == "best" and frame.loc["popularity", "vs best"] == ""
    assert "origin" not in record.meta and "made by" not in record.origin()


def test_select_and_first_runs(seeded, two_clusters):
    from recsys.lab.evaluate import evaluate

    runs, summary = seeded
    given = evaluate(two_clusters.dataset, "given", MODELS, ks=(2, 5))
    record = LabRecord.from_runs([*runs, given], [summary])
    assert record.labels == ["two-clusters / cold-items", "two-clusters / given"]
    assert [r.seed for r in record.first_runs()] == [0, 0]
    only = record.select(["two-clusters / given"])
    assert len(only.runs) == 1 and only.labels == ["two-clusters / given"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"{not json", "not valid JSON"),
        (b'{"format": "something-else", "runs": []}', "Not a lab results file"),
        (json.dumps({"format": RESULTS_FORMAT, "runs": {}}).encode(), "no list of runs"),
        (json.dumps({"format": RESULTS_FORMAT, "runs": []}).encode(), "holds no runs"),
        (json.dumps({"format": RESULTS_FORMAT, "runs": [{"models": 3}]}).encode(), "Not a lab results record"),
    ],
)
def test_damaged_files_give_a_clear_message(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RecsysError, match=message):
        read_record(path)
    record, problem = shipped_record(path)  # the page's path: never raises
    assert record is None and message in problem and "Regenerate them" in problem


def test_damaged_summaries_and_meta(seeded, tmp_path):
    runs, summary = seeded
    path = save_results(tmp_path / "r.json", runs, [summary])
    data = json.loads(path.read_text())
    data["summaries"][0]["models"] = [{"name": "x"}]
    path.write_text(json.dumps(data))
    with pytest.raises(RecsysError, match="Not a seed summary record"):
        read_record(path)
    data = json.loads(save_results(tmp_path / "r.json", runs, [summary]).read_text())
    data["meta"] = ["not", "a", "table"]
    path.write_text(json.dumps(data))
    with pytest.raises(RecsysError, match="meta is not a table"):
        read_record(path)


def test_a_folder_is_not_a_results_file(tmp_path):
    with pytest.raises(RecsysError, match="is a folder"):
        read_record(tmp_path)


def test_the_shipped_lfm2k_results():
    """The file the page opens with: made by the benchmark, both protocols, small, with its command."""
    assert SHIPPED_RESULTS.stat().st_size < 600_000
    record, problem = shipped_record()
    assert record is not None, problem
    command = str(record.meta["command"])
    assert "python benchmarks/lfm2k.py" in command and "--seeds" in command
    assert "--out data/lab/lfm2k-results.json" in command
    assert {s.protocol for s in record.summaries} == {"given", "cold-items"}
    assert all(s.paired and len(s.seeds) == len(record.meta["seeds"]) for s in record.summaries)
    raw = json.loads(SHIPPED_RESULTS.read_text())
    assert all("per_user" not in m for run in raw["runs"] for m in run["models"])
    assert all(r.environment.get("git", {}).get("commit") for r in record.runs)


def test_the_benchmark_records_the_command_that_regenerates_its_file(two_clusters, tmp_path, monkeypatch, capsys):
    import importlib.util

    script = SHIPPED_RESULTS.parents[2] / "benchmarks" / "lfm2k.py"
    spec = importlib.util.spec_from_file_location("lfm2k_benchmark", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("RECSYS_TRAIN_THREADS", "1")
    out = tmp_path / "r.json"
    argv = ["--dataset", str(two_clusters.write_mmrec(tmp_path / "toy")), "--models", "popularity,content:text",
            "--seeds", "2", "--no-reference-check", "--out", str(out)]
    assert bench.main(argv) == 0
    record = read_record(out)
    assert record.meta["command"].startswith("RECSYS_TRAIN_THREADS=1 ")
    assert record.meta["command"].endswith(shlex.join(["python", "benchmarks/lfm2k.py", *argv]))
    assert record.meta["seeds"] == [0, 1] and record.meta["train_threads"] == 1
    assert [s.protocol for s in record.summaries] == ["given", "cold-items"] and all(s.paired for s in record.summaries)
