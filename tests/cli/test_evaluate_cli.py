"""``python -m recsys evaluate``: defaults that fit the data, and mistakes caught before any fitting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.cli import main
from recsys.cli.evaluate import PROTOCOL_CHOICES
from recsys.lab import evaluate as runner
from recsys.lab.protocols import PROTOCOLS


@pytest.fixture
def recbole_folder(tmp_path):
    """A RecBole dataset (no x_label) with 30 users over 12 items."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "rb"
    folder.mkdir()
    rows = [f"u{u}\ti{i}\t{rng.integers(1, 6)}" for u in range(30) for i in rng.choice(12, 6, replace=False)]
    (folder / "rb.inter").write_text("user_id:token\titem_id:token\trating:float\n" + "\n".join(rows) + "\n")
    return folder


@pytest.fixture
def no_fitting(monkeypatch):
    """Fail the test if anything reaches the evaluation runner."""

    def refuse(*args, **kwargs):
        raise AssertionError("evaluate() was reached")

    monkeypatch.setattr(runner, "evaluate", refuse)


def test_protocol_choices_match_the_lab():
    assert PROTOCOL_CHOICES == PROTOCOLS


def test_default_protocol_is_random_without_a_given_split(recbole_folder, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["evaluate", "--dataset", str(recbole_folder), "--format", "recbole", "--models", "popularity",
                 "--ks", "5", "--json", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "protocol: random (default: the dataset has no split); train items excluded" in captured.err
    (run,) = json.loads(out.read_text())["runs"]
    assert run["protocol"] == "random" and "torch" in run["environment"]["versions"]


def test_filters_and_options_reach_the_run(recbole_folder, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["evaluate", "--dataset", str(recbole_folder), "--format", "recbole", "--models", "popularity",
                 "--ks", "5", "--protocol", "leave-one-out", "--min-rating", "2", "--k-core", "2",
                 "--mask-valid", "--json", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run,) = json.loads(out.read_text())["runs"]
    assert run["options"] == {"mask_valid": True, "refit": False, "min_rating": 2.0, "k_core": 2}
    assert run["description"].startswith("ratings >= 2, 2-core") and "(RecBole)" in run["description"]
    assert "mrr@5" in run["models"][0]["metrics"]["all"]


def test_models_list_needs_no_dataset(capsys):
    assert main(["evaluate", "--models", "list"]) == 0
    printed = capsys.readouterr().out
    assert "late-fusion" in printed and "needs 2+ modalities" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--dataset is required"),
        (["--dataset", "DS", "--ks", ""], "--ks needs at least one cut-off"),
        (["--dataset", "DS", "--ks", ","], "--ks needs at least one cut-off"),
        (["--dataset", "DS", "--ks", "0,5"], "positive integers"),
        (["--dataset", "DS", "--seed", "-1"], "seed must be a whole number"),
        (["--dataset", "DS", "--seeds", "0"], "--seeds must be a whole number of at least 1"),
        (["--dataset", "DS", "--json", "OUT_DIR"], "is a folder"),
        (["--dataset", "DS", "--json", "UNDER_FILE"], "Results file --json"),
        (["--dataset", "DS", "--k-core", "0"], "k-core"),
        (["--dataset", "DS", "--min-rating", "nan"], "finite"),
    ],
)
def test_mistakes_exit_2_before_any_fitting(args, message, recbole_folder, tmp_path, capsys, no_fitting):
    (tmp_path / "a_file").write_text("x")
    subs = {"DS": str(recbole_folder), "OUT_DIR": str(tmp_path), "UNDER_FILE": str(tmp_path / "a_file" / "r.json")}
    argv = ["evaluate", "--format", "recbole", *[subs.get(a, a) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_folder_named_like_an_interaction_file(tmp_path, capsys):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x.inter").mkdir()
    assert main(["evaluate", "--dataset", str(tmp_path / "ds"), "--format", "recbole"]) == 2
    assert "x.inter is a folder or a special file" in capsys.readouterr().err


def test_two_user_dataset_warns(tmp_path, capsys):
    folder = tmp_path / "two"
    folder.mkdir()
    rows = [f"{u}\ti{i}\t4" for u in ("a", "b") for i in range(u == "b", 12, 2)]
    (folder / "two.inter").write_text("user_id:token\titem_id:token\trating:float\n" + "\n".join(rows) + "\n")
    assert main(["evaluate", "--dataset", str(folder), "--format", "recbole", "--models", "popularity"]) == 0
    assert "warning: only 2 test user(s)" in capsys.readouterr().err


def test_cli_fits_in_the_train_thread_role(recbole_folder, monkeypatch, capsys):
    from recsys.lab import evaluate as module

    roles = []
    real = module.use_threads

    def spy(role, **kwargs):
        roles.append(role)
        return real(role, **kwargs)

    monkeypatch.setattr(module, "use_threads", spy)
    argv = ["evaluate", "--dataset", str(recbole_folder), "--format", "recbole", "--models", "popularity,itemknn"]
    assert main(argv) == 0, capsys.readouterr().err
    assert roles == ["train", "train"]


def test_seeds_print_intervals_and_save_summaries(recbole_folder, tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["evaluate", "--dataset", str(recbole_folder), "--format", "recbole", "--models", "popularity,itemknn",
            "--ks", "5", "--seeds", "2", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "2 seed(s) [0, 1]" in printed and "+-" in printed and "Wilcoxon" in printed
    record = json.loads(out.read_text())
    assert [r["seed"] for r in record["runs"]] == [0, 1]
    (summary,) = record["summaries"]
    assert summary["seeds"] == [0, 1] and summary["key"] == "recall@5"
