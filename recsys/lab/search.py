"""Hyper-parameter search on validation only, within a time budget per model.

A model's registered defaults may once have been picked while test figures were in view; a
search that sees only the training part of a split and its validation interactions gives each
model a setting chosen the same honest way. The rules:

* the candidates are the registration's ``search`` space (:class:`~recsys.lab.registry.ModelSpec`),
  or one given by the caller: parameter -> candidate values;
* the **registered default is always fitted first**, and a setting replaces the best so far only
  when its validation Recall@20 is strictly higher, so a search never ends below the default on
  validation;
* the whole grid when it has at most ``max_settings`` combinations, else ``max_settings`` distinct
  combinations sampled at random; either way in a seeded random order, so a budget that runs out
  leaves an unbiased subset rather than one corner of the grid;
* ``budget_seconds``: no new fit starts once it is spent (a budget of 0 fits the default alone);
* every setting is scored by :func:`recsys.lab.training.validation_recall` (Recall@20, training
  items excluded); models that train for epochs keep their own early stopping on validation;
* fits run in the ``train`` thread role (:mod:`recsys.threads`).

:func:`search` takes a :class:`~recsys.lab.base.TrainData` and nothing else, so the test
interactions of a split cannot be read; :func:`search_models` builds the split and hands over
its training part only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from recsys.errors import RecsysError
from recsys.lab.evaluate import check_models, check_seed, with_modalities
from recsys.lab.filters import Filters, apply_filters
from recsys.lab.protocols import default_protocol, make_split
from recsys.lab.registry import create_model, default_models, modality_subset, spec_for
from recsys.lab.training import validation_recall
from recsys.threads import use_threads

if TYPE_CHECKING:
    from recsys.datasets import InteractionDataset
    from recsys.lab.base import Recommender, TrainData

#: Settings planned beyond the default: the whole grid up to this size, else a random sample of it.
MAX_SETTINGS = 30
#: Validation Recall cut-off used for selection (the lab's key metric).
SELECT_K = 20

SearchSpace = Mapping[str, Sequence[object]]
_MISSING = object()


@dataclass
class Trial:
    """One fitted setting: its overrides of the registered default (``{}`` is the default itself)."""

    params: dict[str, object]
    valid_recall: float | None  # None when the fit failed (``error`` says why)
    fit_seconds: float
    best_epoch: int | None = None
    error: str = ""

    def line(self) -> str:
        """``{params}: recall (fit seconds, best epoch)``, or why the fit failed."""
        label = self.params or "registered default"
        if self.error:
            return f"{label}: failed ({self.error})"
        epoch = f", best epoch {self.best_epoch}" if self.best_epoch is not None else ""
        return f"{label}: {self.valid_recall:.4f} (fit {self.fit_seconds:.0f}s{epoch})"


@dataclass
class SearchResult:
    """What one model's search tried and chose; ``trials[0]`` is always the registered default."""

    model: str
    mode: str  # "grid", "random" or "default" (an empty search space)
    planned: int  # settings planned, the default included
    budget_seconds: float
    seed: int
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> Trial:
        """The first trial with the highest validation recall (the default wins ties)."""
        best = self.trials[0]
        for trial in self.trials[1:]:
            if trial.valid_recall is not None and trial.valid_recall > best.valid_recall:  # type: ignore[operator]
                best = trial
        return best

    @property
    def chosen(self) -> dict[str, object]:
        """The overrides to run the model with (``{}``: the registered default)."""
        return dict(self.best.params)

    def record(self) -> dict[str, object]:
        """The search as a model's ``extra_info["search"]`` entry in a results file."""
        key = f"valid_recall@{SELECT_K}"

        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "chosen": self.chosen,
            "settings_tried": len(self.trials),
            "settings_planned": self.planned,
            "mode": self.mode,
            key: rounded(self.best.valid_recall),
            f"default_{key}": rounded(self.trials[0].valid_recall),
            "budget_seconds": self.budget_seconds,
            "seconds": round(self.seconds, 1),
            "seed": self.seed,
            "trials": [
                {"params": t.params, key: rounded(t.valid_recall), "fit_seconds": round(t.fit_seconds, 2)}
                | ({"error": t.error} if t.error else {})
                for t in self.trials
            ],
        }

    def line(self) -> str:
        """One printable line: what was tried, what won, against the default."""
        chosen = ", ".join(f"{k}={v}" for k, v in self.chosen.items()) or "the registered default"
        if self.mode == "default":
            return f"{self.model}: no search space; default validation Recall@{SELECT_K} {self.best.valid_recall:.4f}"
        failed = sum(1 for t in self.trials if t.error)
        return (
            f"{self.model}: {len(self.trials)} of {self.planned} settings ({self.mode}) in {self.seconds:.0f}s"
            + (f", {failed} failed" if failed else "")
            + f"; best validation Recall@{SELECT_K} {self.best.valid_recall:.4f} with {chosen}"
            + f" (default {self.trials[0].valid_recall:.4f})"
        )


