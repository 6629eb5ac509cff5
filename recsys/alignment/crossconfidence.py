"""Does a match confidence hold on a catalogue nobody fitted it on? Calibration across catalogues.

For every split of :class:`~recsys.alignment.crosscatalogue.CrossCatalogue` ("train on the others,
test on the held-out one") the calibration is fitted on scores the training sources give *out of
sample*: the inner leave-one-source-out heads (each scores a training source it never saw, with the
training text and bridge weight the split chose), so the fit sees the scores a new catalogue gets,
not the flattering ones of a head on its own training data. It is then measured on the held-out
source with the head trained on all training sources, in both directions:

* ``text->image``: each distinct title of the held-out gallery as the query, its images as items;
* ``image->text``: each image as the query, the gallery's item texts ("title. description") as items;

relevant: the item carries the query's title (:mod:`recsys.alignment.confidence` says why). Beside
the per-query standardised score it reports the raw cosine mapped the same way (Platt, fitted on the
same pairs) and the training base rate as a constant guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recsys.alignment.confidence import (
    REFERENCE_SAMPLE,
    SCORE_KINDS,
    TOP_K,
    Calibration,
    CalibrationPairs,
    Platt,
    aligner_signature,
    calibration_pairs,
    calibration_report,
    fit_platt,
)
from recsys.alignment.crosscatalogue import CrossCatalogue, Encode, SourceData, title_labels
from recsys.errors import InputError

DIRECTIONS = ("text->image", "image->text")


def direction_pairs(vectors: np.ndarray, data: SourceData, encode: Encode) -> dict[str, CalibrationPairs]:
    """Calibration pairs of aligned item images ``vectors`` against ``data``'s texts, per direction."""
    titles, tlab = title_labels(data.titles)
    forward = encode(titles) @ vectors.T
    relevant = np.arange(len(titles))[:, None] == tlab[None, :]
    backward = vectors @ encode(data.indexed_texts()).T
    same = (tlab[:, None] == tlab[None, :]) & (tlab[:, None] >= 0)
    return {"text->image": calibration_pairs(forward, relevant), "image->text": calibration_pairs(backward, same)}


def fit_direction(pairs: CalibrationPairs) -> dict[str, Platt]:
    """A Platt fit per score kind (:data:`~recsys.alignment.confidence.SCORE_KINDS`)."""
    return {kind: fit_platt(pairs.scores(kind), pairs.relevant, score=kind) for kind in SCORE_KINDS}


def measure(fits: dict[str, Platt], base_rate: float, pairs: CalibrationPairs) -> dict[str, Any]:
    """ECE / Brier of each fitted map on held-out ``pairs``, and of the constant base-rate guess."""
    out = {kind: calibration_report(fits[kind](pairs.scores(kind)), pairs.relevant) for kind in fits}
    out["base_rate"] = calibration_report(np.full(len(pairs), base_rate), pairs.relevant)
    return out


def _merge(parts: Sequence[dict[str, CalibrationPairs]]) -> dict[str, CalibrationPairs]:
    out = {d: CalibrationPairs() for d in DIRECTIONS}
    for part in parts:
        out = {d: out[d] + part[d] for d in DIRECTIONS}
    return out


def _evaluate(
    fit_on: dict[str, CalibrationPairs], test: dict[str, CalibrationPairs]
) -> dict[str, dict[str, Any]]:
    out = {}
    for d in DIRECTIONS:
        fits = fit_direction(fit_on[d])
        out[d] = {
            "fit": {k: p.to_json() for k, p in fits.items()},
            "fit_pairs": len(fit_on[d]),
            "fit_relevant_rate": float(np.mean(fit_on[d].relevant)),
            "test": measure(fits, float(np.mean(fit_on[d].relevant)), test[d]),
        }
    return out


