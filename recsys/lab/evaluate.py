"""Evaluation runner: fit every model on one split, rank for the test users, report metrics.

Every model is scored the same way: full ranking over the split's candidate items with the
user's training items set to ``-inf`` (and, with ``mask_valid``, the validation items too, as
RecBole does); metrics per *segment* (``all`` candidates, and ``warm`` / ``cold`` items
separately when the test set holds both), each figure labelled with the split's protocol
description. With ``refit``, each model is fitted again on train + validation with what it chose
on validation frozen (:meth:`Recommender.refit_overrides`) before it is tested. Results serialise
to JSON (``{"format": ..., "runs": [...]}``) with the library versions and commit that made them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from recsys.atomic import write_json
from recsys.datasets import InteractionDataset
from recsys.errors import DatasetError, RecsysError
from recsys.lab.base import Recommender, TrainData
from recsys.lab.filters import Filters, apply_filters
from recsys.lab.metrics import MetricAccumulator, unit_rows
from recsys.lab.progress import ModelProgress, ProgressCallback
from recsys.lab.protocols import Split, default_protocol, make_split
from recsys.lab.provenance import environment
from recsys.lab.registry import create_model, default_models, is_available, modality_subset, spec_for
from recsys.lab.training import block_rows, epoch_listener
from recsys.threads import use_threads

if TYPE_CHECKING:
    from recsys.lab.search import SearchResult

RESULTS_FORMAT = "recsys-lab-results/1"
DEFAULT_KS = (10, 20, 50)
TABLE_METRICS = ("recall", "ndcg")
#: Fewer test users than this and a run warns that its figures cannot rank models.
MIN_TEST_USERS = 20


@dataclass
class ModelResult:
    name: str
    description: str
    fit_seconds: float
    score_seconds: float
    metrics: dict[str, dict[str, float]]  # segment -> "metric@k" -> value
    extra_info: dict[str, object] = field(default_factory=dict)
    # Per test user of the ``all`` segment: "users" (ids) and "metric@k" arrays, for paired tests
    # between models (recsys.lab.stats). Kept in memory only: results files stay small.
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Results:
    dataset: dict[str, object]
    protocol: str
    description: str
    seed: int
    ks: list[int]
    split: dict[str, int]
    segments: list[str]
    models: list[ModelResult]
    created: str = ""
    total_seconds: float = 0.0
    options: dict[str, object] = field(default_factory=dict)
    environment: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reference: list[ModelResult] = field(default_factory=list)  # the matched-hyper-parameter sanity pair

    def to_dict(self, arrays: bool = True) -> dict[str, object]:
        """The run as JSON data, without per-user figures; ``arrays`` False also leaves out the long
        lists in the models' ``extra_info`` (per-user / per-item weights, loss curves), which only the
        charts of a protocol's first seed read."""
        out = asdict(self)
        for m in out["models"] + out["reference"]:
            m.pop("per_user", None)
            if not arrays:
                m["extra_info"] = _short_lists_only(m["extra_info"])
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Results:
        try:
            models = [ModelResult(**m) for m in d["models"]]
            reference = [ModelResult(**m) for m in d.get("reference", [])]
            return cls(**{**d, "models": models, "reference": reference})
        except (KeyError, TypeError, AttributeError) as exc:
            raise RecsysError(f"Not a lab results record ({exc}).") from exc

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.name == name)

    def table(self, segment: str = "all", metrics: Sequence[str] = TABLE_METRICS) -> str:
        """A printable model x metric table for one segment, with fit time."""
        import pandas as pd

        cols = [f"{m}@{k}" for m in metrics for k in self.ks]
        k_mid = 20 if 20 in self.ks else self.ks[0]
        cols += [f"{m}@{k_mid}" for m in ("precision", "map", "mrr", "hit", "coverage", "diversity")]
        rows = {}
        for m in self.models:
            if segment in m.metrics:
                vals = m.metrics[segment]
                rows[m.name] = {c: vals.get(c, float("nan")) for c in cols} | {"fit_s": m.fit_seconds}
        frame = pd.DataFrame.from_dict(rows, orient="index")
        users = next((int(m.metrics[segment]["users"]) for m in self.models if segment in m.metrics), 0)
        header = (
            f"{self.dataset.get('name', '?')} | protocol: {self.protocol} | segment: {segment} "
            f"({users} test users)\n  {self.description}"
        )
        with pd.option_context("display.width", 250, "display.max_columns", 50):
            return header + "\n" + frame.to_string(float_format=lambda x: f"{x:.4f}")


