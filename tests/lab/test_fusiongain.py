"""Does fusion earn its place: the verdict, its paired tests, its reasons, and the file round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.errors import RecsysError
from recsys.lab.evaluate import ModelResult, Results
from recsys.lab.fusiongain import FusionGain, FusionRow, fusion_gain, is_multimodal, is_single_modality
from recsys.lab.record import LabRecord, read_record
from recsys.lab.registry import modality_subset
from recsys.lab.stats import summarise

MODALITIES = ["text", "audio"]


def _result(name: str, seed: int, recall: np.ndarray, info: dict | None = None) -> ModelResult:
    users = np.arange(recall.size)
    metrics = {"all": {"recall@20": float(recall.mean())}}
    return ModelResult(name, "", 1.0, 0.0, metrics, info or {}, {"users": users, "recall@20": recall})


def _runs(per_model: dict[str, float], infos: dict[str, dict] | None = None, users: int = 400) -> list[Results]:
    """Three seeds; every model's per-user recall is the shared noise shifted to the given mean."""
    rng = np.random.default_rng(0)
    runs = []
    for seed in range(3):
        base = rng.random(users)
        models = [
            _result(name, seed, np.clip(base - base.mean() + mean, 0, 1), (infos or {}).get(name))
            for name, mean in per_model.items()
        ]
        runs.append(Results({"name": "toy", "modalities": {m: [8, "x"] for m in MODALITIES}}, "given", "toy", seed,
                            [20], {}, ["all"], models))
    return runs


def test_a_fusion_well_above_the_best_modality_earns_its_place():
    runs = _runs({"content:text": 0.30, "content:audio": 0.10, "attention": 0.36})
    gain = fusion_gain(summarise(runs), MODALITIES, runs)
    assert gain is not None and gain.best_single == "content:text"
    (row,) = gain.rows
    assert row.model == "attention" and row.gain > 0.1  # clipping to [0, 1] trims the shift a little
    assert row.p_value is not None and row.p_value < 0.05 and row.earns_place
    assert "attention beats the best single modality" in gain.verdict
    assert any("the other modalities alone: content:audio 0.1" in r and "of it)" in r for r in gain.reasons)


def test_a_small_gain_does_not_and_tuned_weights_explain_why():
    info = {"modality_weights": {"text": 0.95, "audio": 0.05}}
    runs = _runs({"content:text": 0.30, "content:audio": 0.10, "late-fusion": 0.303}, {"late-fusion": info})
    gain = fusion_gain(summarise(runs), MODALITIES, runs)
    (row,) = gain.rows
    assert not row.earns_place and 0 < row.gain < 0.05
    assert gain.verdict.startswith("no fusion beats the best single modality (content:text) by 5%")
    assert any("put 0.95 of the weight on text" in r for r in gain.reasons)


def test_the_model_on_the_best_modality_alone_is_the_like_for_like_baseline():
    """A trained model beats the content baseline, but the same model on text alone does just as well."""
    runs = _runs({"content:text": 0.30, "content:audio": 0.10, "attention": 0.36, "attention@text": 0.355})
    gain = fusion_gain(summarise(runs), MODALITIES, runs)
    assert gain.best_single == "attention@text"  # the best single-modality result of the protocol
    (row,) = gain.rows
    assert row.ablation == "attention@text" and row.ablation_gain == pytest.approx(0.014, abs=0.005)
    assert not row.earns_place
    assert any("(attention@text) reaches" in r and "modalities add +1" in r and "under 5%" in r for r in gain.reasons)


def test_a_fusion_that_hurts_says_what_the_other_modalities_cost():
    runs = _runs({"content:text": 0.30, "content:audio": 0.10, "freedom": 0.40, "freedom@text": 0.50})
    gain = fusion_gain(summarise(runs), MODALITIES, runs)
    (row,) = gain.rows
    assert row.ablation_gain < 0 and not row.earns_place
    assert any("freedom on text alone (freedom@text)" in r and "costs it 1" in r for r in gain.reasons)


def test_without_per_user_figures_the_verdict_stands_on_the_means():
    runs = _runs({"content:text": 0.30, "early-fusion": 0.33})
    summary = summarise(runs)
    gain = fusion_gain(summary, MODALITIES)
    assert gain.rows[0].p_value is None and gain.rows[0].earns_place
    assert fusion_gain(summary, ["text"]) is None  # one modality: nothing is fused
    only_single = _runs({"content:text": 0.3, "content:audio": 0.1})
    assert fusion_gain(summarise(only_single), MODALITIES, only_single) is None


def test_the_record_keeps_the_verdict_with_its_paired_tests(tmp_path):
    runs = _runs({"content:text": 0.30, "content:audio": 0.10, "attention": 0.36})
    summary = summarise(runs)
    gain = fusion_gain(summary, MODALITIES, runs)
    path = tmp_path / "r.json"
    path.write_text(LabRecord(runs, [summary], {}, [gain]).to_json())
    back = read_record(path)
    assert [f.to_dict() for f in back.fusion_gains()] == [gain.to_dict()]
    path.write_text(LabRecord(runs, [summary], {}).to_json())  # older file: recomputed, no paired test
    (again,) = read_record(path).fusion_gains()
    assert again.rows[0].p_value is None and again.rows[0].earns_place
    frame = again.frame()
    assert frame.loc["content:text", "verdict"] == "best single modality"
    assert frame.loc["attention", "verdict"] == "earns its place"


@pytest.mark.parametrize("bad", [[], "x", {"rows": "x"}, {"rows": [{"model": 1}]}, {"protocol": "p"}])
def test_a_damaged_record_is_refused_clearly(bad):
    with pytest.raises(RecsysError):
        FusionGain.from_dict(bad)


def test_modality_subsets_name_what_a_model_sees():
    assert modality_subset("attention@text+audio") == ["text", "audio"]
    assert modality_subset("attention") is None
    assert is_single_modality("attention@text") and is_single_modality("content:text")
    assert not is_single_modality("attention@text+audio")
    assert is_multimodal("attention", 2) and is_multimodal("attention@text+audio", 3)
    assert not is_multimodal("attention", 1) and not is_multimodal("bpr", 3) and not is_multimodal("content:a", 3)
    for bad in ("attention@", "attention@a+a", "bpr@text"):
        with pytest.raises(RecsysError):
            modality_subset(bad)


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["protocol", "key", "single", "best_single", "rows", "reasons", "min_gain"]),
       value=_JSON, row_field=st.sampled_from(["model", "mean", "half", "gain", "p_value", "ablation",
                                               "ablation_gain", "earns_place"]))
def test_a_hand_edited_record_loads_whole_or_not_at_all(field, value, row_field):
    """A results file's fusion verdict, any field replaced by any JSON value: either a RecsysError, or a
    record whose text and table can be shown."""
    good = FusionGain("given", "recall@20", {"content:text": [0.3, 0.01]}, "content:text",
                      [FusionRow("late-fusion", 0.31, 0.01, 0.03, 0.2, None, None, False)], ["r"]).to_dict()
    for damaged in ({**good, field: value}, {**good, "rows": [{**good["rows"][0], row_field: value}]}):
        try:
            gain = FusionGain.from_dict(damaged)
        except RecsysError:
            continue
        assert gain.lines() and not gain.frame().empty


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab:@+ -_.", max_size=14) | st.text(max_size=14))
def test_any_model_name_parses_or_is_refused_clearly(name):
    from recsys.lab.registry import spec_for

    try:
        subset = modality_subset(name)
        spec_for(name)
    except RecsysError:
        return
    assert subset is None or (subset and all(isinstance(m, str) and m for m in subset))