def check_budget(seconds: float) -> float:
    """A finite number of seconds >= 0, else a :class:`RecsysError`."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise RecsysError(f"The search budget must be a number of seconds, got {seconds!r}.")
    if seconds < 0:
        raise RecsysError(f"The search budget must be 0 seconds or more, got {seconds}.")
    return float(seconds)


def parse_candidates(text: str) -> tuple[str, list[object]]:
    """``"lr=0.005,0.01"`` -> ``("lr", [0.005, 0.01])``; values are JSON where they parse, else strings."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw:
        raise RecsysError(f"A search parameter is written key=v1,v2,... (got {text!r}).")
    values: list[object] = []
    for item in raw.split(","):
        try:
            values.append(json.loads(item))
        except json.JSONDecodeError:
            values.append(item)
    return key.strip(), values


def default_value(model: Recommender, key: str) -> object:
    """The value ``model`` holds for constructor argument ``key``, or a sentinel when it keeps none
    under that name (its attribute, its training config's field, or its ``params`` table)."""
    if key in vars(model):
        return vars(model)[key]
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, key):
        return getattr(config, key)
    params = getattr(model, "params", None)
    if isinstance(params, dict) and key in params:
        return params[key]
    return _MISSING


def check_space(name: str, space: object) -> dict[str, tuple[object, ...]]:
    """``space`` as {parameter: candidate tuple}, every candidate accepted by the model's constructor
    and of its default's kind; a :class:`RecsysError` naming the model, parameter and value otherwise."""
    spec = spec_for(name)
    where = f"Search space of {name!r}"
    if not isinstance(space, Mapping):
        raise RecsysError(f"{where} must map parameter names to lists of values, got {type(space).__name__}.")
    default = create_model(name) if space else None
    out: dict[str, tuple[object, ...]] = {}
    for key, values in space.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise RecsysError(f"{where}: {key!r} is not a parameter name.")
        if key in spec.kwargs:
            raise RecsysError(f"{where}: {key} is fixed by the registration ({key}={spec.kwargs[key]!r}).")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise RecsysError(f"{where}: {key} needs a non-empty list of candidate values, got {values!r}.")
        if len(set(map(repr, values))) != len(values):
            raise RecsysError(f"{where}: {key} lists a value twice ({list(values)}).")
        reference = default_value(default, key)  # type: ignore[arg-type]
        for value in values:
            _check_value(where, key, value, reference)
            try:
                create_model(name, **{key: value})
            except TypeError as exc:
                raise RecsysError(f"{where}: {name} takes no parameter {key!r} ({exc}).") from exc
            except RecsysError as exc:
                raise RecsysError(f"{where}: {key}={value!r} is refused: {exc}") from exc
        out[key] = tuple(values)
    return out


