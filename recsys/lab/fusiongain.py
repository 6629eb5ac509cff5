"""Does fusing modalities earn its place? Each multimodal model against the best single modality.

A fusion model is worth its cost only if it beats what one modality achieves alone. For every
model that reads item features and sees more than one modality, this compares its mean Recall@K
over the seeds with the best *single-modality* result of the same protocol: the content model of
each modality (``content:<m>``) and any run of a model on one modality (``<model>@<m>``, the
ablation that separates "the model is better" from "fusing helps"). A model earns its place
when it is at least :data:`MIN_GAIN` better, the paired per-user test says the gap is real, and
its modality weights (tuned or learned) do not sit on one modality: a model that puts 99% of its
weight on text is better for another reason than fusion.

Where none does, the reasons come from the same runs, not from a guess: how far each modality
alone trails the best one, where validation tuning put the fusion weights, and whether the model
on its best modality alone already reaches its multimodal figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from recsys.errors import InputError
from recsys.lab.registry import MODELS, modality_subset, split_name
from recsys.lab.stats import ALPHA, paired_p_value, per_user_mean

if TYPE_CHECKING:
    import pandas as pd

    from recsys.lab.evaluate import Results
    from recsys.lab.stats import SeedSummary

#: The margin over the best single modality a fusion must reach (relative, on the summary's key).
MIN_GAIN = 0.05
#: A tuned weight at or above this on one modality means the tuning switched the others off.
DOMINANT_WEIGHT = 0.9


@dataclass
class FusionRow:
    """One multimodal model against the best single modality (and its own one-modality ablation)."""

    model: str
    mean: float
    half: float
    gain: float  # relative to the best single modality
    p_value: float | None  # paired test against it (None without per-user figures)
    ablation: str | None = None  # the same model on the best modality alone, when it ran
    ablation_gain: float | None = None
    earns_place: bool = False


@dataclass
class FusionGain:
    """One protocol's verdict: the single modalities, each fusion model's row, and the reasons."""

    protocol: str
    key: str
    single: dict[str, list[float]]  # single-modality model -> [mean, half-width]
    best_single: str
    rows: list[FusionRow] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    min_gain: float = MIN_GAIN

    @property
    def verdict(self) -> str:
        winners = [r.model for r in self.rows if r.earns_place]
        if winners:
            return (
                f"{', '.join(winners)} beat{'s' if len(winners) == 1 else ''} the best single modality "
                f"({self.best_single}) by at least {self.min_gain:.0%} on {self.key}"
            )
        return f"no fusion beats the best single modality ({self.best_single}) by {self.min_gain:.0%} on {self.key}"

    def lines(self) -> list[str]:
        """The verdict, one line per model and the reasons, for the benchmark's output."""
        out = [f"[{self.protocol}] {self.verdict}"]
        for r in self.rows:
            p = "" if r.p_value is None else f", p {r.p_value:.2g}"
            ablation = "" if r.ablation is None else f"; vs {r.ablation} {r.ablation_gain:+.1%}"
            mark = "earns its place" if r.earns_place else "does not earn its place"
            out.append(
                f"  {r.model} {_pm(r.mean, r.half)}: {r.gain:+.1%} vs {self.best_single}{p}{ablation} -> {mark}"
            )
        out += [f"  why: {reason}" for reason in self.reasons]
        return out

    def frame(self) -> pd.DataFrame:
        """Models x (mean, +-, gain, p, ablation gain, verdict), single modalities first, for the page."""
        import pandas as pd

        rows = {
            name: {self.key: m, "+-": h, "vs best single": math.nan, "p": math.nan, "vs own ablation": math.nan,
                   "verdict": "best single modality" if name == self.best_single else "single modality"}
            for name, (m, h) in self.single.items()
        }
        for r in self.rows:
            rows[r.model] = {
                self.key: r.mean,
                "+-": r.half,
                "vs best single": r.gain,
                "p": math.nan if r.p_value is None else r.p_value,
                "vs own ablation": math.nan if r.ablation_gain is None else r.ablation_gain,
                "verdict": "earns its place" if r.earns_place else "does not earn its place",
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> FusionGain:
        """Back from :meth:`to_dict` (a results file's ``"fusion_gain"`` entry), every field checked:
        a damaged or hand-edited file gives an :class:`InputError`, never a page that fails later."""
        if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or not isinstance(d.get("single"), dict):
            raise InputError("Not a fusion-gain record (it needs rows and single-modality results).")
        try:
            rows = [_row(r) for r in d["rows"]]
            single = {_text(k): [_number(v[0]), _number(v[1])] for k, v in d["single"].items()}
            reasons = [_text(r) for r in d.get("reasons", [])]
            gain = cls(
                _text(d["protocol"]), _text(d["key"]), single, _text(d["best_single"]), rows, reasons,
                _number(d.get("min_gain", MIN_GAIN)),
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise InputError(f"Not a fusion-gain record ({exc}).") from exc
        if gain.best_single not in gain.single:
            raise InputError(f"Not a fusion-gain record (its best single modality {gain.best_single!r} is not listed).")
        return gain


def _row(r: object) -> FusionRow:
    if not isinstance(r, dict):
        raise TypeError("a row is not a table")
    optional = {k: (None if r.get(k) is None else _number(r[k])) for k in ("p_value", "ablation_gain")}
    ablation = None if r.get("ablation") is None else _text(r["ablation"])
    if (ablation is None) != (optional["ablation_gain"] is None):
        raise TypeError("an ablation comes with its gain, and a gain with its ablation")
    if not isinstance(r.get("earns_place", False), bool):
        raise TypeError("earns_place is not true or false")
    return FusionRow(
        _text(r["model"]), _number(r["mean"]), _number(r["half"]), _number(r["gain"]), optional["p_value"],
        ablation, optional["ablation_gain"], r.get("earns_place", False),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _number(value: object) -> float:
    """A float (NaN for a missing interval, as JSON writes it); anything else is a TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def is_single_modality(name: str) -> bool:
    """``content:<m>``, or a feature model restricted to one modality (``<model>@<m>``)."""
    subset = modality_subset(name)
    return (subset is not None and len(subset) == 1) or split_name(name)[0] == "content"


def is_multimodal(name: str, n_modalities: int) -> bool:
    """A model that reads item features of more than one modality in this run."""
    family, _ = split_name(name)
    spec = MODELS.get(family)
    if spec is None or not spec.needs_features or spec.per_modality:
        return False
    subset = modality_subset(name)
    return len(subset) > 1 if subset is not None else n_modalities > 1


def fusion_gain(
    summary: SeedSummary,
    modalities: Sequence[str],
    runs: Sequence[Results] | None = None,
    min_gain: float = MIN_GAIN,
) -> FusionGain | None:
    """The fusion verdict of one protocol's summary on a dataset with ``modalities``; None when it
    lacks a single-modality or a multimodal model. ``runs`` (the seeds' runs, with per-user
    figures) add the paired tests."""
    key = summary.key
    n_modalities = len(modalities)
    means = {m.name: m.metrics.get("all", {}).get(key, [math.nan, math.nan]) for m in summary.models}
    single = {n: v for n, v in means.items() if is_single_modality(n) and math.isfinite(v[0])}
    fused = [n for n, v in means.items() if is_multimodal(n, n_modalities) and math.isfinite(v[0])]
    if not single or not fused:
        return None
    best = max(single, key=lambda n: single[n][0])
    best_mean = single[best][0]
    best_modality = _modality_of(best)
    out = FusionGain(summary.protocol, key, single, best, min_gain=min_gain)
    for name in fused:
        mean, half = means[name]
        gain = mean / best_mean - 1 if best_mean > 0 else math.inf
        p = _paired(runs, name, best, key)
        ablation = f"{name}@{best_modality}" if best_modality else None
        ablation_gain = None
        if ablation in means and means[ablation][0] > 0:
            ablation_gain = mean / means[ablation][0] - 1
        else:
            ablation = None
        significant = p is None or p < ALPHA
        weights = _tuned_weights(summary, name)
        fuses = not weights or max(weights.values()) < DOMINANT_WEIGHT
        earns = gain >= min_gain and significant and fuses and (ablation_gain is None or ablation_gain >= min_gain)
        out.rows.append(FusionRow(name, mean, half, gain, p, ablation, ablation_gain, earns))
    out.reasons = explain(summary, out)
    return out


def explain(summary: SeedSummary, gain: FusionGain) -> list[str]:
    """Why fusion does (not) pay off, read from the runs: modality strengths, tuned or learned
    weights, ablations. Derived from the summary and the rows alone, so a results file's stored
    verdict is explained again when it is read."""
    reasons = []
    best_mean = gain.single[gain.best_single][0]
    others = [
        f"{name} {mean:.4f} ({mean / best_mean:.0%} of it)"
        for name, (mean, _) in sorted(gain.single.items(), key=lambda kv: -kv[1][0])
        if name != gain.best_single and split_name(name)[0] == "content"
    ]
    if others:
        reasons.append(
            f"alone, {gain.best_single} reaches {best_mean:.4f}; the other modalities alone: {', '.join(others)}"
        )
    for row in gain.rows:
        weights = _tuned_weights(summary, row.model)
        if weights:
            top, share = max(weights.items(), key=lambda kv: kv[1])
            listed = ", ".join(f"{m} {w:.2f}" for m, w in weights.items())
            how = "validation tuning put" if _has_tuned_weights(summary, row.model) else "its learned attention puts"
            if share >= DOMINANT_WEIGHT:
                lead = ""
                if row.gain > 0:
                    lead = f", so its {row.gain:+.1%} over {gain.best_single} is not a gain from fusion"
                reasons.append(
                    f"{row.model}: {how} {share:.2f} of the weight on {top} ({listed}): the other modalities did "
                    f"not help, and the model is (nearly) that modality alone{lead}"
                )
            else:
                reasons.append(f"{row.model}: modality weights {listed}")
        if row.ablation is not None and row.ablation_gain is not None and row.ablation_gain < gain.min_gain:
            alone = gain.single.get(row.ablation, [math.nan])[0]
            said = f"{row.model} on {_modality_of(row.ablation)} alone ({row.ablation}) reaches {alone:.4f}"
            if row.ablation_gain < 0:
                reasons.append(f"{said}: adding the other modalities costs it {-row.ablation_gain:.1%}")
            else:
                lead = ""
                if row.gain > 0 and gain.best_single != row.ablation:
                    lead = f", so its lead over {gain.best_single} comes from the model, not from fusion"
                added = f"{row.ablation_gain:+.1%}, under {gain.min_gain:.0%}"
                reasons.append(f"{said}: the other modalities add {added}{lead}")
        if row.p_value is not None and row.p_value >= ALPHA and row.gain > 0:
            reasons.append(
                f"{row.model}: the {row.gain:+.1%} over {gain.best_single} is not significant (p {row.p_value:.2g})"
            )
    return reasons


def _tuned_weights(summary: SeedSummary, model: str) -> dict[str, float]:
    """A model's modality weights, mean over seeds: chosen on validation (``modality_weights.<m>``,
    early / late fusion) or learned (``attention_weights.mean`` over ``attention_weights.modalities``)."""
    settings = summary.model(model).hyper_parameters
    prefix = "modality_weights."
    out = {}
    for key, value in settings.items():
        if key.startswith(prefix):
            values = value if isinstance(value, list) else [value]
            numbers = [float(v) for v in values if isinstance(v, (int, float))]
            if numbers:
                out[key[len(prefix) :]] = sum(numbers) / len(numbers)
    names, learned = settings.get("attention_weights.modalities"), settings.get("attention_weights.mean")
    if not out and isinstance(names, list) and isinstance(learned, list) and learned:
        per_seed = learned if isinstance(learned[0], list) else [learned]
        if all(isinstance(row, list) and len(row) == len(names) for row in per_seed):
            out = {str(m): sum(float(row[i]) for row in per_seed) / len(per_seed) for i, m in enumerate(names)}
    return out


def _has_tuned_weights(summary: SeedSummary, model: str) -> bool:
    return any(k.startswith("modality_weights.") for k in summary.model(model).hyper_parameters)


def _paired(runs: Sequence[Results] | None, a: str, b: str, key: str) -> float | None:
    if not runs:
        return None
    try:
        users_a, values_a = per_user_mean([r.model(a) for r in runs], key)
        users_b, values_b = per_user_mean([r.model(b) for r in runs], key)
    except (InputError, StopIteration):
        return None
    if users_a.shape != users_b.shape or (users_a != users_b).any():
        return None
    return paired_p_value(values_a, values_b)


def _modality_of(name: str) -> str | None:
    subset = modality_subset(name)
    if subset is not None:
        return subset[0] if len(subset) == 1 else None
    family, arg = split_name(name)
    return arg if family == "content" else None


def _pm(mean: float, half: float) -> str:
    return f"{mean:.4f}" if not math.isfinite(half) else f"{mean:.4f}+-{half:.4f}"