def calibration_split(cross: CrossCatalogue, test: str) -> dict[str, Any]:
    """Fit on the training sources' out-of-sample scores, measure on ``test`` (see the module docstring)."""
    train = [n for n in cross.sources if n != test]
    choice = cross.select(train)
    text_field, weight = choice["text_field"], choice["bridge_weight"]
    parts, note = [], "inner leave-one-source-out scores of the training sources"
    if len(train) >= 2:
        for val in train:
            head = cross.train_head([n for n in train if n != val], text_field)
            data = cross.gallery(val)
            parts.append(direction_pairs(cross.aligned(head, data, weight), data, cross.encode))
    else:  # one training source: its own head's scores, in sample (said in the report)
        data = cross.gallery(train[0])
        vectors = cross.aligned(cross.train_head(train, text_field), data, weight)
        parts.append(direction_pairs(vectors, data, cross.encode))
        note = "in-sample scores of the only training source (no inner split possible)"
    data = cross.gallery(test)
    held = direction_pairs(cross.aligned(cross.train_head(train, text_field), data, weight), data, cross.encode)
    return {
        "test": test,
        "train": train,
        "aligner": f"ensemble (text={text_field}, w_bridge={weight:g}, chosen)",
        "fitted_on": note,
        "directions": _evaluate(_merge(parts), held),
    }


def fixed_aligner_pairs(
    cross: CrossCatalogue, transform: Callable[[np.ndarray], np.ndarray], names: Sequence[str]
) -> dict[str, dict[str, CalibrationPairs]]:
    """Calibration pairs of an already trained aligner (a transform of embedding+class_proba) per source."""
    out = {}
    for name in names:
        data = cross.gallery(name)
        vectors = transform(np.concatenate([data.embedding, data.class_proba], axis=1))
        out[name] = direction_pairs(vectors, data, cross.encode)
    return out


def fixed_aligner_splits(
    cross: CrossCatalogue, transform: Callable[[np.ndarray], np.ndarray], trained_on: set[str]
) -> list[dict[str, Any]]:
    """A shipped aligner's calibration across catalogues: for each source, fitted on the sources that
    are neither it nor one the aligner trained on (their scores are out of sample), measured on it.
    A source the aligner trained on is measured too, marked: its scores are in sample."""
    pairs = fixed_aligner_pairs(cross, transform, list(cross.sources))
    out = []
    for test in cross.sources:
        fit_names = [n for n in cross.sources if n != test and n not in trained_on]
        if not fit_names:
            continue
        out.append(
            {
                "test": test,
                "fitted_on": fit_names,
                "aligner_trained_on_test": test in trained_on,
                "directions": _evaluate(_merge([pairs[n] for n in fit_names]), pairs[test]),
            }
        )
    return out


def fit_calibration(
    cross: CrossCatalogue, aligner: Any, trained_on: set[str], text_encoder_id: str
) -> Calibration:
    """The calibration to ship with ``aligner`` (taking embedding+class_proba): a z-score Platt fit
    per direction on every source the aligner did not train on (its scores there are out of sample)."""
    names = [n for n in cross.sources if n not in trained_on]
    if not names:
        raise InputError(f"Every source ({', '.join(cross.sources)}) trained the aligner; none is left to fit on.")
    pairs = _merge(list(fixed_aligner_pairs(cross, aligner.transform, names).values()))
    fits = {d: fit_platt(pairs[d].z, pairs[d].relevant, score="z") for d in DIRECTIONS}
    meta = {
        "aligner": aligner.describe(),
        "fitted_on": names,
        "relevance": "instance: the item carries the query's title",
        "top_k": TOP_K,
        "reference": f"the query's similarities to the gallery (at most {REFERENCE_SAMPLE} items)",
        "pair_counts": {d: len(pairs[d]) for d in DIRECTIONS},
        "relevant_rate": {d: float(np.mean(pairs[d].relevant)) for d in DIRECTIONS},
    }
    return Calibration(
        aligner.source_modality, aligner.source_encoder_id, text_encoder_id, aligner_signature(aligner), fits, meta
    )
