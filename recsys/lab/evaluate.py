"""Evaluation runner: fit every model on one split, rank for the test users, report metrics.

Every model is scored the same way: full ranking over the split's candidate items with the
user's training items set to ``-inf``; metrics per *segment* (``all`` candidates, and ``warm`` /
``cold`` items separately when the test set holds both), each figure labelled with the split's
protocol description. Results serialise to JSON (``{"format": ..., "runs": [...]}``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.atomic import write_json
from recsys.datasets import InteractionDataset
from recsys.errors import DatasetError, RecsysError
from recsys.lab.metrics import MetricAccumulator, unit_rows
from recsys.lab.protocols import Split, make_split
from recsys.lab.registry import create_model, default_models, is_available, spec_for
from recsys.threads import use_threads

RESULTS_FORMAT = "recsys-lab-results/1"
DEFAULT_KS = (10, 20, 50)
TABLE_METRICS = ("recall", "ndcg")


@dataclass
class ModelResult:
    name: str
    description: str
    fit_seconds: float
    score_seconds: float
    metrics: dict[str, dict[str, float]]  # segment -> "metric@k" -> value
    extra_info: dict[str, object] = field(default_factory=dict)


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

    def to_dict(self) -> dict[str, object]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Results:
        try:
            models = [ModelResult(**m) for m in d["models"]]
            return cls(**{**d, "models": models})
        except (KeyError, TypeError) as exc:
            raise RecsysError(f"Not a lab results record ({exc}).") from exc

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.name == name)

    def table(self, segment: str = "all", metrics: Sequence[str] = TABLE_METRICS) -> str:
        """A printable model x metric table for one segment, with fit time."""
        import pandas as pd

        cols = [f"{m}@{k}" for m in metrics for k in self.ks]
        k_mid = 20 if 20 in self.ks else self.ks[0]
        cols += [f"precision@{k_mid}", f"map@{k_mid}", f"coverage@{k_mid}", f"diversity@{k_mid}"]
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


def _jsonable(obj: object) -> object:
    """Numpy values and arrays to plain JSON types (NaN/inf to None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch tensors without importing torch
        return _jsonable(obj.tolist())
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
    model, split: Split, ks: Sequence[int], features: np.ndarray | None, batch_size: int = 512
) -> tuple[dict[str, dict[str, float]], float]:
    """Metrics per segment for a fitted model; returns (metrics, seconds spent scoring).

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
    train = split.train.train
    for start in range(0, len(test_users), batch_size):
        users = test_users[start : start + batch_size]
        t0 = time.perf_counter()
        scores = np.asarray(model.score(users), dtype=np.float32)
        spent += time.perf_counter() - t0
        if scores.shape != (len(users), n_items):
            raise RuntimeError(f"{model.name}.score returned shape {scores.shape}, expected {(len(users), n_items)}.")
        scores = np.nan_to_num(scores, nan=-np.inf)[:, perm]
        seen = train[users].toarray()[:, perm] > 0
        for seg, mask in segments.items():
            s = scores.copy()
            s[seen] = -np.inf
            s[:, ~mask[perm]] = -np.inf
            accs[seg].add(s, restricted[seg][users])
    return {seg: acc.result() for seg, acc in accs.items()}, spent


def evaluate(
    dataset: InteractionDataset,
    protocol: str = "given",
    models: Sequence[str] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    split: Split | None = None,
) -> Results:
    """Fit and evaluate ``models`` (registry names; all available ones when None) on one protocol."""
    t_start = time.perf_counter()
    names = list(models) if models is not None else default_models(dataset.modalities)
    if not names:
        raise RecsysError("No models to evaluate.")
    if any(k < 1 for k in ks):
        raise RecsysError(f"Cut-offs must be positive integers, got {list(ks)}.")
    for name in names:  # fail before any training on an unknown name, a missing module or features
        if spec_for(name).needs_features and not dataset.item_features:
            raise DatasetError(f"Model {name!r} needs item features, but dataset {dataset.name} has none.")
        if not is_available(name):
            raise RecsysError(
                f"Model {name!r} is registered but its module {spec_for(name).module} is not installed "
                "in this checkout; leave it out of --models."
            )
    split = split or make_split(dataset, protocol, seed=seed)
    features = diversity_features(dataset)
    say = progress or (lambda _msg: None)
    results: list[ModelResult] = []
    for i, name in enumerate(names, 1):
        model = create_model(name)
        say(f"[{i}/{len(names)}] fitting {name} ({split.protocol})")
        t0 = time.perf_counter()
        with use_threads("train"):  # numpy / scipy / implicit fits too, not only the torch ones
            model.fit(split.train)
        fit_s = time.perf_counter() - t0
        metrics, score_s = score_split(model, split, ks, features)
        results.append(
            ModelResult(
                name,
                spec_for(name).description,
                round(fit_s, 3),
                round(score_s, 3),
                metrics,
                _jsonable(model.extra_info()),
            )
        )
        recalls = ", ".join(f"recall@{k} {metrics['all'].get(f'recall@{k}', float('nan')):.4f}" for k in sorted(ks))
        say(f"[{i}/{len(names)}] {name}: fit {fit_s:.1f}s, {recalls}")
    return Results(
        dataset=_jsonable(dataset.summary()),
        protocol=split.protocol,
        description=split.description,
        seed=seed,
        ks=sorted(int(k) for k in ks),
        split=split.stats(),
        segments=list(_segments(split)),
        models=results,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        total_seconds=round(time.perf_counter() - t_start, 3),
    )


def save_results(path: str | Path, runs: Sequence[Results]) -> Path:
    """Write runs atomically as one results JSON file."""
    return write_json(path, {"format": RESULTS_FORMAT, "runs": [r.to_dict() for r in runs]})


def load_results(source: str | Path | bytes) -> list[Results]:
    """Read a results JSON file (path or its bytes)."""
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        data = json.loads(raw)
    except FileNotFoundError as exc:
        raise RecsysError(f"Results file {source} does not exist.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecsysError(f"Results file is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise RecsysError(f"Not a lab results file (expected format {RESULTS_FORMAT!r}).")
    return [Results.from_dict(r) for r in data["runs"]]
