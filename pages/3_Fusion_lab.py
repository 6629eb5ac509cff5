"""Fusion lab: which fusion strategy recommends best on real interactions, warm and cold.

A thin view: evaluation lives in ``recsys.lab.evaluate``, data shaping and figures in
``recsys.lab.report``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from recsys.errors import RecsysError
from recsys.lab import report
from recsys.lab.evaluate import Results, load_results

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECSYS_SHARED_DIR", ROOT.parent / "shared"))
DEFAULT_RESULTS = ROOT / "artifacts" / "lfm2k_results.json"
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
    """Evaluate one protocol, drawing model-by-model and epoch-by-epoch progress on ``bar``.

    Kept per session by its settings (not ``st.cache_data``: the progress bar must be drawn live).
    """
    from recsys.datasets import load_dataset
    from recsys.lab.evaluate import evaluate
    from recsys.lab.filters import Filters

    cache = st.session_state.setdefault("lab_cache", {})
    key = (protocol, *sorted((k, str(v)) for k, v in settings.items()))
    if key not in cache:
        ds = load_dataset(settings["folder"], settings["fmt"])
        results = evaluate(
            ds,
            protocol,
            list(settings["models"]),
            seed=settings["seed"],
            mask_valid=settings["mask_valid"],
            refit=settings["refit"],
            filters=Filters(settings["min_rating"], settings["k_core"] or None),
            reference_check=settings["reference_check"],
            on_progress=lambda ev: bar.progress(ev.fraction, text=f"{protocol}: {ev.describe()}"),
        )
        cache[key] = results.to_dict()
    return cache[key]


def _load_section() -> list[Results]:
    path = st.sidebar.text_input("Results JSON", value=str(DEFAULT_RESULTS), key="results_path")
    upload = st.sidebar.file_uploader("...or upload a results JSON", type="json", key="results_upload")
    source = upload.getvalue() if upload is not None else path
    if upload is None and not Path(path).is_file():
        st.info(
            f"No results file at `{path}`. Run `python benchmarks/lfm2k.py` (writes "
            "`artifacts/lfm2k_results.json`), upload a file, or switch to *Run an evaluation*."
        )
        st.stop()
    return load_results(source)


def _run_section() -> list[Results]:
    from recsys.lab.registry import default_models

    folder = st.sidebar.text_input("Dataset folder", value=str(SHARED / "datasets" / "lfm2k"), key="dataset_dir")
    fmt = st.sidebar.selectbox("Format", ["mmrec", "recbole"], key="dataset_format")
    info = _dataset_info(folder, fmt)
    # keyed by what the dataset supports: a dataset without a given split gets fresh defaults
    protocols = st.sidebar.multiselect(
        "Protocols",
        info["protocols"],
        default=[p for p in (info["default"], "cold-items") if p in info["protocols"]],
        key="protocols:" + ",".join(info["protocols"]),
        help="The default is the dataset's own split when it has one (MMRec x_label), else a random split.",
    )
    available = default_models(info["modalities"])
    models = st.sidebar.multiselect("Models", available, default=available, key="models")
    settings = {
        "folder": folder,
        "fmt": fmt,
        "models": tuple(models),
        "seed": int(st.sidebar.number_input("Seed", value=0, min_value=0, step=1, key="seed")),
        "mask_valid": st.sidebar.checkbox(
            "Mask validation items at test time (RecBole)", key="mask_valid", help="RecBole excludes them too."
        ),
        "refit": st.sidebar.checkbox("Refit on train + validation", key="refit"),
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
    for error in st.session_state.get("lab_errors", []):
        st.error(error)
    if not st.session_state.get("lab_runs"):
        st.info("Pick a dataset, protocols and models in the sidebar, then press *Run*.")
        st.stop()
    return [Results.from_dict(r) for r in st.session_state["lab_runs"]]


def main() -> None:
    st.title("Fusion lab")
    st.caption(
        "Recommenders learnt from real interactions, compared per metric and cut-off K, on warm items "
        "and on cold-start items that no one interacted with during training."
    )
    mode = st.sidebar.radio("Results", ["Load a results file", "Run an evaluation"], key="mode")
    try:
        runs = _load_section() if mode == "Load a results file" else _run_section()
    except RecsysError as exc:
        st.error(str(exc))
        st.stop()
    if not runs:
        st.warning("The results file holds no runs.")
        st.stop()

    labels = [report.run_label(r) for r in runs]
    # no widget keys where the options depend on the loaded runs: new runs, fresh defaults
    chosen = st.multiselect("Runs", labels, default=labels)
    runs = [r for r, label in zip(runs, labels, strict=True) if label in chosen]
    if not runs:
        st.stop()
    for r in runs:  # every figure on this page carries its protocol
        st.caption(f"**{report.run_label(r)}** - {r.description} - {r.split.get('test_users', '?')} test users")
        for warning in r.warnings:
            st.warning(f"{report.run_label(r)}: {warning}")

    ks = sorted({k for r in runs for k in r.ks})
    c1, c2, c3 = st.columns(3)
    metric = c1.selectbox("Metric", METRICS, key="metric")
    k = c2.select_slider("K", options=ks, value=20 if 20 in ks else ks[0])
    segments = sorted({s for r in runs for s in r.segments}, key=["all", "warm", "cold"].index)
    segment = c3.selectbox("Items", segments)
    frame = report.metrics_frame(runs)

    tabs = st.tabs(["Compare", "By K", "Warm vs cold", "Modality weights", "Tables", "Sanity checks"])
    with tabs[0]:
        st.plotly_chart(report.bar_figure(frame, metric, k, segment), key="bar")
    with tabs[1]:
        st.plotly_chart(report.line_figure(frame, metric, segment), key="line")
    with tabs[2]:
        wc = report.warm_cold_frame(runs, metric, k)
        if wc["items"].nunique() < 2:
            st.info("Warm vs cold needs a run on warm items and a cold-items run (or a split with both).")
        st.plotly_chart(report.warm_cold_figure(wc, metric, k), key="warm_cold")
    with tabs[3]:
        for r in runs:
            st.subheader(report.run_label(r))
            dist = report.weight_distributions(r)
            if dist.empty:
                st.info("No learned per-user or per-item modality weights in this run (attention fusion).")
            else:
                st.plotly_chart(report.weights_figure(dist), key=f"dist_{report.run_label(r)}")
            fixed = report.fixed_weights(r)
            if not fixed.empty:
                st.plotly_chart(report.fixed_weights_figure(fixed), key=f"fixed_{report.run_label(r)}")
    with tabs[4]:
        for r in runs:
            for seg in r.segments:
                st.markdown(f"**{report.run_label(r)}** - {seg} items")
                st.dataframe(report.wide_table(r, seg).round(4), key=f"t_{r.protocol}_{seg}")
    with tabs[5]:
        for line in report.sanity_checks(runs, k=k):
            show = st.success if "PASS:" in line else st.info if "n.a.:" in line else st.warning
            show(line)
        for r in runs:
            st.caption(f"{report.run_label(r)}: {report.provenance_line(r)}")


main()
