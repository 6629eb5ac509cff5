"""Shaping lab results for people: tidy frames, plotly figures and sanity checks.

The Fusion lab page and the benchmark script are thin views over these functions, so all the
logic (which segment counts as warm or cold, where a model keeps its learned modality weights)
is testable without Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.lab.evaluate import Results

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from recsys.lab.stats import SeedSummary

KINDS = {
    "random": "baseline",
    "popularity": "baseline",
    "itemknn": "collaborative",
    "bpr": "collaborative",
    "ease": "collaborative",
    "lightgcn": "collaborative",
    "implicit-bpr": "collaborative (reference)",
    "implicit-als": "collaborative (reference)",
    "content": "single modality",
    "early-fusion": "fusion",
    "early-fusion-uniform": "fusion",
    "late-fusion": "fusion",
    "attention": "fusion",
    "hybrid-bpr": "hybrid",
    "hybrid-bce": "hybrid",
    "freedom": "hybrid",
    "lattice": "hybrid",
}


def model_kind(name: str) -> str:
    """The model's family kind; a feature model restricted to one modality (``attention@text``) is
    a single-modality result, whatever its family."""
    base, _, subset = name.partition("@")
    if subset and "+" not in subset:
        return "single modality"
    return KINDS.get(base.split(":", 1)[0], "other")


def run_label(run: Results) -> str:
    return f"{run.dataset.get('name', '?')} / {run.protocol}"


def summary_label(summary: SeedSummary) -> str:
    """The label of the runs a seed summary covers (:func:`run_label` of each of its seeds' runs)."""
    return f"{summary.dataset} / {summary.protocol}"


def metrics_frame(runs: Sequence[Results]) -> pd.DataFrame:
    """One row per (run, segment, model, metric, K): the long format every chart starts from."""
    rows = []
    for run in runs:
        for m in run.models:
            for segment, values in m.metrics.items():
                for key, value in values.items():
                    metric, _, k = key.partition("@")
                    if not k:
                        continue
                    rows.append(
                        {
                            "run": run_label(run),
                            "protocol": run.protocol,
                            "segment": segment,
                            "model": m.name,
                            "kind": model_kind(m.name),
                            "metric": metric,
                            "k": int(k),
                            "value": value,
                            "fit_seconds": m.fit_seconds,
                        }
                    )
    cols = ["run", "protocol", "segment", "model", "kind", "metric", "k", "value", "fit_seconds"]
    return pd.DataFrame(rows, columns=cols)


def wide_table(run: Results, segment: str = "all") -> pd.DataFrame:
    """Model x "metric@K" table (plus fit seconds) for one run and segment."""
    rows = {
        m.name: {k: v for k, v in m.metrics[segment].items() if "@" in k} | {"fit_s": m.fit_seconds}
        for m in run.models
        if segment in m.metrics
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def summary_frame(summaries: Sequence[SeedSummary]) -> pd.DataFrame:
    """:func:`metrics_frame`'s long format over seeds: ``value`` is the mean, ``half`` the 95%
    interval's half-width (NaN from one seed), ``verdict`` the paired test against the best."""
    rows = []
    for s in summaries:
        for m in s.models:
            verdict = "best" if m.name == s.best else m.verdict
            for segment, values in m.metrics.items():
                for key, (mean, half) in values.items():
                    metric, _, k = key.partition("@")
                    rows.append(
                        {
                            "run": summary_label(s),
                            "protocol": s.protocol,
                            "segment": segment,
                            "model": m.name,
                            "kind": model_kind(m.name),
                            "metric": metric,
                            "k": int(k),
                            "value": np.nan if mean is None else mean,
                            "half": np.nan if half is None else half,
                            "seeds": len(s.seeds),
                            "verdict": verdict,
                            "fit_seconds": m.fit_seconds,
                        }
                    )
    cols = ["run", "protocol", "segment", "model", "kind", "metric", "k", "value", "half", "seeds", "verdict"]
    return pd.DataFrame(rows, columns=[*cols, "fit_seconds"])


def summary_tables(summaries: Sequence[SeedSummary]) -> pd.DataFrame:
    """Every summary's table (:meth:`SeedSummary.frame`) per segment, stacked with its run and segment:
    the page's CSV download."""
    parts = []
    for s in summaries:
        for segment in dict.fromkeys(seg for m in s.models for seg in m.metrics):
            frame = s.frame(segment).rename_axis("model").reset_index()
            frame.insert(0, "segment", segment)
            frame.insert(0, "seeds", " ".join(map(str, s.seeds)))
            frame.insert(0, "run", summary_label(s))
            parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def warm_cold_frame(frame: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    """Per model, the metric on warm items and on cold items, from whichever runs measure them.

    ``frame`` is :func:`metrics_frame` or :func:`summary_frame` (its ``half`` column is kept). A run
    with ``warm``/``cold`` segments gives both; otherwise a ``cold-items`` run's ``all`` segment is
    the cold figure and any other protocol's ``all`` segment the warm one.
    """
    cols = ["model", "kind", "items", "protocol", "value", *(["half"] if "half" in frame else [])]
    sub = frame[(frame.metric == metric) & (frame.k == k)]
    parts = []
    for (_run, _model), rows in sub.groupby(["run", "model"], sort=False):
        split = rows[rows.segment.isin(["warm", "cold"])]
        if set(split.segment) == {"warm", "cold"}:
            parts.append(split.assign(items=split.segment))
        else:
            whole = rows[rows.segment == "all"]
            parts.append(whole.assign(items=np.where(whole.protocol == "cold-items", "cold", "warm")))
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def _error_bars(frame: pd.DataFrame) -> dict[str, str]:
    """``error_y`` for plotly express when the frame carries interval half-widths."""
    return {"error_y": "half"} if "half" in frame and frame["half"].notna().any() else {}


# ------------------------------------------------------------------------- learned modality weights


def _walk(obj: object, path: str = "") -> Iterator[tuple[str, object, dict | None]]:
    """Every (path, value, parent dict) inside nested dicts."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, value, obj
            yield from _walk(value, sub)


def _numbers(value: object) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.size and np.isfinite(arr).all() else None


def weight_distributions(run: Results) -> pd.DataFrame:
    """Learned per-user / per-item modality weights found in the models' ``extra_info``.

    Recognised shapes (the models own their ``extra_info``; this reads what is there):
    ``{modality: [w per user or item, ...]}`` and an ``(n, M)`` matrix next to a ``modalities``
    list of length M. The group is the key path (e.g. ``user_weights``).
    """
    modalities = set(run.dataset.get("modalities", {}) or {})
    rows = []
    for m in run.models:
        for path, value, parent in _walk(m.extra_info):
            if isinstance(value, dict) and value and modalities and set(value) <= modalities:
                arrays = {mod: _numbers(v) for mod, v in value.items()}
                if all(a is not None and a.ndim == 1 and a.size > 1 for a in arrays.values()):
                    for mod, arr in arrays.items():
                        rows += [{"model": m.name, "group": path, "modality": mod, "weight": w} for w in arr]
            elif isinstance(value, list) and parent is not None and not path.endswith("modalities"):
                mods = parent.get("modalities")
                arr = _numbers(value)
                if isinstance(mods, list) and arr is not None and arr.ndim == 2 and arr.shape[1] == len(mods):
                    for j, mod in enumerate(mods):
                        rows += [{"model": m.name, "group": path, "modality": str(mod), "weight": w} for w in arr[:, j]]
    return pd.DataFrame(rows, columns=["model", "group", "modality", "weight"])


def fixed_weights(run: Results) -> pd.DataFrame:
    """Single modality weight vectors (e.g. late fusion's tuned weights) from ``modality_weights``."""
    rows = []
    for m in run.models:
        weights = m.extra_info.get("modality_weights")
        if isinstance(weights, dict) and all(isinstance(v, (int, float)) for v in weights.values()):
            rows += [{"model": m.name, "modality": k, "weight": float(v)} for k, v in weights.items()]
    return pd.DataFrame(rows, columns=["model", "modality", "weight"])


# ------------------------------------------------------------------------------------------ figures


def bar_figure(frame: pd.DataFrame, metric: str, k: int, segment: str = "all") -> go.Figure:
    """Models side by side on one metric at one K, one colour per kind of model, per run; from a
    :func:`summary_frame`, the bars are seed means with 95% interval error bars, and models not
    significantly different from the best say ``n.s.`` when hovered."""
    import plotly.express as px

    sub = frame[(frame.metric == metric) & (frame.k == k) & (frame.segment == segment)]
    sub = sub.sort_values("value", ascending=False)
    seeds = f", mean of {sub.seeds.max()} seeds, 95% CI" if "seeds" in sub and len(sub) and sub.seeds.max() > 1 else ""
    fig = px.bar(
        sub,
        x="model",
        y="value",
        color="kind",
        facet_col="run",
        text_auto=".3f",
        hover_data=[c for c in ("verdict", "half") if c in sub],
        title=f"{metric}@{k} ({segment} items{seeds})",
        **_error_bars(sub),
    )
    fig.update_layout(yaxis_title=f"{metric}@{k}", xaxis_title="")
    fig.update_xaxes(matches=None, categoryorder="total descending")
    return fig


def line_figure(frame: pd.DataFrame, metric: str, segment: str = "all") -> go.Figure:
    """One line per model over the cut-offs K."""
    import plotly.express as px

    sub = frame[(frame.metric == metric) & (frame.segment == segment)].sort_values("k")
    fig = px.line(
        sub,
        x="k",
        y="value",
        color="model",
        line_dash="kind",
        facet_col="run",
        markers=True,
        title=f"{metric} by cut-off K ({segment} items)",
        **_error_bars(sub),
    )
    fig.update_layout(yaxis_title=metric, xaxis_title="K")
    return fig


def warm_cold_figure(frame: pd.DataFrame, metric: str, k: int) -> go.Figure:
    import plotly.express as px

    fig = px.bar(
        frame,
        x="model",
        y="value",
        color="items",
        barmode="group",
        hover_data=["protocol"],
        color_discrete_map={"warm": "#d95f02", "cold": "#1b9e77"},
        title=f"{metric}@{k}: warm items vs cold-start items",
        **_error_bars(frame),
    )
    fig.update_layout(yaxis_title=f"{metric}@{k}", xaxis_title="")
    return fig


def weights_figure(frame: pd.DataFrame) -> go.Figure:
    """Distribution (box + points) of learned per-user/per-item weights for each modality."""
    import plotly.express as px

    fig = px.box(
        frame,
        x="modality",
        y="weight",
        color="model",
        facet_col="group",
        title="Learned modality weights (softmax, one value per user or item)",
    )
    fig.update_yaxes(range=[0, 1])
    return fig


def fixed_weights_figure(frame: pd.DataFrame) -> go.Figure:
    import plotly.express as px

    fig = px.bar(
        frame,
        x="model",
        y="weight",
        color="modality",
        barmode="stack",
        title="Modality weights of the fusion models (tuned on validation unless uniform)",
    )
    fig.update_yaxes(range=[0, 1])
    return fig


# ------------------------------------------------------------------------------------ sanity checks


def _value(run: Results, model: str, key: str, segment: str = "all") -> float | None:
    m = next((x for x in run.models if x.name == model), None)
    return None if m is None else m.metrics.get(segment, {}).get(key)


def _best(run: Results, kinds: Sequence[str], key: str) -> tuple[str, float] | None:
    vals = [(m.name, m.metrics["all"].get(key, float("nan"))) for m in run.models if model_kind(m.name) in kinds]
    vals = [v for v in vals if v[1] is not None and np.isfinite(v[1])]
    return max(vals, key=lambda v: v[1]) if vals else None


def provenance_line(run: Results) -> str:
    """``recsys 0.1.0, torch 2.14.1, numpy 2.4.6, commit adb85c1 (+ local changes)`` from the run's record."""
    env = run.environment or {}
    versions = env.get("versions") or {}
    parts = [f"{name} {versions[name]}" for name in ("recsys", "torch", "numpy") if name in versions]
    git = env.get("git") or {}
    if git.get("commit"):
        parts.append(f"commit {str(git['commit'])[:10]}" + (" (+ local changes)" if git.get("dirty") else ""))
    return ", ".join(parts) if parts else "no versions recorded (results from an older release)"


def _relative(value: float, base: float) -> str:
    return f"{(value - base) / base:+.1%}" if base else "base is 0"


def reference_lines(run: Results, k: int = 20) -> list[str]:
    """Our BPR against implicit's at matched hyper-parameters (the run's ``reference`` pair), if it has one."""
    from recsys.lab.sanity import OURS, REFERENCE, TOLERANCE, matched_settings

    key = f"recall@{k}" if k in run.ks else f"recall@{run.ks[0]}"
    pair = {m.name: m.metrics.get("all", {}).get(key) for m in run.reference}
    ours, ref = pair.get(OURS), pair.get(REFERENCE)
    if ours is None or ref is None:
        return []
    verdict = "PASS" if ours >= (1 - TOLERANCE) * ref else "FAIL"
    return [
        f"[{run_label(run)}] {verdict}: our bpr {key} {ours:.4f} vs implicit's bpr {ref:.4f} ({_relative(ours, ref)}) "
        f"at the same hyper-parameters ({matched_settings()})"
    ]


def _hyper_parameters(run: Results, model: str) -> str:
    info = next((m.extra_info for m in run.models if m.name == model), {}) or {}
    if model == "bpr":
        config = info.get("config") or {}
        return f"dim {info.get('dim')}, L2 {info.get('reg')}, {config.get('epochs')} epochs max, lr {config.get('lr')}"
    params = info.get("params") or {}
    return (
        f"{params.get('factors')} factors, L2 {params.get('regularization')}, "
        f"{params.get('iterations')} iterations, lr {params.get('learning_rate')}"
    )


def sanity_checks(runs: Sequence[Results], k: int = 20) -> list[str]:
    """The acceptance checks, worded as findings (PASS/FAIL/n.a.) with the figures behind them.

    Only like is compared with like: our BPR with implicit's at matched hyper-parameters, modality
    fusion with the best single modality, a CF + content hybrid with the best of its parts.
    """
    key = f"recall@{k}"
    lines = []
    for run in runs:
        tag = f"[{run_label(run)}]"
        if run.protocol != "cold-items":
            pop = _value(run, "popularity", key)
            for bpr in ("bpr", "implicit-bpr"):
                val = _value(run, bpr, key)
                if pop is not None and val is not None:
                    verdict = "PASS" if pop < val else "FAIL"
                    lines.append(f"{tag} {verdict}: popularity {key} {pop:.4f} < {bpr} {val:.4f}")
            matched = reference_lines(run, k)
            lines += matched
            if not matched and _value(run, "bpr", key) is not None and _value(run, "implicit-bpr", key) is not None:
                lines.append(
                    f"{tag} n.a.: bpr ({_hyper_parameters(run, 'bpr')}) and implicit-bpr "
                    f"({_hyper_parameters(run, 'implicit-bpr')}) run at different hyper-parameters, so their "
                    "rows do not check our implementation; run with the reference check (--reference-check)"
                )
        else:
            base = [v for v in (_value(run, "popularity", key), _value(run, "random", key)) if v is not None]
            for hybrid in ("hybrid-bpr", "hybrid-bce"):
                val = _value(run, hybrid, key)
                if val is not None and base:
                    verdict = "PASS" if val > 2 * max(base) else "FAIL"
                    lines.append(
                        f"{tag} {verdict}: {hybrid} {key} {val:.4f} vs best of popularity/random "
                        f"{max(base):.4f} (wide margin = more than 2x)"
                    )
        single = _best(run, ("single modality",), key)
        fused = _best(run, ("fusion",), key)
        if fused and single:
            verdict = "PASS" if fused[1] > single[1] else "FAIL"
            lines.append(
                f"{tag} {verdict}: best modality fusion {fused[0]} {key} {fused[1]:.4f} vs best single modality "
                f"{single[0]} {single[1]:.4f} ({_relative(fused[1], single[1])})"
            )
        hybrid = _best(run, ("hybrid",), key)
        parts = [p for p in (single, _best(run, ("collaborative",), key)) if p]
        if hybrid and parts:
            part = max(parts, key=lambda v: v[1])
            verdict = "PASS" if hybrid[1] > part[1] else "FAIL"
            lines.append(
                f"{tag} {verdict}: best CF + content hybrid {hybrid[0]} {key} {hybrid[1]:.4f} vs the best of "
                f"its parts (CF alone or one modality's content) {part[0]} {part[1]:.4f}"
            )
    return lines
