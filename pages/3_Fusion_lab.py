"""Fusion lab: which fusion strategy recommends best on real interactions, warm and cold.

A thin view: evaluation lives in ``recsys.lab.evaluate`` and ``recsys.lab.stats`` (seeds, intervals,
paired tests), results files in ``recsys.lab.record``, data shaping and figures in ``recsys.lab.report``.
Until the visitor runs an evaluation, the page shows the shipped lfm2k results and says what made them.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from recsys.errors import RecsysError
from recsys.lab import report
from recsys.lab.record import SHIPPED_RESULTS, LabRecord, read_record, shipped_record

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECSYS_SHARED_DIR", ROOT.parent / "shared"))
METRICS = ("recall", "ndcg", "precision", "map", "mrr", "hit", "coverage", "diversity")


@st.cache_data(show_spinner=False)
def _dataset_info(folder: str, fmt: str) -> dict:
    """Modalities, the protocols the dataset supports and its default protocol."""
    from recsys.datasets import load_dataset
    from recsys.lab.protocols import applicable_protocols, default_protocol

    ds = load_dataset(folder, fmt)
    return {
        "modalities": ds.modalities,
        "protocols": applicable_protocols(ds),
        "default": default_protocol(ds),
    }


def _run(settings: dict, protocol: str, bar) -> dict:
    """Evaluate one protocol over the chosen seeds, drawing seed-, model- and epoch-level progress on ``bar``.

    Kept per session by its settings (not ``st.cache_data``: the progress bar must be drawn live).
    The summary is made here, while the per-user figures its paired test needs are in memory.
    """
    from recsys.datasets import load_dataset
    from recsys.lab.filters import Filters
    from recsys.lab.fusiongain import fusion_gain
    from recsys.lab.search import search_models
    from recsys.lab.stats import evaluate_seeds, seed_range

    cache = st.session_state.setdefault("lab_cache", {})
    key = (protocol, *sorted((k, str(v)) for k, v in settings.items()))
    if key not in cache:
        ds = load_dataset(settings["folder"], settings["fmt"])
        models, filters = list(settings["models"]), Filters(settings["min_rating"], settings["k_core"] or None)
        searched = None
        if settings["search"]:
            searched = search_models(
                ds,
                protocol,
                models,
                settings["seed"],
                settings["search"],
                filters=filters,
                on_trial=lambda name, t: bar.progress(0.0, text=f"{protocol}: tuning {name} on validation: {t.line()}"),
            )
        runs, summary = evaluate_seeds(
            ds,
            protocol,
            models,
            seed_range(settings["seed"], settings["seeds"]),
            mask_valid=settings["mask_valid"],
            refit=settings["refit"],
            filters=filters,
            reference_check=settings["reference_check"],
            on_seed_progress=lambda p: bar.progress(p.fraction, text=p.describe()),
            searched=searched,
        )
        gain = fusion_gain(summary, ds.modalities, runs)  # here, while the paired tests' figures are in memory
        cache[key] = {
            "runs": [r.to_dict() for r in runs],
            "summary": summary.to_dict(),
            "fusion": gain.to_dict() if gain is not None else None,
        }
    return cache[key]


@st.cache_data(show_spinner=False, max_entries=4)
def _read_shipped(path: str, stamp: tuple[int, int]) -> tuple[LabRecord | None, str]:
    """Parsed once per version of the file (``stamp``: its mtime and size), not on every rerun."""
    return shipped_record(path)


def _shipped() -> LabRecord:
    """The shipped results, or a message and a stop when they cannot be read (the page still opens)."""
    try:
        info = SHIPPED_RESULTS.stat()
        stamp = (info.st_mtime_ns, info.st_size)
    except OSError:
        stamp = (0, -1)
    record, problem = _read_shipped(str(SHIPPED_RESULTS), stamp)
    if record is None:
        st.warning(problem)
        st.stop()
    st.session_state["lab_source"] = f"Shipped results (`{SHIPPED_RESULTS.name}`)"
    return record


def _load_section() -> LabRecord:
    path = st.sidebar.text_input("Results JSON", value=str(SHIPPED_RESULTS), key="results_path")
    upload = st.sidebar.file_uploader("...or upload a results JSON", type="json", key="results_upload")
    if upload is None and not Path(path).is_file():
        st.info(
            f"No results file at `{path}`. The shipped results are `data/lab/lfm2k-results.json` (the README "
            "says how to remake them); `python benchmarks/lfm2k.py` writes `artifacts/lfm2k_results.json`. "
            "Upload a file, or switch to *Run an evaluation*."
        )
        st.stop()
    if upload is not None:
        st.session_state["lab_source"] = f"Uploaded `{upload.name}`"
    else:
        shipped = Path(path).resolve() == SHIPPED_RESULTS.resolve()
        st.session_state["lab_source"] = f"Shipped results (`{Path(path).name}`)" if shipped else f"`{path}`"
    return read_record(upload.getvalue() if upload is not None else path)


def _set_models(names: list[str]) -> None:
    st.session_state["models"] = list(names)


def _model_picker(available: list[str], quick: list[str]) -> list[str]:
    """The model multiselect, with one-click presets: the quick ~3-model run and every model."""
    chosen = st.session_state.get("models")
    # a new dataset offers other models: keep the ones it has (all of them on a first visit)
    st.session_state["models"] = available if chosen is None else [m for m in chosen if m in available]
    c1, c2 = st.sidebar.columns(2)
    c1.button(
        f"Quick ({len(quick)} models)",
        key="preset_quick",
        on_click=_set_models,
        args=(quick,),
        help=f"{', '.join(quick)}: a floor, a closed-form baseline and a graph model; a fraction of the full "
        "selection's time.",
    )
    c2.button("All models", key="preset_all", on_click=_set_models, args=(available,))
    return st.sidebar.multiselect("Models", available, key="models")


def _run_section() -> LabRecord:
    from recsys.lab.registry import default_models, quick_models

    folder = st.sidebar.text_input("Dataset folder", value=str(SHARED / "datasets" / "lfm2k"), key="dataset_dir")
    fmt = st.sidebar.selectbox("Format", ["mmrec", "recbole"], key="dataset_format")
    try:
        info = _dataset_info(folder, fmt)
    except RecsysError as exc:
        st.error(str(exc))
        return _shipped()
    # keyed by what the dataset supports: a dataset without a given split gets fresh defaults
    protocols = st.sidebar.multiselect(
        "Protocols",
        info["protocols"],
        default=[p for p in (info["default"], "cold-items") if p in info["protocols"]],
        key="protocols:" + ",".join(info["protocols"]),
        help="The default is the dataset's own split when it has one (MMRec x_label), else a random split.",
    )
    available = default_models(info["modalities"])
    models = _model_picker(available, quick_models(info["modalities"]))
    settings = {
        "folder": folder,
        "fmt": fmt,
        "models": tuple(models),
        "seed": int(st.sidebar.number_input("First seed", value=0, min_value=0, step=1, key="seed")),
        "seeds": int(
            st.sidebar.number_input(
                "Seeds",
                value=1,
                min_value=1,
                max_value=10,
                step=1,
                key="seeds",
                help="Every model runs once per seed; 2 or more give 95% intervals (error bars). The benchmark uses 3.",
            )
        ),
        "mask_valid": st.sidebar.checkbox(
            "Mask validation items at test time (RecBole)", key="mask_valid", help="RecBole excludes them too."
        ),
        "refit": st.sidebar.checkbox("Refit on train + validation", key="refit"),
        "search": float(
            st.sidebar.number_input(
                "Tune on validation first (seconds per model)",
                value=0,
                min_value=0,
                step=10,
                key="search",
                help="0: the registered defaults. Otherwise each model tries settings from its search space on "
                "the first seed's validation split (test never read) and every seed runs the best one.",
            )
        ),
        "min_rating": st.sidebar.number_input("Minimum rating (empty: all)", value=None, key="min_rating"),
        "k_core": int(st.sidebar.number_input("k-core (0: off)", value=0, min_value=0, step=1, key="k_core")),
        "reference_check": st.sidebar.checkbox(
            "Sanity check: our BPR vs implicit's at the same hyper-parameters", key="reference_check"
        ),
    }
    if st.sidebar.button("Run", type="primary", key="run") and models:
        runs, errors = [], []
        for protocol in protocols:  # one protocol failing keeps the others' runs
            bar = st.progress(0.0, text=f"{protocol}: starting")
            try:
                runs.append(_run(settings, protocol, bar))
            except RecsysError as exc:
                errors.append(f"{protocol}: {exc}")
            bar.empty()
        st.session_state["lab_runs"], st.session_state["lab_errors"] = runs, errors
        st.session_state["lab_settings"] = {k: v for k, v in settings.items() if k != "folder"}
    for error in st.session_state.get("lab_errors", []):
        st.error(error)
    if not st.session_state.get("lab_runs"):
        st.info("Pick a dataset, protocols and models in the sidebar, then press *Run*. Until then, shipped results:")
        return _shipped()
    from recsys.lab.evaluate import Results
    from recsys.lab.fusiongain import FusionGain
    from recsys.lab.stats import SeedSummary

    done = st.session_state["lab_runs"]
    st.session_state["lab_source"] = "Your run in this session"
    record = LabRecord.from_runs(
        [Results.from_dict(r) for d in done for r in d["runs"]],
        [SeedSummary.from_dict(d["summary"]) for d in done],
        {"made_by": "pages/3_Fusion_lab.py", "settings": st.session_state.get("lab_settings", {})},
    )
    record.fusion = [FusionGain.from_dict(d["fusion"]) for d in done if d.get("fusion")]
    return record


def _downloads(record: LabRecord) -> None:
    """The shown runs as a results JSON (``save_results``' format) and their tables as CSV."""
    c1, c2 = st.columns(2)
    name = "-".join(dict.fromkeys(str(r.dataset.get("name", "lab")) for r in record.runs))
    c1.download_button(
        "Download the run (JSON)",
        record.to_json(),
        file_name=f"{name}-results.json",
        mime="application/json",
        key="download_json",
        help="Every seed's run, the summaries and what made them; the Fusion lab and `load_results` read it back.",
    )
    c2.download_button(
        "Download the tables (CSV)",
        report.summary_tables(record.summaries).to_csv(index=False),
        file_name=f"{name}-tables.csv",
        mime="text/csv",
        key="download_csv",
    )


def main() -> None:
    st.title("Fusion lab")
    st.caption(
        "Recommenders learnt from real interactions, compared per metric and cut-off K, on warm items "
        "and on cold-start items that no one interacted with during training."
    )
    mode = st.sidebar.radio("Results", ["Load a results file", "Run an evaluation"], key="mode")
    try:
        record = _load_section() if mode == "Load a results file" else _run_section()
    except RecsysError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(f"**{st.session_state.get('lab_source', 'Results')}**: {record.origin()}")

    labels = record.labels
    # no widget keys where the options depend on the loaded runs: new runs, fresh defaults
    chosen = st.multiselect("Runs", labels, default=labels)
    record = record.select(chosen)
    if not record.runs:
        st.stop()
    for s in record.summaries:  # every figure on this page carries its protocol
        users = next((r.split.get("test_users", "?") for r in record.runs if r.protocol == s.protocol), "?")
        st.caption(f"**{report.summary_label(s)}** - {s.description} - {users} test users - seeds {s.seeds}")
    for r in record.first_runs():
        for warning in r.warnings:
            st.warning(f"{report.run_label(r)}: {warning}")

    ks = sorted({k for r in record.runs for k in r.ks})
    c1, c2, c3 = st.columns(3)
    metric = c1.selectbox("Metric", METRICS, key="metric")
    k = c2.select_slider("K", options=ks, value=20 if 20 in ks else ks[0])
    segments = sorted({s for r in record.runs for s in r.segments}, key=["all", "warm", "cold"].index)
    segment = c3.selectbox("Items", segments)
    frame = report.summary_frame(record.summaries)
    _downloads(record)

    tabs = st.tabs(
        ["Compare", "By K", "Warm vs cold", "Modality weights", "Fusion vs one modality", "Tables", "Sanity checks"]
    )
    with tabs[0]:
        st.plotly_chart(report.bar_figure(frame, metric, k, segment), key="bar")
        st.caption(
            "Bars: mean over the seeds, error bars: 95% t-interval (none from a single seed). Hover a bar: "
            "*n.s.* = not significantly different from the best model (paired per-user Wilcoxon test, p >= 0.05)."
        )
    with tabs[1]:
        st.plotly_chart(report.line_figure(frame, metric, segment), key="line")
    with tabs[2]:
        wc = report.warm_cold_frame(frame, metric, k)
        if wc["items"].nunique() < 2:
            st.info("Warm vs cold needs a run on warm items and a cold-items run (or a split with both).")
        st.plotly_chart(report.warm_cold_figure(wc, metric, k), key="warm_cold")
    with tabs[3]:
        for r in record.first_runs():
            st.subheader(f"{report.run_label(r)} (seed {r.seed})")
            dist = report.weight_distributions(r)
            if dist.empty:
                st.info("No learned per-user or per-item modality weights in this run (attention fusion).")
            else:
                st.plotly_chart(report.weights_figure(dist), key=f"dist_{report.run_label(r)}")
            fixed = report.fixed_weights(r)
            if not fixed.empty:
                st.plotly_chart(report.fixed_weights_figure(fixed), key=f"fixed_{report.run_label(r)}")
    with tabs[4]:
        gains = record.fusion_gains()
        if not gains:
            st.info("This run has no multimodal model beside a single-modality one (content:<modality>) to compare.")
        for gain in gains:
            show = st.success if any(r.earns_place for r in gain.rows) else st.warning
            show(f"**{gain.protocol}**: {gain.verdict}.")
            st.dataframe(
                gain.frame().round(4),
                column_config={"p": st.column_config.NumberColumn(format="%.2g")},
                key=f"fusion_{gain.protocol}",
            )
            st.markdown("\n".join(f"- {reason}" for reason in gain.reasons))
        st.caption(
            "A multimodal model earns its place when it beats the best single-modality result by at least 5% "
            "(and the paired per-user test agrees, where the run kept it). `vs own ablation`: against the same "
            "model run on the best modality alone (`model@modality` in the model list)."
        )
    with tabs[5]:
        for s in record.summaries:
            label = report.summary_label(s)
            for seg in dict.fromkeys(seg for m in s.models for seg in m.metrics):
                st.markdown(f"**{label}** - {seg} items - mean and 95% half-width (`+-`) over seeds {s.seeds}")
                if seg == "all":
                    st.caption(s.test)
                table = s.frame(seg)
                p_cols = [c for c in table if c.startswith("p(")]  # tiny p-values: never rounded to 0
                fmt = {c: st.column_config.NumberColumn(format="%.2g") for c in p_cols}
                shown = table.round(dict.fromkeys(table.columns.difference(p_cols), 4))
                st.dataframe(shown, column_config=fmt, key=f"t_{s.protocol}_{seg}")
    with tabs[6]:
        firsts = record.first_runs()
        for line in report.sanity_checks(firsts, k=k):
            show = st.success if "PASS:" in line else st.info if "n.a.:" in line else st.warning
            show(line)
        for r in firsts:
            st.caption(f"{report.run_label(r)} (seed {r.seed}): {report.provenance_line(r)}")


main()
