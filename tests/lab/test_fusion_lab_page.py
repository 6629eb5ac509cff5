"""The Fusion lab page: opens on the shipped lfm2k results (with where they came from), error bars
and n.s. marks, the quick preset, downloads, and a page that still opens when the shipped file is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "pages" / "3_Fusion_lab.py"


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(PAGE), default_timeout=120)


def _error_bars(chart) -> bool:
    return all("array" in (trace.get("error_y") or {}) for trace in json.loads(chart.proto.spec)["data"])


def test_page_opens_with_the_shipped_results():
    at = _app()
    at.run()
    assert not at.exception, at.exception
    source = next(c.value for c in at.caption if c.value.startswith("**Shipped results"))
    assert "made by `" in source and "benchmarks/lfm2k.py" in source and "seed(s): 0, 1, 2" in source
    assert "commit " in source
    assert at.main.multiselect[0].value == ["lfm2k / given", "lfm2k / cold-items"]
    assert _error_bars(at.get("plotly_chart")[0])  # the Compare tab's bar chart comes first
    tables = [t.value for t in at.dataframe]
    assert len(tables) >= 2
    verdicts = {v for t in tables if "vs best" in t for v in t["vs best"]}
    assert "best" in verdicts and verdicts <= {"best", "sig.", "n.s.", ""}
    assert {b.key for b in at.get("download_button")} == {"download_json", "download_csv"}
    # The fusion tab: each protocol's verdict, its table with the single modalities, and the reasons.
    verdicts = [w.value for w in at.warning if w.value.startswith("**") and "best single modality" in w.value]
    assert len(verdicts) == 2 and all("no fusion beats" in v for v in verdicts)
    fusion = [t for t in tables if "vs own ablation" in t]
    assert len(fusion) == 2 and "attention@all-MiniLM-L6-v2" in fusion[1].index
    assert any("learned attention puts" in m.value for m in at.markdown)


def test_quick_preset_and_all_models(two_clusters, tmp_path):
    at = _app()
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(two_clusters.write_mmrec(tmp_path / "toy"))
    at.run()
    assert not at.exception, at.exception
    assert any("press *Run*" in i.value for i in at.info)
    assert any(c.value.startswith("**Shipped results") for c in at.caption)  # no run yet: the shipped ones
    everything = at.multiselect(key="models").options
    assert at.multiselect(key="models").value == everything
    at.button(key="preset_quick").click().run()
    assert at.multiselect(key="models").value == ["popularity", "ease", "freedom"]
    at.button(key="preset_all").click().run()
    assert at.multiselect(key="models").value == everything


@pytest.fixture
def progress_texts(monkeypatch) -> list:
    """Every text a progress bar shows during the test."""
    from streamlit.elements.progress import ProgressMixin

    texts, real = [], ProgressMixin.progress

    def progress(self, value, text=None):
        texts.append(text)
        return real(self, value, text)

    monkeypatch.setattr(ProgressMixin, "progress", progress)
    return texts


def test_a_run_over_two_seeds_shows_progress_error_bars_tests_and_downloads(two_clusters, tmp_path, progress_texts):
    texts = progress_texts
    at = _app()
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(two_clusters.write_mmrec(tmp_path / "toy"))
    at.run()
    at.multiselect(key="models").set_value(["popularity", "bpr"])
    at.number_input(key="seeds").set_value(2)
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    # seed j of n, model i of n, the epoch and the validation recall, while the run goes
    assert any(t.startswith("given, seed 1 (2 of 2): model 2 of 2: bpr, epoch ") and "validation recall" in t
               for t in texts)
    assert any(t.startswith("cold-items, seed 0 (1 of 2): model 1 of 2: popularity") for t in texts)
    assert any(c.value.startswith("**Your run in this session") and "2 seed(s): 0, 1" in c.value for c in at.caption)
    assert at.main.multiselect[0].value == ["toy / given", "toy / cold-items"]
    assert _error_bars(at.get("plotly_chart")[0])
    given = at.dataframe[0].value
    assert "best" in set(given["vs best"]) and set(given["vs best"]) <= {"best", "sig.", "n.s."}
    assert {b.key for b in at.get("download_button")} == {"download_json", "download_csv"}


def test_a_run_can_tune_on_validation_first_and_judges_fusion(two_clusters, tmp_path, progress_texts):
    texts = progress_texts
    at = _app()
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(two_clusters.write_mmrec(tmp_path / "toy"))
    at.run()
    at.multiselect(key="models").set_value(["itemknn", "content:text", "content:audio", "late-fusion"])
    at.number_input(key="search").set_value(30)
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    assert any(t.startswith("given: tuning itemknn on validation: ") for t in texts if t)
    fusion = [t.value for t in at.dataframe if "vs own ablation" in t.value]
    assert fusion and "late-fusion" in fusion[0].index and not fusion[0]["p"].isna().all()  # paired test kept
    assert any(m.value.startswith("**given**") for m in [*at.success, *at.warning])


@pytest.mark.parametrize("content", [None, b"{broken", b'{"format": "recsys-lab-results/1", "runs": []}'])
def test_page_still_opens_without_good_shipped_results(content, tmp_path, monkeypatch, two_clusters):
    from recsys.lab import record

    shipped = tmp_path / "lfm2k-results.json"
    if content is not None:
        shipped.write_bytes(content)
    monkeypatch.setattr(record, "SHIPPED_RESULTS", shipped)
    at = _app()
    at.run()
    assert not at.exception, at.exception
    assert at.info or at.error  # load mode: says what is wrong with the file
    at = _app()
    at.session_state["mode"] = "Run an evaluation"
    at.session_state["dataset_dir"] = str(two_clusters.write_mmrec(tmp_path / "toy"))
    at.run()
    assert not at.exception, at.exception
    assert any("cannot be shown" in w.value and "Regenerate them" in w.value for w in at.warning)
    assert at.button(key="run")  # a run can still be started
