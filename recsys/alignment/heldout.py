"""Held-out evaluation of a learned head on one catalogue, optionally with extra training pairs.

Why a module: the alignment benchmark must tell whether pairs from other sources (e.g. sound effects
named by their files, ``scripts/build_sound_catalogue.py``) make the head better *on the catalogue*,
and a gain is only real when no catalogue item it is measured on was trained on, and no choice was
made on the figures it reports. So:

* k-fold over the catalogue's pairs, grouped so items sharing a description or identical media share
  a fold (:func:`leakage_groups`); the extra pairs join every fold's training set, never a test set;
* hyper-parameters (a :class:`Candidate`: head config, and how many times each catalogue pair is
  repeated against the extra ones) are chosen per outer fold on an inner grouped split of that fold's
  training items (:func:`choose`), scored by :func:`selection_score`;
* the cross setting (:func:`cross_source`) trains on the extra pairs alone, chosen on an inner split of
  them, and maps every catalogue item;
* a label-bridge + head ensemble (:func:`out_of_fold_ensemble`) picks its bridge weight (and head
  setting) per outer fold on the same inner split, never on the fold it is measured on.

Heads are trained by a caller-given ``fit(pairs, config) -> transform`` so this module needs no encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.alignment.base import mix
from recsys.alignment.metrics import retrieval_metrics
from recsys.alignment.projection import TrainConfig
from recsys.alignment.training import Pairs
from recsys.errors import InputError
from recsys.vectors import unit_vectors

Transform = Callable[[np.ndarray], np.ndarray]
Fit = Callable[[Pairs, TrainConfig], Transform]


@dataclass(frozen=True)
class Candidate:
    """One hyper-parameter setting: the head's config and the weight of the catalogue's own pairs."""

    config: TrainConfig
    catalogue_repeat: int = 1  # each catalogue pair appears this many times beside the extra pairs

    def label(self) -> str:
        c = self.config
        return f"hidden={c.hidden} epochs={c.epochs} repeat={self.catalogue_repeat}"


@dataclass
class OutOfFold:
    vectors: np.ndarray  # one aligned row per catalogue pair, each from a head that never saw it
    chosen: list[str] = field(default_factory=list)  # per outer fold: the candidate picked on its inner split
    head: np.ndarray | None = None  # ensembles: the head's own out-of-fold rows, before mixing
    weights: list[float] = field(default_factory=list)  # ensembles: per outer fold, the bridge weight picked


def fold_galleries(bridge: np.ndarray, ensemble: OutOfFold) -> list[np.ndarray]:
    """Per outer fold, every pair mapped by that fold's chosen ensemble (its weight on all rows).

    Text->media ranks a fold's queries against the whole gallery; mixing rows from folds with different
    bridge weights puts them on different cosine scales (bridge cosines run higher), so each fold is
    scored against a gallery mixed at its own weight instead.
    """
    if ensemble.head is None:
        raise InputError("fold_galleries needs an ensemble's out-of-fold head rows.")
    return [mix(bridge, ensemble.head, w) for w in ensemble.weights]


def leakage_groups(pairs: Pairs) -> np.ndarray:
    """Connected components of "same description" or "same media content" (identical features).

    Tux Paint reuses one sound (or picture) for several stamps; a held-out item whose exact sound
    was trained on under a sibling's description would leak, so such items share a fold.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(pairs)
    _, by_text = np.unique(np.asarray(pairs.texts, dtype=str), return_inverse=True)
    _, by_media = np.unique(np.ascontiguousarray(pairs.source), axis=0, return_inverse=True)
    rows, cols = [], []
    for labels in (by_text.reshape(-1), by_media.reshape(-1)):
        first: dict[int, int] = {}
        for i, g in enumerate(labels.tolist()):
            rows.append(i)
            cols.append(first.setdefault(g, i))
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def fold_splits(pairs: Pairs, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped k-fold (train rows, test rows) over ``pairs``; :class:`InputError` when too few groups."""
    from sklearn.model_selection import GroupKFold

    groups = leakage_groups(pairs)
    n_groups = len(np.unique(groups))
    if folds < 2 or n_groups < folds:
        raise InputError(f"{folds} folds need at least {max(folds, 2)} groups of pairs; found {n_groups}.")
    return list(GroupKFold(n_splits=folds).split(pairs.source, groups=groups))


def training_set(pairs: Pairs, rows: np.ndarray, extra: Pairs | None, repeat: int = 1) -> Pairs:
    """The catalogue ``rows`` (each ``repeat`` times) followed by every extra pair."""
    own = pairs.subset(np.tile(np.asarray(rows), max(1, repeat)))
    return own if extra is None or len(extra) == 0 else Pairs.concat([own, extra])


def selection_score(vectors: np.ndarray, pairs: Pairs, gallery: Pairs | None = None) -> tuple[float, float]:
    """(mean of media->text and text->media R@10, mean MRR) of aligned ``vectors`` for ``pairs``.

    The text side is the distinct descriptions of ``gallery`` (default: ``pairs``), as their
    embeddings (``Pairs.target``), so scoring needs no text encoder.
    """
    gallery = gallery or pairs
    texts, first = np.unique(np.asarray(gallery.texts, dtype=str), return_index=True)
    queries = gallery.target[first]
    index = {t: i for i, t in enumerate(texts.tolist())}
    rel = np.zeros((len(pairs), len(texts)), dtype=bool)
    for i, t in enumerate(pairs.texts):
        if t in index:
            rel[i, index[t]] = True
    back = retrieval_metrics(vectors @ queries.T, rel)
    fwd = retrieval_metrics(queries @ vectors.T, rel.T)
    return (back["recall@10"] + fwd["recall@10"]) / 2, (back["mrr"] + fwd["mrr"]) / 2


def choose(
    pairs: Pairs,
    rows: np.ndarray,
    extra: Pairs | None,
    candidates: Sequence[Candidate],
    fit: Fit,
    inner_folds: int = 3,
) -> Candidate:
    """The candidate with the best mean :func:`selection_score` over an inner grouped split of ``rows``.

    Only ``rows`` are read (the outer fold's training items): inner test items are scored against
    the descriptions of all of ``rows``; the extra pairs are in every inner training set.
    """
    if len(candidates) == 1:
        return candidates[0]
    inner = pairs.subset(np.asarray(rows))
    splits = fold_splits(inner, inner_folds)
    best, best_score = candidates[0], (-1.0, -1.0)
    for cand in candidates:
        scores = []
        for train, test in splits:
            transform = fit(training_set(inner, train, extra, cand.catalogue_repeat), cand.config)
            scores.append(selection_score(transform(inner.source[test]), inner.subset(test), inner))
        score = tuple(np.mean(scores, axis=0).tolist())
        if score > best_score:
            best, best_score = cand, score
    return best


def out_of_fold(
    pairs: Pairs,
    folds: int,
    fit: Fit,
    candidates: Sequence[Candidate],
    *,
    extra: Pairs | None = None,
    inner_folds: int = 3,
    log: Callable[[str], None] | None = None,
) -> OutOfFold:
    """Aligned vectors for every catalogue pair, each from a head trained on the other folds + ``extra``.

    With several ``candidates`` each outer fold picks one on its own training items (:func:`choose`).
    """
    if not candidates:
        raise InputError("out_of_fold needs at least one candidate setting.")
    out = OutOfFold(np.zeros((len(pairs), pairs.target.shape[1]), dtype=np.float32))
    for k, (train, test) in enumerate(fold_splits(pairs, folds)):
        cand = choose(pairs, train, extra, candidates, fit, inner_folds)
        transform = fit(training_set(pairs, train, extra, cand.catalogue_repeat), cand.config)
        out.vectors[test] = transform(pairs.source[test])
        out.chosen.append(cand.label())
        if log:
            log(f"fold {k + 1}/{folds}: {cand.label()}")
    return out


def cross_source(
    pairs: Pairs, extra: Pairs, fit: Fit, candidates: Sequence[Candidate], *, inner_folds: int = 3
) -> OutOfFold:
    """Every catalogue pair mapped by a head trained on ``extra`` alone (chosen on an inner split of ``extra``)."""
    if len(extra) == 0:
        raise InputError("The cross setting needs extra pairs to train on.")
    configs = list({c.config: Candidate(c.config) for c in candidates}.values())  # repeat means nothing here
    cand = choose(extra, np.arange(len(extra)), None, configs, fit, inner_folds)
    transform = fit(extra, cand.config)
    return OutOfFold(np.asarray(transform(pairs.source), dtype=np.float32), [cand.label()])


def near_duplicates(extra: Pairs, pairs: Pairs, threshold: float = 0.99) -> np.ndarray:
    """Mask of extra pairs whose media features are near-identical (cosine >= ``threshold``) to a catalogue item's.

    Byte-identical clips are dropped when the extra catalogue is built; this catches re-encoded copies,
    which would put a test item's sound into training under another text.
    """
    if len(extra) == 0 or len(pairs) == 0:
        return np.zeros(len(extra), dtype=bool)
    return (unit_vectors(extra.source) @ unit_vectors(pairs.source).T).max(axis=1) >= threshold



def choose_with_bridge(
    pairs: Pairs,
    rows: np.ndarray,
    extra: Pairs | None,
    candidates: Sequence[Candidate],
    fit: Fit,
    bridge: np.ndarray,
    weights: Sequence[float],
    inner_folds: int = 3,
) -> tuple[Candidate, float]:
    """The (head setting, bridge weight) with the best mean :func:`selection_score` of the ensemble over
    an inner grouped split of ``rows``; ``bridge`` holds every pair's label-bridge vector. Each inner
    head is trained once and scored at every weight."""
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise InputError(f"Bridge weights must lie in [0, 1]; got {list(weights)}.")
    rows = np.asarray(rows)
    inner, inner_bridge = pairs.subset(rows), np.asarray(bridge)[rows]
    splits = fold_splits(inner, inner_folds)
    best, best_score = (candidates[0], float(weights[0])), (-1.0, -1.0)
    for cand in candidates:
        heads = [
            fit(training_set(inner, train, extra, cand.catalogue_repeat), cand.config)(inner.source[test])
            for train, test in splits
        ]
        for w in weights:
            scores = [
                selection_score(mix(inner_bridge[test], head, w), inner.subset(test), inner)
                for (_, test), head in zip(splits, heads, strict=True)
            ]
            score = tuple(np.mean(scores, axis=0).tolist())
            if score > best_score:
                best, best_score = (cand, float(w)), score
    return best


def out_of_fold_ensemble(
    pairs: Pairs,
    folds: int,
    fit: Fit,
    candidates: Sequence[Candidate],
    bridge: np.ndarray,
    weights: Sequence[float],
    *,
    extra: Pairs | None = None,
    inner_folds: int = 3,
    log: Callable[[str], None] | None = None,
) -> OutOfFold:
    """Label bridge + head ensemble vectors for every catalogue pair: per outer fold, the head setting and
    bridge weight are chosen on that fold's training items (:func:`choose_with_bridge`), the head is
    trained on them (+ ``extra``) and mixed with the (untrained) bridge on the held-out items."""
    if not candidates:
        raise InputError("out_of_fold_ensemble needs at least one candidate setting.")
    out = OutOfFold(np.zeros((len(pairs), pairs.target.shape[1]), dtype=np.float32))
    out.head = np.zeros_like(out.vectors)
    for k, (train, test) in enumerate(fold_splits(pairs, folds)):
        cand, weight = choose_with_bridge(pairs, train, extra, candidates, fit, bridge, weights, inner_folds)
        transform = fit(training_set(pairs, train, extra, cand.catalogue_repeat), cand.config)
        out.head[test] = transform(pairs.source[test])
        out.vectors[test] = mix(np.asarray(bridge)[test], out.head[test], weight)
        out.weights.append(weight)
        out.chosen.append(f"{cand.label()} w_bridge={weight:g}")
        if log:
            log(f"fold {k + 1}/{folds}: {cand.label()} w_bridge={weight:g}")
    return out


def description_half(description: str) -> str:
    """``"dev"`` or ``"test"``: a fixed hash split of a catalogue's descriptions, for settings chosen
    without folds (nothing is trained on them) on one half and reported on the other."""
    return "dev" if int(hashlib.sha1(description.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "test"