#: Longest list kept in the ``extra_info`` of a run that is not its protocol's first seed.
SHORT_LIST = 64


def _short_lists_only(info: object) -> object:
    if isinstance(info, dict):
        return {k: _short_lists_only(v) for k, v in info.items() if not _long(v)}
    return info


def _long(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > SHORT_LIST


def jsonable(obj: object) -> object:
    """Numpy values and arrays to plain JSON types (NaN/inf to None)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch tensors without importing torch
        return jsonable(obj.tolist())
    return obj


def _segments(split: Split) -> dict[str, np.ndarray]:
    """Candidate masks per segment: ``all``, plus ``warm``/``cold`` when the test set has both kinds."""
    out = {"all": split.candidates}
    warm = split.candidates & split.train.warm_items
    cold = split.candidates & ~split.train.warm_items
    test_items = np.asarray(split.test.sum(axis=0)).ravel() > 0
    if (test_items & warm).any() and (test_items & cold).any():
        out["warm"] = warm
        out["cold"] = cold
    return out


def diversity_features(dataset: InteractionDataset) -> np.ndarray | None:
    """Unit item vectors for intra-list diversity: all modalities' normalised features, concatenated."""
    if not dataset.item_features:
        return None
    parts = [unit_rows(f) for f in dataset.item_features.values()]
    return (np.hstack(parts) / np.sqrt(len(parts))).astype(np.float32)


def score_split(
    model,
    split: Split,
    ks: Sequence[int],
    features: np.ndarray | None,
    batch_size: int = 512,
    exclude: sp.csr_matrix | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], float]:
    """Metrics per segment for a fitted model, the ``all`` segment's per-user values
    (``{"users": ids, "recall@20": ...}``, for paired tests) and the seconds spent scoring.

    ``exclude``: each user's items never ranked (default: their training items). Users are scored
    ``batch_size`` at a time, fewer over a large catalogue (:func:`recsys.lab.training.block_rows`).
    Items are visited in a seeded random order, so tied scores (e.g. every cold item scoring 0
    for a collaborative model) are broken at random rather than by item id, which often
    correlates with popularity and would flatter such models.
    """
    segments = _segments(split)
    n_items = split.train.n_items
    perm = np.random.default_rng(split.train.seed).permutation(n_items)
    test_users = np.flatnonzero(np.diff(split.test.indptr) > 0)
    feats = features[perm] if features is not None else None
    accs = {s: MetricAccumulator(tuple(ks), int(mask.sum()), feats) for s, mask in segments.items()}
    restricted = {}
    for seg, mask in segments.items():
        r = (split.test @ sp.diags(mask.astype(np.float32))).tocsr()[:, perm]
        r.eliminate_zeros()
        restricted[seg] = r.tocsr()
    spent = 0.0
    train = split.train.train if exclude is None else exclude
    position = np.empty_like(perm)
    position[perm] = np.arange(n_items)  # each item's column once permuted
    step = block_rows(n_items, batch_size)
    for start in range(0, len(test_users), step):
        users = test_users[start : start + step]
        t0 = time.perf_counter()
        scores = np.asarray(model.score(users), dtype=np.float32)
        spent += time.perf_counter() - t0
        if scores.shape != (len(users), n_items):
            raise RuntimeError(f"{model.name}.score returned shape {scores.shape}, expected {(len(users), n_items)}.")
        scores = np.nan_to_num(scores, nan=-np.inf)[:, perm]
        seen = train[users].tocoo()
        held = seen.data > 0
        scores[seen.row[held], position[seen.col[held]]] = -np.inf
        last = len(segments) - 1
        for i, (seg, mask) in enumerate(segments.items()):
            s = scores if i == last else scores.copy()
            s[:, ~mask[perm]] = -np.inf
            accs[seg].add(s, restricted[seg][users], users if seg == "all" else None)
    ids, values = accs["all"].per_user()
    return {seg: acc.result() for seg, acc in accs.items()}, {"users": ids, **values}, spent


