"""Calibrated confidence of a cross-modal match: P(relevant) from a similarity, on a scale that travels.

A raw cosine between a text query and an aligned picture means different things on different
catalogues and aligners: one head puts right matches at 0.6, another at 0.35, and a catalogue of
look-alike icons lifts every score. What travels better is how far an item stands out *for this
query*: the per-query standardised score ``z = (s - mean) / std``, the mean and spread taken over
the query's similarities to a fixed sample of the catalogue (at most :data:`REFERENCE_SAMPLE` items,
all of them in a smaller catalogue). A logistic (Platt) fit maps ``z`` to P(relevant): two numbers,
monotone, smooth where the fitting data thin out, so it ships as a small JSON file.

Relevance used for fitting: **instance**, an item is relevant to a query when it carries the query's
title (compared case- and space-insensitively). A query's relevant items then number one or two in
every catalogue, while a leaf category holds five items in one catalogue and thousands in another
(and an icon set's "category" is its set name), so a category-level P(relevant) would carry each
catalogue's category granularity and could not mean the same across catalogues.

Fitting pairs are each query's top :data:`TOP_K` items: the results the app shows, where the
confidence is read. Queries with no relevant item in the gallery are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import InputError, RecsysError
from recsys.paths import read_format_json

log = logging.getLogger(__name__)

FORMAT = "recsys-confidence/1"
#: Results per query that calibration is fitted and measured on (what a results page shows).
TOP_K = 10
#: Catalogue items the query's mean / std are taken over (a fixed seeded sample past this many).
REFERENCE_SAMPLE = 2048
#: Score kinds a calibration can take: the per-query standardised similarity, or the raw cosine (baseline).
SCORE_KINDS = ("z", "cosine")
#: Probe rows and output directions of an aligner's signature (:func:`aligner_signature`).
SIGNATURE_ROWS, SIGNATURE_DIMS = 4, 8
#: Largest difference between a stored and a computed signature entry that still counts as the same aligner.
SIGNATURE_TOLERANCE = 1e-3


def check_scores(values: Any, what: str = "similarities") -> np.ndarray:
    """``values`` as a non-empty finite float64 array, else :class:`InputError`."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The {what} must be numbers: {exc}") from None
    if arr.size == 0:
        raise InputError(f"No {what} given: the array is empty.")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"The {what} contain NaN or infinite values.")
    return arr


