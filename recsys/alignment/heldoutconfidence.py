"""Match confidence of a head trained on one catalogue, fitted on that catalogue's held-out folds.

The shipped audio head trained on every demo clip, and no other source of (sound, description)
pairs exists that it never saw, so a calibration fitted on its own scores would learn the
flattering in-sample cosines. What is out of sample is the grouped k-fold of
:mod:`recsys.alignment.heldout`: every clip scored by a head, trained in the shipped setting, that
never saw it (nor any clip sharing its description or its exact sound). The calibration is fitted on
those scores, in both directions of the pair (``m`` the media modality):

* ``text->m``: each distinct description as the query, the catalogue's clips as items;
* ``m->text``: each clip as the query, the catalogue's item texts as the engine indexes them
  ("title. description", every item with a text) as items;

relevant: the item carries the query's description (instance relevance, as
:mod:`recsys.alignment.confidence` defines it, with descriptions in the role of titles: they are what
the head trained on and what the folds keep together). Each query's mean / std come from its own row
(the whole gallery), as the engine's reference sample is on a catalogue of under 2,048 items.

How well a calibration fitted this way holds on clips it was not fitted on is measured by rotating
the folds (:func:`rotated_report`): fit on the other folds' pairs, measure on one, pooled over all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from recsys.alignment.confidence import (
    CalibrationPairs,
    Platt,
    calibration_pairs,
    calibration_report,
    evaluate_fits,
    merge_pairs,
)
from recsys.errors import InputError
from recsys.vectors import unit_vectors

Encode = Callable[[list[str]], np.ndarray]


def pair_names(modality: str) -> tuple[str, str]:
    """The engine's names of the two cross-modal pairs between ``modality`` and text."""
    return f"text->{modality}", f"{modality}->text"


def fold_pairs(
    modality: str,
    vectors: np.ndarray,
    descriptions: Sequence[str],
    gallery_texts: Sequence[str],
    gallery_descriptions: Sequence[str],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    encode: Encode,
) -> list[dict[str, CalibrationPairs]]:
    """Per outer fold, the calibration pairs of its queries in both directions (module docstring).

    ``vectors``: each catalogue pair's out-of-fold aligned media vector; ``descriptions``: its
    description; ``gallery_texts`` / ``gallery_descriptions``: every catalogue item's indexed text and
    description (the media->text gallery); ``splits``: the outer (train, test) rows over the pairs.
    A description's clips lie in one fold (:func:`~recsys.alignment.heldout.leakage_groups`), so each
    text query belongs to the fold that holds its clips.
    """
    if len(gallery_texts) != len(gallery_descriptions):
        raise InputError(f"{len(gallery_texts)} gallery texts but {len(gallery_descriptions)} descriptions.")
    if len(vectors) != len(descriptions):
        raise InputError(f"{len(vectors)} aligned vectors but {len(descriptions)} descriptions.")
    forward_name, backward_name = pair_names(modality)
    vectors = unit_vectors(np.asarray(vectors, dtype=np.float32))
    desc = np.asarray(descriptions, dtype=str)
    queries, inverse = np.unique(desc, return_inverse=True)
    forward = unit_vectors(encode(queries.tolist())) @ vectors.T
    forward_rel = np.arange(len(queries))[:, None] == inverse.reshape(-1)[None, :]
    texts = unit_vectors(encode(list(gallery_texts)))
    gallery_desc = np.asarray(gallery_descriptions, dtype=str)
    out = []
    for _, test in splits:
        mine = forward_rel[:, test].any(axis=1)
        backward = vectors[test] @ texts.T
        backward_rel = desc[test][:, None] == gallery_desc[None, :]
        out.append(
            {
                forward_name: calibration_pairs(forward[mine], forward_rel[mine]),
                backward_name: calibration_pairs(backward, backward_rel),
            }
        )
    return out


def rotated_report(parts: Sequence[Mapping[str, CalibrationPairs]]) -> dict[str, Any]:
    """Fit on every fold but one, measure on that one, for each fold in turn.

    Per pair name: each fold's result (:func:`~recsys.alignment.confidence.evaluate_fits`) and the
    pooled one, the held-out folds' confidences (each from the fit that did not see its fold) taken
    together for every score kind and for the base-rate guess.
    """
    if len(parts) < 2:
        raise InputError(f"Rotating the folds needs at least two folds, got {len(parts)}.")
    folds = []
    pooled: dict[str, dict[str, list[np.ndarray]]] = {}
    labels: dict[str, list[np.ndarray]] = {}
    for k, test in enumerate(parts):
        result = evaluate_fits(merge_pairs([p for j, p in enumerate(parts) if j != k]), test)
        folds.append(result)
        for name, fitted in result.items():
            held = test[name]
            probs = pooled.setdefault(name, {})
            for kind, params in fitted["fit"].items():
                probs.setdefault(kind, []).append(Platt.from_json(params)(held.scores(kind)))
            probs.setdefault("base_rate", []).append(np.full(len(held), fitted["fit_relevant_rate"]))
            labels.setdefault(name, []).append(held.relevant)
    return {
        "folds": folds,
        "pooled": {
            name: {
                kind: calibration_report(np.concatenate(chunks), np.concatenate(labels[name]))
                for kind, chunks in kinds.items()
            }
            for name, kinds in pooled.items()
        },
    }
