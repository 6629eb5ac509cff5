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
    Calibration,
    CalibrationPairs,
    calibration_pairs,
    evaluate_fits,
    merge_pairs,
    shipped_calibration,
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
        "directions": evaluate_fits(merge_pairs(parts), held),
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
                "directions": evaluate_fits(merge_pairs([pairs[n] for n in fit_names]), pairs[test]),
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
    pairs = merge_pairs(list(fixed_aligner_pairs(cross, aligner.transform, names).values()))
    meta = {"fitted_on": names, "relevance": "instance: the item carries the query's title"}
    return shipped_calibration(aligner, pairs, text_encoder_id, meta)