def standardise(scores: Any, reference: Any) -> np.ndarray:
    """``(scores - mean) / std`` with the mean and std of ``reference`` (one query's similarities to
    the reference sample). A reference without spread says nothing about standing out: InputError."""
    ref = check_scores(reference, "reference similarities")
    s = check_scores(scores)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = float(ref.mean()), float(ref.std())
        if ref.size < 2 or not std > 1e-9:
            raise InputError("The reference similarities have no spread; a standardised score is undefined.")
        z = (s - mean) / std
    if not (np.isfinite(mean) and np.isfinite(std) and np.all(np.isfinite(z))):
        raise InputError("The similarities are too large to standardise (similarities lie in [-1, 1]).")
    return z


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@dataclass(frozen=True)
class Platt:
    """P(relevant) = sigmoid(slope * score + intercept) over one score kind (:data:`SCORE_KINDS`)."""

    slope: float
    intercept: float
    score: str = "z"

    def __call__(self, scores: Any) -> np.ndarray:
        """Probabilities in [0, 1] for finite scores; NaN, inf or an empty array raise InputError."""
        x = check_scores(scores, f"{self.score} scores")
        with np.errstate(over="ignore", invalid="ignore"):
            logit = np.nan_to_num(self.slope * x + self.intercept, nan=0.0, posinf=np.inf, neginf=-np.inf)
            return np.clip(_sigmoid(logit), 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {"slope": self.slope, "intercept": self.intercept, "score": self.score}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platt:
        slope, intercept, score = float(data["slope"]), float(data["intercept"]), str(data.get("score", "z"))
        if not (np.isfinite(slope) and np.isfinite(intercept)) or score not in SCORE_KINDS:
            raise RecsysError(f"bad calibration parameters {dict(data)!r}")
        return cls(slope, intercept, score)


def fit_platt(scores: Any, relevant: Any, score: str = "z", ridge: float = 1e-4, iterations: int = 100) -> Platt:
    """Logistic regression of ``relevant`` on ``scores`` (Newton steps, a small ridge on the slope so
    perfectly separated data still give a finite, increasing fit). Needs both outcomes present."""
    x = check_scores(scores, f"{score} scores").reshape(-1)
    y = np.asarray(relevant, dtype=np.float64).reshape(-1)
    if len(y) != len(x):
        raise InputError(f"{len(x)} scores but {len(y)} relevance labels.")
    if y.min() == y.max():
        raise InputError("Calibration needs both relevant and irrelevant pairs; all labels are equal.")
    scale = float(x.std()) or 1.0  # fit on a unit scale (cosines span ~0.3), report on the original
    xs = (x - float(x.mean())) / scale
    base = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    w = np.array([0.0, np.log(base / (1 - base))])  # slope, intercept
    design = np.stack([xs, np.ones_like(xs)], axis=1)
    penalty = np.diag([ridge * len(x), 0.0])
    for _ in range(iterations):
        p = _sigmoid(design @ w)
        grad = design.T @ (p - y) + penalty @ w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope = float(w[0] / scale)
    return Platt(slope, float(w[1] - slope * float(x.mean())), score)


def expected_calibration_error(prob: Any, relevant: Any, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width confidence bins: sum over bins of (share of pairs) x |observed
    relevant rate - mean confidence|. 0 is perfect; a constant base-rate guess also scores low, so
    read it beside :func:`brier_score`."""
    p = check_scores(prob, "confidences").reshape(-1)
    y = np.asarray(relevant, dtype=np.float64).reshape(-1)
    if len(y) != len(p):
        raise InputError(f"{len(p)} confidences but {len(y)} relevance labels.")
    if np.any((p < 0) | (p > 1)):
        raise InputError("Confidences must lie in [0, 1].")
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(float(y[sel].mean()) - float(p[sel].mean()))
    return float(total)


def brier_score(prob: Any, relevant: Any) -> float:
    """Mean squared difference between confidence and outcome (lower is better)."""
    p = check_scores(prob, "confidences").reshape(-1)
    y = np.asarray(relevant, dtype=np.float64).reshape(-1)
    if len(y) != len(p):
        raise InputError(f"{len(p)} confidences but {len(y)} relevance labels.")
    return float(np.mean((p - y) ** 2))


@dataclass
class CalibrationPairs:
    """(z, raw cosine, relevant?) of each query's top-k items: what a calibration is fitted on."""

    z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cosine: np.ndarray = field(default_factory=lambda: np.zeros(0))
    relevant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.relevant)

    def __add__(self, other: CalibrationPairs) -> CalibrationPairs:
        return CalibrationPairs(
            np.concatenate([self.z, other.z]),
            np.concatenate([self.cosine, other.cosine]),
            np.concatenate([self.relevant, other.relevant]),
        )

    def scores(self, kind: str) -> np.ndarray:
        return self.z if kind == "z" else self.cosine


def calibration_pairs(
    scores: np.ndarray, relevant: np.ndarray, k: int = TOP_K, reference: np.ndarray | None = None
) -> CalibrationPairs:
    """Each query row's top-``k`` items of ``scores`` (queries x gallery) with their standardised and
    raw scores and relevance; the mean / std come from the row itself, or from ``reference`` columns
    (indices of the reference sample). Rows without a relevant item are skipped."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    keep = relevant.any(axis=1)
    scores, relevant = scores[keep], relevant[keep]
    if scores.size == 0:
        return CalibrationPairs()
    ref = scores if reference is None else scores[:, reference]
    mean, std = ref.mean(axis=1, keepdims=True), ref.std(axis=1, keepdims=True)
    ok = std[:, 0] > 1e-9
    scores, relevant, mean, std = scores[ok], relevant[ok], mean[ok], std[ok]
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    raw = np.take_along_axis(scores, top, axis=1)
    return CalibrationPairs(
        ((raw - mean) / std).reshape(-1), raw.reshape(-1), np.take_along_axis(relevant, top, axis=1).reshape(-1)
    )


def ranking_auc(prob: Any, relevant: Any) -> float | None:
    """P(a relevant pair gets a higher confidence than an irrelevant one), ties counting half (None
    without both kinds): how well the confidence separates, which ECE and Brier do not isolate."""
    from scipy.stats import rankdata

    p = check_scores(prob, "confidences").reshape(-1)
    y = np.asarray(relevant, dtype=bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_report(prob: np.ndarray, relevant: np.ndarray) -> dict[str, Any]:
    """ECE, Brier, AUC, mean confidence and observed relevant rate of a set of pairs."""
    return {
        "ece": expected_calibration_error(prob, relevant),
        "brier": brier_score(prob, relevant),
        "auc": ranking_auc(prob, relevant),
        "mean_confidence": float(np.mean(prob)),
        "relevant_rate": float(np.mean(relevant)),
        "pairs": int(len(relevant)),
    }


# -- fitting and measuring per pair name ---------------------------------------------------------
# Shared by the calibration across catalogues (crossconfidence.py) and on one catalogue's held-out
# folds (heldoutconfidence.py); pair names are keys, e.g. "text->image" or "audio->text".


def fit_direction(pairs: CalibrationPairs) -> dict[str, Platt]:
    """A Platt fit per score kind (:data:`SCORE_KINDS`) on one pair name's calibration pairs."""
    return {kind: fit_platt(pairs.scores(kind), pairs.relevant, score=kind) for kind in SCORE_KINDS}


def measure(fits: Mapping[str, Platt], base_rate: float, pairs: CalibrationPairs) -> dict[str, Any]:
    """ECE / Brier of each fitted map on held-out ``pairs``, and of the constant base-rate guess."""
    out = {kind: calibration_report(fits[kind](pairs.scores(kind)), pairs.relevant) for kind in fits}
    out["base_rate"] = calibration_report(np.full(len(pairs), base_rate), pairs.relevant)
    return out


def merge_pairs(parts: Sequence[Mapping[str, CalibrationPairs]]) -> dict[str, CalibrationPairs]:
    """Per pair name, the calibration pairs of every part together (names of the first part)."""
    names = list(parts[0]) if parts else []
    out = {name: CalibrationPairs() for name in names}
    for part in parts:
        out = {name: out[name] + part[name] for name in names}
    return out


def evaluate_fits(
    fit_on: Mapping[str, CalibrationPairs], test: Mapping[str, CalibrationPairs]
) -> dict[str, dict[str, Any]]:
    """Per pair name: the fits on ``fit_on`` and how they (and its base rate) do on ``test``."""
    out = {}
    for name, pairs in fit_on.items():
        fits = fit_direction(pairs)
        out[name] = {
            "fit": {k: p.to_json() for k, p in fits.items()},
            "fit_pairs": len(pairs),
            "fit_relevant_rate": float(np.mean(pairs.relevant)),
            "test": measure(fits, float(np.mean(pairs.relevant)), test[name]),
        }
    return out


# -- the shipped file --------------------------------------------------------------------------


def aligner_signature(aligner: Any) -> list[list[float]]:
    """What identifies an aligner's behaviour: its outputs for fixed probe inputs, seen along fixed
    directions (``SIGNATURE_ROWS x SIGNATURE_DIMS`` numbers). Two aligners with one signature map
    alike, whatever their files are called; a retrained head changes it."""
    rng = np.random.default_rng(20_251_126)
    probe = rng.random((SIGNATURE_ROWS, int(aligner.input_dim))).astype(np.float32)
    out = np.asarray(aligner.transform(probe), dtype=np.float64)
    directions = np.random.default_rng(11).normal(size=(out.shape[1], SIGNATURE_DIMS))
    return np.round(out @ directions, 6).tolist()


@dataclass(frozen=True)
class Calibration:
    """Confidence calibrations of one aligner (for one image / audio encoder and one text encoder),
    per cross-modal pair name (``text->image``, ``image->text``)."""

    modality: str
    source_encoder_id: str
    text_encoder_id: str
    signature: list[list[float]]
    pairs: dict[str, Platt]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.meta,
            "modality": self.modality,
            "source_encoder_id": self.source_encoder_id,
            "text_encoder_id": self.text_encoder_id,
            "aligner_signature": self.signature,
            "pairs": {name: p.to_json() for name, p in sorted(self.pairs.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        known = {"modality", "source_encoder_id", "text_encoder_id", "aligner_signature", "pairs"}
        return cls(
            str(data["modality"]),
            str(data["source_encoder_id"]),
            str(data["text_encoder_id"]),
            [[float(v) for v in row] for row in data["aligner_signature"]],
            {str(name): Platt.from_json(p) for name, p in data["pairs"].items()},
            {k: v for k, v in data.items() if k not in known},
        )

    def matches(self, aligner: Any, text_encoder_id: str) -> str | None:
        """None when this calibration belongs to ``aligner`` and the text encoder, else why not."""
        if self.source_encoder_id != getattr(aligner, "source_encoder_id", None):
            return f"fitted for encoder {self.source_encoder_id}, not {getattr(aligner, 'source_encoder_id', None)}"
        if self.text_encoder_id != text_encoder_id:
            return f"fitted for text encoder {self.text_encoder_id}, not {text_encoder_id}"
        try:
            mine = np.asarray(self.signature, dtype=np.float64)
            theirs = np.asarray(aligner_signature(aligner), dtype=np.float64)
        except (AttributeError, TypeError, ValueError, RecsysError) as exc:
            return f"the aligner's signature cannot be computed ({exc})"
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, atol=SIGNATURE_TOLERANCE):
            return "fitted for another aligner (its signature differs; was the head retrained?)"
        return None


def write_calibrations(path: str | Path, calibrations: Sequence[Calibration]) -> Path:
    """Write calibrations atomically as one JSON file."""
    from recsys import atomic

    atomic.write_json(path, {"format": FORMAT, "calibrations": [c.to_json() for c in calibrations]})
    return Path(path)


def shipped_calibration(
    aligner: Any, pairs: Mapping[str, CalibrationPairs], text_encoder_id: str, meta: Mapping[str, Any]
) -> Calibration:
    """The calibration to ship with ``aligner``: a z-score Platt fit per pair name on ``pairs``
    (scores the aligner gave out of sample), with the fitting setting and ``meta`` recorded."""
    fits = {name: fit_platt(p.z, p.relevant, score="z") for name, p in pairs.items()}
    recorded = {
        "aligner": aligner.describe(),
        **meta,
        "top_k": TOP_K,
        "reference": f"the query's similarities to the gallery (at most {REFERENCE_SAMPLE} items)",
        "pair_counts": {name: len(p) for name, p in pairs.items()},
        "relevant_rate": {name: float(np.mean(p.relevant)) for name, p in pairs.items()},
    }
    signature = aligner_signature(aligner)
    return Calibration(
        aligner.source_modality, aligner.source_encoder_id, text_encoder_id, signature, fits, recorded
    )


def update_calibrations(path: str | Path, calibrations: Sequence[Calibration]) -> Path:
    """Write ``calibrations`` into the file at ``path``, keeping its entries for other aligners: an
    entry for the same modality, source encoder and text encoder is replaced (a refit or a retrained
    head), every other entry is written back unchanged. A missing file is created; a damaged one
    raises RecsysError rather than being overwritten."""
    path = Path(path)
    kept = read_calibrations(path) if path.exists() else []
    keys = {(c.modality, c.source_encoder_id, c.text_encoder_id) for c in calibrations}
    kept = [c for c in kept if (c.modality, c.source_encoder_id, c.text_encoder_id) not in keys]
    return write_calibrations(path, [*kept, *calibrations])


def read_calibrations(path: str | Path) -> list[Calibration]:
    """Every calibration in a confidence file; a missing, unreadable or malformed one raises RecsysError."""
    path = Path(path)
    data = read_format_json(
        path,
        FORMAT,
        RecsysError,
        missing="no confidence calibration file at {path}",
        unreadable="the confidence calibration file {path} cannot be read: {exc}",
        wrong="{path} is not a {fmt} file",
    )
    try:
        return [Calibration.from_json(c) for c in data["calibrations"]]
    except (KeyError, TypeError, ValueError, AttributeError, RecsysError) as exc:
        raise RecsysError(f"the confidence calibration file {path} is malformed: {exc}") from None


def find_calibrations(path: str | Path, aligners: Mapping[str, Any], text_encoder_id: str) -> dict[str, Platt]:
    """Pair name -> calibration for the engine's aligners (modality -> aligner) from the file at ``path``.

    Never raises: a missing or damaged file, or one fitted for other encoders or aligners, gives no
    confidence for the pairs concerned and one log line saying why.
    """
    try:
        calibrations = read_calibrations(path)
    except RecsysError as exc:
        log.info("no match confidence: %s", exc)
        return {}
    out: dict[str, Platt] = {}
    for modality, aligner in aligners.items():
        candidates = [c for c in calibrations if c.modality == modality]
        reasons = [c.matches(aligner, text_encoder_id) for c in candidates]
        found = next((c for c, why in zip(candidates, reasons, strict=True) if why is None), None)
        if found is None:
            why = "; ".join(r for r in reasons if r) or "none for this modality"
            log.info("no %s match confidence from %s: %s", modality, path, why)
            continue
        out.update({name: p for name, p in found.pairs.items() if modality in name.split("->")})
    return out