def check_ks(ks: Sequence[int]) -> list[int]:
    """The cut-offs as sorted distinct positive integers, or a :class:`RecsysError` saying what is wrong."""
    if not ks:
        raise RecsysError("Give at least one cut-off K, e.g. --ks 10,20,50.")
    if any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks):
        raise RecsysError(f"Cut-offs must be positive integers, got {list(ks)}.")
    return sorted({int(k) for k in ks})


def check_seed(seed: int) -> int:
    """Seeds feed numpy, torch and implicit (``RandomState``: 0 .. 2**32 - 1)."""
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < 2**32:
        raise RecsysError(f"The seed must be a whole number from 0 to {2**32 - 1}, got {seed}.")
    return int(seed)


def check_models(dataset: InteractionDataset, names: Sequence[str]) -> None:
    """Fail before any training on an unknown name, a missing module, features or modalities."""
    if not names:
        raise RecsysError("No models to evaluate.")
    for name in names:
        spec = spec_for(name)
        if spec.needs_features and not dataset.item_features:
            raise DatasetError(f"Model {name!r} needs item features, but dataset {dataset.name} has none.")
        subset = modality_subset(name)
        unknown = sorted(set(subset or ()) - set(dataset.modalities))
        if unknown:
            raise DatasetError(
                f"Model {name!r} asks for modalities {', '.join(unknown)}, which dataset {dataset.name} lacks; "
                f"it has {', '.join(dataset.modalities) or 'none'}."
            )
        if spec.fuses_modalities and subset is None and len(dataset.modalities) < 2:
            raise DatasetError(
                f"Model {name!r} fuses modalities, but dataset {dataset.name} has only "
                f"{len(dataset.modalities)} ({', '.join(dataset.modalities) or 'none'}): it would equal the "
                "content model; leave it out."
            )
        if not is_available(name):
            raise RecsysError(
                f"Model {name!r} is registered but its module {spec.module} is not installed "
                "in this checkout; leave it out of --models."
            )


def ranking_description(mask_valid: bool, refit: bool) -> str:
    """How the test ranking was made, for the protocol line of every table."""
    if refit:
        return "models refit on train+validation; train and validation items excluded from the test ranking"
    if mask_valid:
        return "train and validation items excluded from the test ranking (RecBole)"
    return "train items excluded from the test ranking"


def _warnings(split: Split) -> list[str]:
    out = []
    users = split.stats()["test_users"]
    if users < MIN_TEST_USERS:
        out.append(
            f"only {users} test user(s) under the {split.protocol} protocol: figures this small cannot rank "
            "models (a single user moves Recall@K by 1/users); use a larger dataset"
        )
    if split.train.n_users < 3:
        out.append(f"only {split.train.n_users} user(s): collaborative models have nobody to learn from")
    return out


class _Teller:
    """Sends one model's :class:`ModelProgress` events, carrying the latest validation recall forward."""

    def __init__(self, callback: ProgressCallback | None, model: str, index: int, total: int) -> None:
        self.callback, self.model, self.index, self.total = callback, model, index, total
        self.valid_recall: float | None = None

    def __call__(self, phase: str, **fields: object) -> None:
        if fields.get("valid_recall") is not None:
            self.valid_recall = fields["valid_recall"]  # type: ignore[assignment]
        elif phase == "fit":
            self.valid_recall = None
        fields["valid_recall"] = self.valid_recall
        if self.callback is not None:
            self.callback(ModelProgress(self.model, self.index, self.total, phase, **fields))


