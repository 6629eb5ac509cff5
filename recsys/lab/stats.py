"""Seeds and confidence: summarise one protocol's runs over several seeds, and test model gaps.

A single seed cannot rank models whose gap is smaller than the seed-to-seed spread (on lfm2k's
cold items one model moved Recall@20 by 0.04 between two seeds), so every figure here is a
mean over seeds with a 95% Student-t interval, and the best model is compared with every other
by a paired per-user test:

* the interval is ``mean +- t(0.975, n-1) * sd / sqrt(n)`` over the seeds' figures (no interval
  from one seed);
* the paired test is a two-sided Wilcoxon signed-rank test over test users, each user's value
  being their Recall@K *averaged over the seeds* in which they have test items (pooling
  seeds per user keeps users independent; stacking (seed, user) pairs would count the same
  user several times). Wilcoxon rather than a t-test because per-user recall is bounded and far
  from normal (many zeros and ones). No multiple-comparison correction: each p-value answers
  "is this model distinguishable from the best one", read one row at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recsys.datasets import InteractionDataset
from recsys.errors import InputError
from recsys.lab import evaluate as runner
from recsys.lab.evaluate import ModelResult, Results, check_seed, jsonable
from recsys.lab.progress import ModelProgress, ProgressCallback, SeedProgress

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
ALPHA = 0.05
#: Columns of the printed summary (each "mean +- half-width"); every metric stays in the JSON.
SUMMARY_METRICS = ("recall", "ndcg")
#: Extra-info entries that describe the run rather than a chosen setting.
_NOT_SETTINGS = {
    "fit_seconds",
    "final_loss",
    "epochs_run",
    "config.device",
    "config.num_threads",
    "losses",
    "search.seconds",  # the search's bookkeeping; its choice, tries and best validation recall stay
    "search.settings_planned",
    "search.mode",
    "search.budget_seconds",
    "search.seed",
    "search.default_valid_recall@20",
}


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width) of the Student-t confidence interval; the half-width is NaN below 2 values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, half


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples; 1.0 when every pair is equal."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"Paired samples differ in length ({a.shape} vs {b.shape}).")
    if a.size == 0 or np.allclose(a, b, rtol=0.0, atol=1e-12):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)


def per_user_mean(results: Sequence[ModelResult], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, each user's ``key`` averaged over the runs where they have test items)."""
    ids, values = [], []
    for r in results:
        if key not in r.per_user:
            raise InputError(f"Model {r.name!r} kept no per-user {key}: evaluate it again in this session.")
        ids.append(np.asarray(r.per_user["users"]))
        values.append(np.asarray(r.per_user[key], dtype=np.float64))
    users, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    sums = np.bincount(inverse, weights=np.concatenate(values), minlength=users.size)
    counts = np.bincount(inverse, minlength=users.size)
    return users, sums / counts


def hyper_parameters(info: dict[str, object], prefix: str = "") -> dict[str, object]:
    """The scalar settings in a model's ``extra_info`` (nested dicts flattened to ``a.b``)."""
    out: dict[str, object] = {}
    for key, value in info.items():
        path = f"{prefix}{key}"
        if path in _NOT_SETTINGS:
            continue
        if isinstance(value, dict):
            out.update(hyper_parameters(value, path + "."))
        elif _is_setting(value):
            out[path] = value
    return out


