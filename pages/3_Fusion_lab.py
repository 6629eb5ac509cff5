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
METRICS = ("recall", "ndcg", "precision", "map", "coverage", "diversity")


@st.cache_data(show_spinner=False)
def _dataset_modalities(folder: str, fmt: str) -> list[str]:
    from recsys.datasets import load_dataset

    return load_dataset(folder, fmt).modalities


@st.cache_data(show_spinner=False, max_entries=16)
def _run(folder: str, fmt: str, protocol: str, models: tuple[str, ...], seed: int) -> dict:
    """Evaluate once per distinct input; the JSON-ready dict is what Streamlit caches."""
    from recsys.datasets import load_dataset
    from recsys.lab.evaluate import evaluate

    return evaluate(load_dataset(folder, fmt), protocol, list(models), seed=seed).to_dict()


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
    from recsys.lab.protocols import PROTOCOLS
    from recsys.lab.registry import default_models

    folder = st.sidebar.text_input("Dataset folder", value=str(SHARED / "datasets" / "lfm2k"), key="dataset_dir")
    fmt = st.sidebar.selectbox("Format", ["mmrec", "recbole"], key="dataset_format")
    protocols = st.sidebar.multiselect("Protocols", PROTOCOLS, default=["given", "cold-items"], key="protocols")
    modalities = _dataset_modalities(folder, fmt)
    available = default_models(modalities)
    models = st.sidebar.multiselect("Models", available, default=available, key="models")
    seed = int(st.sidebar.number_input("Seed", value=0, step=1, key="seed"))
    if st.sidebar.button("Run", type="primary", key="run") and models:
        runs = []
        for protocol in protocols:
            with st.spinner(f"Fitting {len(models)} models under the {protocol} protocol..."):
                runs.append(_run(folder, fmt, protocol, tuple(models), seed))
        st.session_state["lab_runs"] = runs
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
            (st.success if "PASS" in line else st.warning)(line)


main()