def _fit(
    name: str,
    data: TrainData,
    tell: _Teller,
    overrides: dict[str, object] | None = None,
    refit: bool = False,
) -> tuple[Recommender, float]:
    """Fit one model in the train thread role, forwarding its epochs as progress events."""
    model = create_model(name, **(overrides or {}))
    tell("fit", refit=refit)

    def on_epoch(epoch: int, epochs: int, valid_recall: float | None) -> None:
        tell("epoch", epoch=epoch, epochs=epochs, valid_recall=valid_recall, refit=refit)

    t0 = time.perf_counter()
    with use_threads("train"), epoch_listener(on_epoch):  # numpy / scipy / implicit fits too, not only torch
        model.fit(data)
    return model, time.perf_counter() - t0


def with_modalities(data: TrainData, modalities: Sequence[str] | None) -> TrainData:
    """``data`` with only ``modalities``' item features (all of them when None)."""
    if modalities is None:
        return data
    return dataclasses.replace(data, item_features={m: data.item_features[m] for m in modalities})


def _run_model(
    name: str,
    split: Split,
    ks: Sequence[int],
    features: np.ndarray | None,
    tell: _Teller,
    mask_valid: bool,
    refit: bool,
    overrides: dict[str, object] | None = None,
) -> ModelResult:
    data = with_modalities(split.train, modality_subset(name))
    model, fit_s = _fit(name, data, tell, overrides)
    exclude = split.train.train
    if refit or mask_valid:
        exclude = (split.train.train + split.train.valid).tocsr()
        exclude.data[:] = 1.0
    if refit:
        chosen = model.refit_overrides()
        both = TrainData(
            train=exclude,
            valid=sp.csr_matrix(exclude.shape, dtype=np.float32),
            item_features=data.item_features,
            seed=split.train.seed,
        )
        model, refit_s = _fit(name, both, tell, {**(overrides or {}), **chosen}, refit=True)
        fit_s += refit_s
    metrics, per_user, score_s = score_split(model, split, ks, features, exclude=exclude)
    info = jsonable(model.extra_info())
    if refit:
        info = {**info, "refit_with": jsonable(chosen)}  # what validation chose, frozen for the refit
    description = spec_for(name).description
    return ModelResult(name, description, round(fit_s, 3), round(score_s, 3), metrics, info, per_user)


def evaluate(
    dataset: InteractionDataset,
    protocol: str | None = None,
    models: Sequence[str] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    split: Split | None = None,
    *,
    mask_valid: bool = False,
    refit: bool = False,
    filters: Filters | None = None,
    reference_check: bool = False,
    on_progress: ProgressCallback | None = None,
    searched: Mapping[str, SearchResult] | None = None,
) -> Results:
    """Fit and evaluate ``models`` (registry names; all available ones when None) on one protocol.

    ``protocol`` None: :func:`~recsys.lab.protocols.default_protocol` (the dataset's own split when
    it has one). ``filters`` (rating threshold, k-core) apply before splitting. ``mask_valid``
    excludes validation items from the test ranking as RecBole does; ``refit`` fits each model
    again on train + validation. ``reference_check`` adds our BPR and implicit's BPR at matched
    hyper-parameters (:mod:`recsys.lab.sanity`). ``progress`` gets one line per model;
    ``on_progress`` gets :class:`~recsys.lab.progress.ModelProgress` events, epoch by epoch.
    ``searched`` (from :func:`recsys.lab.search.search_models`): the models it names run with the
    setting their validation search chose, and their results keep the search under
    ``extra_info["search"]``.
    """
    from recsys.lab.sanity import matched_settings, reference_pair

    t_start = time.perf_counter()
    ks = check_ks(ks)
    seed = check_seed(seed)
    filters = filters or Filters()
    if split is None:
        dataset = apply_filters(dataset, filters)
    names = list(models) if models is not None else default_models(dataset.modalities)
    check_models(dataset, names)
    pair = reference_pair() if reference_check else []
    split = split or make_split(dataset, protocol or default_protocol(dataset), seed=seed)
    features = diversity_features(dataset)
    say = progress or (lambda _msg: None)
    jobs = [(name, name, None) for name in names] + pair
    results: list[ModelResult] = []
    for i, (label, name, overrides) in enumerate(jobs, 1):
        t_model = time.perf_counter()
        tell = _Teller(on_progress, label, i, len(jobs))
        say(f"[{i}/{len(jobs)}] fitting {label} ({split.protocol})")
        found = searched.get(name) if searched and overrides is None else None
        chosen = found.chosen if found is not None else overrides
        result = _run_model(name, split, ks, features, tell, mask_valid, refit, chosen)
        result.name = label
        if found is not None:
            result.extra_info["search"] = jsonable(found.record())
        if overrides is not None:
            result.description += f", matched: {matched_settings()}"
        results.append(result)
        recall = result.metrics["all"].get(f"recall@{20 if 20 in ks else ks[0]}")
        tell("done", recall=recall, seconds=time.perf_counter() - t_model)
        recalls = ", ".join(f"recall@{k} {result.metrics['all'].get(f'recall@{k}', float('nan')):.4f}" for k in ks)
        say(f"[{i}/{len(jobs)}] {label}: fit {result.fit_seconds:.1f}s, {recalls}")
    description = split.description + "; " + ranking_description(mask_valid, refit)
    if filters.active:
        description = filters.describe() + "; " + description
    return Results(
        dataset=jsonable(dataset.summary()),
        protocol=split.protocol,
        description=description,
        seed=seed,
        ks=list(ks),
        split=split.stats(),
        segments=list(_segments(split)),
        models=results[: len(names)],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        total_seconds=round(time.perf_counter() - t_start, 3),
        options={
            "mask_valid": bool(mask_valid or refit),
            "refit": bool(refit),
            "min_rating": filters.min_rating,
            "k_core": filters.k_core,
        },
        environment=environment(),
        warnings=_warnings(split),
        reference=results[len(names) :],
    )