def _check_value(where: str, key: str, value: object, reference: object) -> None:
    """A plain scalar, finite, and of the default's kind (a number for a number, a whole number for
    a whole number, a flag for a flag, a word for a word) where the default is known."""
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise RecsysError(f"{where}: {key}={value!r} is not a number, a flag, a word or null.")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecsysError(f"{where}: {key}={value!r} is not a finite number.")
    if reference is _MISSING or reference is None:
        return
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(reference, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(reference, int):
        ok, kind = is_number and float(value).is_integer(), "a whole number"  # type: ignore[arg-type]
    elif isinstance(reference, float):
        ok, kind = is_number, "a number"
    elif isinstance(reference, str):
        ok, kind = isinstance(value, str), "a word"
    else:
        return
    if not ok:
        raise RecsysError(f"{where}: {key}={value!r} must be {kind}, like its default {reference!r}.")


def plan_settings(
    space: Mapping[str, Sequence[object]],
    seed: int,
    max_settings: int = MAX_SETTINGS,
    default: Mapping[str, object] | None = None,
) -> tuple[str, list[dict[str, object]]]:
    """(mode, the settings to try after the default, in order).

    ``grid`` when the space has at most ``max_settings`` combinations, else ``random``: that many
    distinct combinations. Both in a seeded random order. ``default``'s values (where known)
    are dropped from the plan: that setting is fitted first anyway.
    """
    if isinstance(max_settings, bool) or int(max_settings) != max_settings or max_settings < 0:
        raise RecsysError(f"max_settings must be a whole number >= 0, got {max_settings!r}.")
    keys = list(space)
    if not keys:
        return "default", []
    sizes = [len(space[k]) for k in keys]
    total = math.prod(sizes)
    rng = np.random.default_rng(seed)
    mode = "grid" if total <= max_settings else "random"
    # One spare draw per default-equal combination, so dropping the default keeps the count.
    n = total if mode == "grid" else min(total, int(max_settings) + 1)
    order = rng.permutation(total) if mode == "grid" else rng.choice(total, size=n, replace=False)
    default = default or {}
    plan = []
    for index in order:
        combo, rest = {}, int(index)
        for key, size in zip(reversed(keys), reversed(sizes), strict=True):
            rest, pick = divmod(rest, size)
            combo[key] = space[key][pick]
        combo = {k: combo[k] for k in keys}
        if all(k in default and _same(default[k], v) for k, v in combo.items()):
            continue
        plan.append(combo)
    return mode, plan[: int(max_settings)] if mode == "random" else plan


def _same(a: object, b: object) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _fit_and_validate(name: str, data: TrainData, params: dict[str, object]) -> Trial:
    """Fit one setting on ``data.train`` (early stopping on ``data.valid``) and score validation."""
    t0 = time.perf_counter()
    model = create_model(name, **params)
    with use_threads("train"):
        model.fit(data)
        recall = validation_recall(model.score, data.train, data.valid, SELECT_K)
    result = getattr(model, "result", None)
    epoch = getattr(result, "best_epoch", None)
    return Trial(dict(params), float(recall), time.perf_counter() - t0, epoch)


def search(
    name: str,
    data: TrainData,
    budget_seconds: float,
    *,
    space: SearchSpace | None = None,
    seed: int | None = None,
    max_settings: int = MAX_SETTINGS,
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """Search model ``name``'s space (default: its registration's) on ``data``'s validation part.

    ``seed`` orders the plan (default ``data.seed``). The default's fit must succeed (its
    error propagates: the model cannot run at all); a later setting whose fit raises a
    :class:`RecsysError` is recorded as failed and the search goes on. ``on_trial`` is told
    every fitted setting.
    """
    budget = check_budget(budget_seconds)
    if data.valid.nnz == 0:
        raise RecsysError(f"Cannot search {name}: the split has no validation interactions to select on.")
    checked = check_space(name, spec_for(name).search if space is None else space)
    seed = data.seed if seed is None else int(seed)
    known = {}
    if checked:
        reference = create_model(name)
        known = {k: v for k in checked if (v := default_value(reference, k)) is not _MISSING}
    mode, plan = plan_settings(checked, seed, max_settings, known)
    result = SearchResult(name, mode, len(plan) + 1, budget, seed)
    start = time.perf_counter()
    for params in [{}, *plan]:
        if result.trials and time.perf_counter() - start >= budget:
            break
        try:
            trial = _fit_and_validate(name, data, params)
        except RecsysError as exc:
            if not params:
                raise
            trial = Trial(dict(params), None, 0.0, error=str(exc))
        result.trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
    result.seconds = time.perf_counter() - start
    return result


def search_models(
    dataset: InteractionDataset,
    protocol: str | None,
    models: Sequence[str] | None,
    seed: int,
    budget_seconds: float,
    *,
    filters: Filters | None = None,
    max_settings: int = MAX_SETTINGS,
    on_trial: Callable[[str, Trial], None] | None = None,
) -> dict[str, SearchResult]:
    """Search every model on ``seed``'s split of ``protocol`` (the one :func:`recsys.lab.evaluate.evaluate`
    makes for that seed, after ``filters``); only its training part reaches the models.

    Returns model name -> :class:`SearchResult`; pass it to ``evaluate(..., searched=...)`` to
    run every seed with the chosen settings.
    """
    budget = check_budget(budget_seconds)
    dataset = apply_filters(dataset, filters or Filters())
    names = list(models) if models is not None else default_models(dataset.modalities)
    check_models(dataset, names)
    train = make_split(dataset, protocol or default_protocol(dataset), seed=check_seed(seed)).train
    out = {}
    for name in names:
        tell = None if on_trial is None else (lambda t, n=name: on_trial(n, t))
        data = with_modalities(train, modality_subset(name))  # model@modality sees only those features
        out[name] = search(name, data, budget, max_settings=max_settings, on_trial=tell)
    return out


def report_search(
    dataset: InteractionDataset,
    protocol: str,
    models: Sequence[str] | None,
    seed: int,
    seconds: float,
    *,
    filters: Filters | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, SearchResult]:
    """:func:`search_models`, telling ``say`` every setting as it is tried and then what was chosen
    (the benchmark's and the CLI's output; ``say`` default: print, flushed)."""
    say = say or (lambda line: print(line, flush=True))
    say(f"search on the {protocol} split of seed {seed} (validation Recall@20, {seconds:g}s per model):")
    searched = search_models(
        dataset, protocol, models, seed, seconds, filters=filters, on_trial=lambda name, t: say(f"  {name} {t.line()}")
    )
    say("chosen on validation:")
    for result in searched.values():
        say("  " + result.line())
    return searched
