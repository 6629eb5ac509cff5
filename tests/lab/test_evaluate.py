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


def test_a_large_catalogue_is_scored_in_smaller_blocks_with_the_same_figures(two_clusters, monkeypatch):
    """Past SCORE_BLOCK_BYTES of scores a block holds fewer users (at 1M items, 33): here blocks of
    one to three users give every segment's figures and every user's values as blocks of 512 do,
    with seen items masked as before, and early stopping's recall alike."""
    from dataclasses import replace

    from recsys.lab import training
    from recsys.lab.evaluate import score_split
    from recsys.lab.protocols import make_split
    from recsys.lab.registry import create_model

    ds = two_clusters.dataset
    items = ds.items.copy()
    items[int(np.flatnonzero(ds.split == 2)[0])] = int(np.flatnonzero(two_clusters.cold)[0])  # a cold test item
    split = make_split(replace(ds, items=items), "given")
    model = create_model("itemknn")
    model.fit(split.train)
    whole = score_split(model, split, (1, 3), None)
    def recall() -> float:
        return training.validation_recall(model.score, split.train.train, split.train.valid, k=3)

    before = recall()
    for users in (1, 3):
        monkeypatch.setattr(training, "SCORE_BLOCK_BYTES", users * 4 * split.train.n_items)
        assert training.block_rows(split.train.n_items, 512) == users
        blocks = score_split(model, split, (1, 3), None)
        assert set(blocks[0]) == {"all", "warm", "cold"}
        for segment, figures in whole[0].items():  # sums over other blocks: equal up to float rounding
            assert blocks[0][segment] == pytest.approx(figures, rel=1e-12)
        assert blocks[1].keys() == whole[1].keys()
        for key, values in whole[1].items():
            np.testing.assert_array_equal(blocks[1][key], values)
        assert recall() == pytest.approx(before)


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
    folder = two_clusters.write_mmrec(tmp_path / "toy")
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