def results_record(
    runs: Sequence[Results],
    summaries: Sequence[object] = (),
    meta: dict[str, object] | None = None,
    fusion: Sequence[object] = (),
) -> dict[str, object]:
    """The results file's content: runs, ``summaries`` (objects with ``to_dict``, e.g.
    :class:`recsys.lab.stats.SeedSummary`) under ``"summaries"``, the fusion verdicts
    (:class:`recsys.lab.fusiongain.FusionGain`, with the paired tests the file cannot recompute)
    under ``"fusion_gain"``, and ``meta`` (what made the file: the command that regenerates it, its
    seeds) under ``"meta"``."""
    firsts = {}
    for r in runs:
        firsts.setdefault((str(r.dataset.get("name")), r.protocol), r)
    first_ids = {id(r) for r in firsts.values()}
    # Per-seed charts read the first seed's run of each protocol; later seeds keep their figures and settings.
    record: dict[str, object] = {"format": RESULTS_FORMAT, "runs": [r.to_dict(id(r) in first_ids) for r in runs]}
    if summaries:
        record["summaries"] = [s.to_dict() for s in summaries]
    if fusion:
        record["fusion_gain"] = jsonable([f.to_dict() for f in fusion])
    if meta:
        record["meta"] = jsonable(meta)
    return record


def save_results(
    path: str | Path,
    runs: Sequence[Results],
    summaries: Sequence[object] = (),
    meta: dict[str, object] | None = None,
    fusion: Sequence[object] = (),
) -> Path:
    """Write :func:`results_record` atomically as one results JSON file."""
    return write_json(path, results_record(runs, summaries, meta, fusion), compact=True)


def read_results_json(source: str | Path | bytes) -> dict[str, object]:
    """A results file's whole record (path or its bytes), its format checked."""
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        data = json.loads(raw)
    except FileNotFoundError as exc:
        raise RecsysError(f"Results file {source} does not exist.") from exc
    except IsADirectoryError as exc:
        raise RecsysError(f"Results file {source} is a folder, not a file.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecsysError(f"Results file is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise RecsysError(f"Not a lab results file (expected format {RESULTS_FORMAT!r}).")
    if not isinstance(data.get("runs"), list):
        raise RecsysError("Not a lab results file (no list of runs).")
    return data


def load_results(source: str | Path | bytes) -> list[Results]:
    """Read a results file's runs (path or its bytes)."""
    return [Results.from_dict(r) for r in read_results_json(source)["runs"]]
