"""The evaluation runner, its results file and the ``evaluate`` CLI on the two-cluster dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.cli import main
from recsys.errors import RecsysError
from recsys.lab.evaluate import RESULTS_FORMAT, evaluate, load_results, save_results

MODELS = ["random", "popularity", "itemknn", "content:text", "content:audio", "early-fusion", "late-fusion"]


@pytest.fixture(scope="module")
def given_results(two_clusters):
    return evaluate(two_clusters.dataset, "given", MODELS, ks=(2, 5), seed=0)


def test_results_carry_protocol_segments_and_fit_time(given_results):
    r = given_results
    assert r.protocol == "given" and "given split" in r.description
    # the given split tests only warm items here, so there is no warm/cold breakdown
    assert r.segments == ["all"]
    assert [m.name for m in r.models] == MODELS
    for m in r.models:
        assert m.fit_seconds >= 0
        assert {"recall@2", "ndcg@5", "precision@5", "map@5", "coverage@5", "diversity@5"} <= set(m.metrics["all"])
        assert m.metrics["all"]["users"] == 60


def test_learning_models_beat_random(given_results):
    recall = {m.name: m.metrics["all"]["recall@5"] for m in given_results.models}
    for name in ("itemknn", "content:text", "late-fusion"):
        assert recall[name] > recall["random"] + 0.1, name


def test_late_fusion_reports_its_weights(given_results):
    info = given_results.model("late-fusion").extra_info
    assert set(info["modality_weights"]) == {"text", "audio"}
    assert sum(info["modality_weights"].values()) == pytest.approx(1.0)


def test_cold_items_protocol_ranks_only_cold_items(two_clusters):
    r = evaluate(two_clusters.dataset, "cold-items", ["random", "popularity", "content:text"], ks=(2,), seed=1)
    assert r.protocol == "cold-items"
    assert r.split["candidate_items"] == round(0.2 * 32)  # 20% of the 32 items that have interactions
    recall = {m.name: m.metrics["all"]["recall@2"] for m in r.models}
    assert recall["content:text"] > recall["popularity"] + 0.2
    assert r.model("random").metrics["all"]["coverage@2"] <= 1.0


def test_warm_and_cold_segments_when_test_has_both(two_clusters):
    ds = two_clusters.dataset
    # move one test interaction onto a never-seen item: the given split now has a cold test item
    items = ds.items.copy()
    first_test = int(np.flatnonzero(ds.split == 2)[0])
    items[first_test] = int(np.flatnonzero(two_clusters.cold)[0])
    from dataclasses import replace

    r = evaluate(replace(ds, items=items), "given", ["popularity", "content:text"], ks=(3,))
    assert r.segments == ["all", "warm", "cold"]
    assert r.model("content:text").metrics["cold"]["users"] == 1
    assert "segment: cold" in r.table("cold")


def test_json_round_trip(given_results, tmp_path):
    path = save_results(tmp_path / "out" / "res.json", [given_results])
    raw = json.loads(path.read_text())
    assert raw["format"] == RESULTS_FORMAT
    (back,) = load_results(path)
    assert back.to_dict() == given_results.to_dict()
    assert "late-fusion" in back.table()
    with pytest.raises(RecsysError, match="Not a lab results"):
        load_results(b'{"runs": []}')


def test_unknown_and_unavailable_models_fail_before_training(two_clusters):
    with pytest.raises(RecsysError, match="Unknown model"):
        evaluate(two_clusters.dataset, "given", ["nope"])
    with pytest.raises(RecsysError, match="needs a modality"):
        evaluate(two_clusters.dataset, "given", ["content"])


def test_registered_model_without_its_module_fails_clearly(two_clusters, monkeypatch):
    from recsys.lab import registry

    ghost = registry.ModelSpec("recsys.lab.models.not_written_yet:Ghost", "a model from an unmerged branch")
    monkeypatch.setitem(registry.MODELS, "ghost", ghost)
    assert "ghost" not in registry.default_models(["text"])
    with pytest.raises(RecsysError, match="not installed in this checkout"):
        evaluate(two_clusters.dataset, "given", ["popularity", "ghost"])
    with pytest.raises(RecsysError, match="not installed in this checkout"):
        registry.create_model("ghost")


def test_cli_prints_table_and_writes_json(tmp_path, capsys, two_clusters):
    ds = two_clusters.dataset
    folder = tmp_path / "toy"
    folder.mkdir()
    rows = "\n".join(f"{u}\t{i}\t1\t{s}" for u, i, s in zip(ds.users, ds.items, ds.split, strict=False))
    (folder / "toy.inter").write_text("userID\titemID\trating\tx_label\n" + rows + "\n")
    for m, f in ds.item_features.items():
        np.save(folder / f"{m}.npy", f)
    out = tmp_path / "res.json"
    code = main(
        [
            "evaluate",
            "--dataset",
            str(folder),
            "--models",
            "popularity,content",
            "--ks",
            "5,10",
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "protocol: given" in printed and "content:text" in printed and "fit_s" in printed
    assert load_results(out)[0].models[1].name == "content:audio"


def test_cli_user_errors_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--dataset", str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err


def test_every_fit_runs_in_the_train_thread_role(two_clusters, monkeypatch):
    """Not only torch models: numpy / scipy / implicit fits get the train role's BLAS and torch counts."""
    import torch

    from recsys.lab import evaluate as runner

    seen = []
    create = runner.create_model

    def spying_create(name):
        model = create(name)
        fit = model.fit

        def spy(data):
            seen.append(torch.get_num_threads())
            return fit(data)

        model.fit = spy
        return model

    monkeypatch.setattr(runner, "create_model", spying_create)
    monkeypatch.setenv("RECSYS_TRAIN_THREADS", "2")
    before = torch.get_num_threads()
    evaluate(two_clusters.dataset, "given", ["popularity", "itemknn"], ks=(2,), seed=0)
    assert seen == [2, 2]
    assert torch.get_num_threads() == before