def _is_setting(value: object) -> bool:
    """A scalar, or a short list of scalars (e.g. a grid's chosen weights); not a loss curve."""
    if isinstance(value, list):
        return len(value) <= 8 and all(isinstance(v, (int, float, str)) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _merge_settings(per_seed: list[dict[str, object]]) -> dict[str, object]:
    """One value when every seed agrees, else the per-seed list (e.g. a tuned epoch count)."""
    keys = list(dict.fromkeys(k for d in per_seed for k in d))
    out = {}
    for k in keys:
        values = [d.get(k) for d in per_seed]
        out[k] = values[0] if all(v == values[0] for v in values) else values
    return out


@dataclass
class ModelSummary:
    """One model over the seeds: per segment and metric ``[mean, half-width]``, and its test against the best."""

    name: str
    metrics: dict[str, dict[str, list[float]]]
    fit_seconds: float
    hyper_parameters: dict[str, object]
    p_value: float | None = None  # paired test against the best model (None for the best itself)

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else bool(self.p_value < ALPHA)

    @property
    def verdict(self) -> str:
        """Against the best model: ``sig.``, ``n.s.`` (not significantly different), or ``""`` untested."""
        return "" if self.p_value is None else ("sig." if self.significant else "n.s.")


@dataclass
class SeedSummary:
    """A protocol's runs over several seeds, summarised; ``best`` has the highest mean ``key``."""

    dataset: str
    protocol: str
    description: str
    seeds: list[int]
    key: str
    best: str
    test: str
    models: list[ModelSummary] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        for m, summary in zip(out["models"], self.models, strict=True):
            m["significant"] = summary.significant
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SeedSummary:
        """Back from :meth:`to_dict` (a results file's ``"summaries"`` entry)."""
        try:
            models = [
                ModelSummary(**{k: v for k, v in m.items() if k != "significant"})  # type: ignore[union-attr]
                for m in d["models"]  # type: ignore[union-attr]
            ]
            return cls(**{**d, "models": models})  # type: ignore[arg-type]
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"Not a seed summary record ({exc}).") from exc

    def model(self, name: str) -> ModelSummary:
        return next(m for m in self.models if m.name == name)

    @property
    def paired(self) -> bool:
        """Whether the paired test ran (a summary rebuilt from a file without per-user figures has none)."""
        return any(m.p_value is not None for m in self.models)

    def metric_keys(self, segment: str = "all", ks: Sequence[int] | None = None) -> list[str]:
        """The table's columns: Recall and NDCG at every cut-off, MRR and Hit at the key's cut-off."""
        order = (*SUMMARY_METRICS, "mrr", "hit")
        extra = (f"mrr@{self.key_k}", f"hit@{self.key_k}")
        present = {k for m in self.models for k in m.metrics.get(segment, {})}
        wanted = [k for k in present if k.split("@")[0] in SUMMARY_METRICS or k in extra]
        keys = sorted(wanted, key=lambda k: (order.index(k.split("@")[0]), int(k.split("@")[1])))
        return keys if ks is None else [k for k in keys if int(k.split("@")[1]) in ks]

    def frame(self, segment: str = "all", ks: Sequence[int] | None = None) -> pd.DataFrame:
        """Models x (``metric@k`` mean, ``metric@k +-`` half-width), fit seconds and, on ``all``, the
        paired test against the best (``p(key)``, and ``vs best``: ``best`` / ``sig.`` / ``n.s.``)."""
        import pandas as pd

        keys = self.metric_keys(segment, ks)
        rows = {}
        for m in self.models:
            if segment not in m.metrics:
                continue
            row: dict[str, object] = {}
            for k in keys:
                mean, half = m.metrics[segment].get(k, [math.nan, math.nan])
                row[k], row[f"{k} +-"] = _number(mean), _number(half)
            row["fit_s"] = m.fit_seconds
            if segment == "all":
                row[f"p({self.key})"] = math.nan if m.p_value is None else m.p_value
                row["vs best"] = "best" if m.name == self.best else m.verdict
            rows[m.name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def table(self, segment: str = "all", ks: Sequence[int] | None = None) -> str:
        """Models x "mean +- half-width" per metric, fit time and the paired test against the best."""
        import pandas as pd

        numbers = self.frame(segment, ks)
        frame = pd.DataFrame(index=numbers.index)
        for k in self.metric_keys(segment, ks):
            frame[k] = [_pm(a, b) for a, b in zip(numbers[k], numbers[f"{k} +-"], strict=True)]
        if not numbers.empty:
            frame["fit_s"] = [f"{v:.1f}" for v in numbers["fit_s"]]
        if segment == "all" and not numbers.empty:
            p = numbers[f"p({self.key})"]
            verdicts = numbers["vs best"]
            frame[f"p({self.key})"] = [v if v == "best" else _p_text(x) for x, v in zip(p, verdicts, strict=True)]
            frame["vs best"] = ["" if v == "best" else v for v in verdicts]
        header = (
            f"{self.dataset} | protocol: {self.protocol} | segment: {segment} | {len(self.seeds)} seed(s) "
            f"{self.seeds}: mean +- {CONFIDENCE:.0%} t-interval half-width\n  {self.description}"
        )
        if segment == "all":
            header += f"\n  {self.test}"
        with pd.option_context("display.width", 250, "display.max_columns", 50):
            return header + "\n" + frame.to_string()

    @property
    def key_k(self) -> int:
        return int(self.key.split("@")[1])

    def settings_lines(self) -> list[str]:
        """One line per model: the hyper-parameters its fits used or chose (per seed where they differ)."""
        return [
            f"{m.name}: " + (", ".join(f"{k}={v}" for k, v in m.hyper_parameters.items()) or "(none)")
            for m in self.models
        ]


def _p_text(p: float) -> str:
    return "" if math.isnan(p) else f"{p:.2g}"


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _pm(mean: float, half: float) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    return f"{mean:.4f}" if half is None or not math.isfinite(half) else f"{mean:.4f}+-{half:.4f}"


def summarise(runs: Sequence[Results], key: str | None = None) -> SeedSummary:
    """Mean and t-interval per model, segment and metric over ``runs`` (one protocol, one run per seed),
    and the paired per-user test of the best model (highest mean ``key`` on ``all``; default Recall@20,
    else Recall at the first cut-off) against each other. Runs read back from a file keep no
    per-user figures: their summary has the intervals and no test (``SeedSummary.paired`` False)."""
    if not runs:
        raise InputError("Nothing to summarise: no runs.")
    if key is None:
        key = f"recall@{20 if 20 in runs[0].ks else runs[0].ks[0]}"
    protocols = {r.protocol for r in runs}
    if len(protocols) > 1:
        raise InputError(f"Summarise one protocol at a time, got {sorted(protocols)}.")
    names = [m.name for m in runs[0].models]
    if any([m.name for m in r.models] != names for r in runs):
        raise InputError("Every seed's run must hold the same models in the same order.")
    per_model = {name: [r.model(name) for r in runs] for name in names}
    summaries = []
    for name, results in per_model.items():
        segments = list(dict.fromkeys(s for r in results for s in r.metrics))
        metrics = {}
        for seg in segments:
            keys = list(dict.fromkeys(k for r in results for k in r.metrics.get(seg, {}) if "@" in k))
            metrics[seg] = {k: list(t_interval([r.metrics.get(seg, {}).get(k) for r in results])) for k in keys}
        settings = _merge_settings([hyper_parameters(r.extra_info) for r in results])
        fit = float(np.mean([r.fit_seconds for r in results]))
        summaries.append(ModelSummary(name, metrics, round(fit, 3), settings))
    means = {s.name: s.metrics.get("all", {}).get(key, [math.nan])[0] for s in summaries}
    best = max(names, key=lambda n: -math.inf if not math.isfinite(means[n]) else means[n])
    seeds = [r.seed for r in runs]
    if all(key in r.per_user for results in per_model.values() for r in results):
        test = _paired_tests(per_model, summaries, best, key, len(seeds))
    else:
        test = (
            f"no paired test: these runs kept no per-user {key} (a results file holds none; "
            "run them again in this session for the test)"
        )
    return SeedSummary(
        str(runs[0].dataset.get("name", "?")), runs[0].protocol, runs[0].description, seeds, key, best, test, summaries
    )


def _paired_tests(
    per_model: dict[str, list[ModelResult]], summaries: list[ModelSummary], best: str, key: str, n_seeds: int
) -> str:
    """Set each summary's ``p_value`` against ``best``; returns the sentence describing the test."""
    best_users, best_values = per_user_mean(per_model[best], key)
    for s in summaries:
        if s.name == best:
            continue
        users, values = per_user_mean(per_model[s.name], key)
        if not np.array_equal(users, best_users):
            raise InputError(f"{s.name} and {best} were tested on different users; they cannot be paired.")
        s.p_value = paired_p_value(best_values, values)
    return (
        f"p({key}): two-sided Wilcoxon signed-rank test of {best} against each model over "
        f"{best_users.size} test users, each user's {key} averaged over the {n_seeds} seed(s); "
        f"n.s. = not significant at {ALPHA}"
    )


def seed_range(first: int, count: int) -> list[int]:
    """``count`` consecutive seeds from ``first`` (``--seed S --seeds N``), checked like one seed."""
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise InputError(f"--seeds must be a whole number of at least 1, got {count}.")
    seeds = [check_seed(first + i) for i in range(int(count))]
    return seeds


def evaluate_seeds(
    dataset: InteractionDataset,
    protocol: str | None,
    models: Sequence[str] | None,
    seeds: Sequence[int],
    *,
    reference_check: bool = False,
    key: str | None = None,
    on_seed_progress: Callable[[SeedProgress], None] | None = None,
    **kwargs: object,
) -> tuple[list[Results], SeedSummary]:
    """:func:`~recsys.lab.evaluate.evaluate` once per seed (the seed drives the split where the
    protocol is random, and every model's initialisation and sampling), then :func:`summarise`.

    The matched BPR sanity pair (``reference_check``) runs with the first seed only.
    ``on_seed_progress`` gets every model event with the seed it belongs to (``on_progress``, if
    given, still gets the bare events).
    """
    if not seeds:
        raise InputError("Give at least one seed.")
    on_progress = kwargs.pop("on_progress", None)
    runs = []
    for i, seed in enumerate(seeds):
        listener = _listener(on_progress, on_seed_progress, protocol or "default protocol", seed, i + 1, len(seeds))
        runs.append(
            runner.evaluate(
                dataset,
                protocol,
                models,
                seed=seed,
                reference_check=reference_check and i == 0,
                on_progress=listener,
                **kwargs,  # type: ignore[arg-type]
            )
        )
    return runs, summarise(runs, key)


def _listener(
    plain: ProgressCallback | None,
    seeded: Callable[[SeedProgress], None] | None,
    protocol: str,
    seed: int,
    index: int,
    total: int,
) -> ProgressCallback | None:
    """One seed's progress callback: the plain one, and the seeded one with the seed attached."""
    if seeded is None:
        return plain

    def tell(event: ModelProgress) -> None:
        if plain is not None:
            plain(event)
        seeded(SeedProgress(protocol, seed, index, total, event))

    return tell