def test_cli_searches_on_validation_and_says_whether_fusion_pays(tmp_path, capsys, two_clusters):
    from recsys.lab.record import read_record

    folder = two_clusters.write_mmrec(tmp_path / "toy")
    out = tmp_path / "res.json"
    argv = ["evaluate", "--dataset", str(folder), "--models", "itemknn,content,late-fusion", "--seeds", "2",
            "--search", "30", "--json", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "search on the given split of seed 0" in captured.err and "chosen on validation:" in captured.err
    assert "itemknn: " in captured.err and "settings (grid)" in captured.err
    assert "does fusion earn its place" in captured.out and "late-fusion" in captured.out
    record = read_record(out)
    assert record.fusion and record.fusion[0].rows[0].model == "late-fusion"
    assert "search" in record.runs[0].model("itemknn").extra_info
    assert main([*argv[:-4], "--search=-1"]) == 2  # a bad budget fails before anything runs
    assert "search budget" in capsys.readouterr().err


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


# ----------------------------------------------------------------- options, progress, provenance


def test_validation_items_masked_on_request(two_clusters):
    import scipy.sparse as sp

    from recsys.lab.evaluate import score_split
    from recsys.lab.protocols import make_split

    split = make_split(two_clusters.dataset, "given")

    class ValidFirst:
        """Scores each user's validation items highest: only masking keeps them out of the top."""

        name = "valid-first"

        def score(self, users):
            return split.train.valid[users].toarray() * 10 + np.random.default_rng(0).random((len(users), 40))

    plain, _, _ = score_split(ValidFirst(), split, (1,), None)
    both = (split.train.train + split.train.valid).tocsr()
    masked, _, _ = score_split(ValidFirst(), split, (1,), None, exclude=sp.csr_matrix(both))
    assert plain["all"]["hit@1"] == 0.0  # a validation item is never a test item here
    assert masked["all"]["hit@1"] > 0.0
    r = evaluate(two_clusters.dataset, "given", ["popularity"], ks=(2,), mask_valid=True)
    assert "train and validation items excluded" in r.description and r.options["mask_valid"] is True


def test_refit_trains_on_train_plus_validation_with_choices_frozen(two_clusters, monkeypatch):
    from recsys.lab import evaluate as runner

    fitted = []
    create = runner.create_model

    def spying_create(name, **overrides):
        model = create(name, **overrides)
        fit = model.fit
        model.fit = lambda data: (fitted.append((name, overrides, data.train.nnz, data.valid.nnz)), fit(data))[1]
        return model

    monkeypatch.setattr(runner, "create_model", spying_create)
    r = evaluate(two_clusters.dataset, "given", ["late-fusion"], ks=(2,), refit=True)
    (first, second) = fitted
    assert first[1] == {} and first[3] == 60  # one validation item per user
    assert second[2] == first[2] + 60 and second[3] == 0
    assert set(second[1]["weights"]) == {"text", "audio"}  # the weights tuned on validation, frozen
    assert r.model("late-fusion").extra_info["refit_with"] == second[1]
    assert "refit on train+validation" in r.description and r.options["refit"] is True


def test_torch_refit_keeps_the_best_epoch(two_clusters):
    from recsys.lab.models.bpr import BPRMF
    from recsys.lab.protocols import make_split

    model = BPRMF(epochs=6, eval_every=2).fit(make_split(two_clusters.dataset, "given").train)
    assert model.refit_overrides() == {"epochs": model.result.best_epoch}
    assert BPRMF().refit_overrides() == {}


def test_progress_events_count_epochs_and_carry_validation_recall(two_clusters):
    from recsys.lab.registry import MODELS, ModelSpec

    events = []
    spec = MODELS["bpr"]
    MODELS["bpr-short"] = ModelSpec(spec.target, spec.description, kwargs={"epochs": 4, "eval_every": 2})
    try:
        evaluate(two_clusters.dataset, "given", ["popularity", "bpr-short"], ks=(2,), on_progress=events.append)
    finally:
        del MODELS["bpr-short"]
    assert [e.phase for e in events if e.model == "popularity"] == ["fit", "done"]
    bpr = [e for e in events if e.model == "bpr-short"]
    assert [e.phase for e in bpr] == ["fit"] + ["epoch"] * 5 + ["done"]
    assert [e.epoch for e in bpr if e.phase == "epoch"] == [0, 1, 2, 3, 4]
    assert {e.epochs for e in bpr if e.phase == "epoch"} == {4} and {e.index for e in bpr} == {2}
    assert bpr[2].valid_recall is None and bpr[3].valid_recall is not None  # evaluated at epoch 2
    assert bpr[4].valid_recall == bpr[3].valid_recall  # carried over epoch 3
    assert bpr[-1].fraction == 1.0 and bpr[-1].recall is not None
    assert "model 2 of 2: bpr-short, epoch 3/4, validation recall" in bpr[4].describe()


def test_a_modality_subset_is_all_a_model_sees(two_clusters):
    """``late-fusion@audio`` fuses nothing: it ranks exactly as audio content kNN does."""
    run = evaluate(two_clusters.dataset, "given", ["content:audio", "late-fusion@audio", "late-fusion"])
    alone, restricted = run.model("content:audio"), run.model("late-fusion@audio")
    assert restricted.metrics["all"] == pytest.approx(alone.metrics["all"])
    assert list(restricted.extra_info["modality_weights"]) == ["audio"]
    assert set(run.model("late-fusion").extra_info["modality_weights"]) == {"text", "audio"}
    with pytest.raises(RecsysError, match="lacks; it has"):
        evaluate(two_clusters.dataset, "given", ["attention@pixels"])


def test_fusion_models_need_two_modalities(two_clusters):
    from dataclasses import replace

    from recsys.lab.registry import default_models

    one = replace(two_clusters.dataset, item_features={"text": two_clusters.dataset.item_features["text"]})
    names = default_models(one.modalities)
    assert "content:text" in names and not {"early-fusion", "late-fusion", "attention"} & set(names)
    assert "hybrid-bpr" in names  # CF + content, not a fusion of modalities
    with pytest.raises(RecsysError, match="fuses modalities.*only 1"):
        evaluate(one, "given", ["late-fusion"])


@pytest.mark.parametrize(("ks", "message"), [((), "at least one"), ((0, 5), "positive"), ((2.5,), "positive")])
def test_bad_cut_offs_are_refused(two_clusters, ks, message):
    with pytest.raises(RecsysError, match=message):
        evaluate(two_clusters.dataset, "given", ["popularity"], ks=ks)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_bad_seeds_are_refused(two_clusters, seed):
    with pytest.raises(RecsysError, match="seed"):
        evaluate(two_clusters.dataset, "given", ["popularity"], seed=seed)


def test_tiny_datasets_warn(two_clusters):
    from recsys.datasets import InteractionDataset

    users = np.repeat([0, 1], 6)
    items = np.r_[np.arange(6), np.arange(3, 9)]
    r = evaluate(InteractionDataset("two", 2, 9, users, items), None, ["popularity"], ks=(2,))
    assert r.protocol == "random"
    assert any("only 2 test user(s)" in w for w in r.warnings)
    assert evaluate(two_clusters.dataset, "given", ["popularity"], ks=(2,)).warnings == []  # 60 test users


def test_results_record_versions_and_commit(given_results, monkeypatch):
    from recsys.lab import provenance

    env = given_results.environment
    assert {"recsys", "torch", "numpy", "python"} <= set(env["versions"])
    if provenance.git_commit() is not None:
        assert len(env["git"]["commit"]) == 40

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance.git_commit() is None and "git" not in provenance.environment()


@pytest.mark.skipif(
    not __import__("recsys.lab.sanity", fromlist=["x"]).implicit_installed(), reason="implicit not installed"
)
def test_reference_check_fits_both_bprs_at_matched_settings(two_clusters):
    from recsys.lab.report import sanity_checks
    from recsys.lab.sanity import MATCHED_EPOCHS, OURS, REFERENCE

    r = evaluate(two_clusters.dataset, "given", ["popularity"], ks=(2, 20), reference_check=True)
    assert [m.name for m in r.models] == ["popularity"]
    ours, ref = r.reference
    assert (ours.name, ref.name) == (OURS, REFERENCE)
    assert ours.extra_info["epochs_run"] == MATCHED_EPOCHS and ours.extra_info["dim"] == 64
    assert ref.extra_info["params"]["iterations"] == MATCHED_EPOCHS and ref.extra_info["params"]["factors"] == 64
    (line,) = [x for x in sanity_checks([r]) if "implicit's bpr" in x]
    assert "at the same hyper-parameters" in line
