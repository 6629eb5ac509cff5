"""Cross-modal alignment benchmark: held-out retrieval between text and images / sounds.

k-fold over the catalogue, grouped so items with identical descriptions (or identical media) share
a fold; every
item's aligned vector comes from a head that never saw it. Reports, per aligner, next to the
exact random-chance value:

* text->X: Recall@1/@10 and MRR with each distinct description as the query (relevant: the
  items carrying it); category Precision@10 with category names as queries (leaf path, top level);
* X->text: Recall@1/@10 and MRR of each item's own description among all distinct descriptions;
  category accuracy@1 (is the nearest category name the item's own?).

    python benchmarks/alignment.py [--catalogue data/tuxpaint] [--folds 5] [--out artifacts/alignment.json]

``--extra-pairs DIR`` (repeatable; e.g. ``data/sounds`` from ``scripts/build_sound_catalogue.py``) adds
another catalogue's pairs to every fold's training set, never to a test set, and adds rows: the head
with them at the default setting; the head with and without them tuned per fold on an inner grouped
split of that fold's training items (``--grid-hidden``, ``--grid-epochs``, ``--grid-repeat``: how
many times each catalogue pair counts beside the extra ones); and the cross setting, a head trained
on the extra pairs alone (tuned on an inner split of them) mapping every catalogue item. Each row
also reports R@10 per outer fold (:mod:`recsys.alignment.heldout`):

    python benchmarks/alignment.py --modalities audio --extra-pairs data/sounds   # ~11 min on 2 busy cores

``--cross`` instead holds out whole sources (:mod:`recsys.alignment.crosscatalogue`): for every
split "train on the others, test on the held-out one", text->image instance R@1/R@10 by title and
category P@10 at the top and leaf level, beside chance, for the label bridge alone, a head trained
on the other sources (its training text and bridge weight chosen by an inner leave-one-source-out
split) and the shipped demo aligner where it was not trained on the held-out source:

    python scripts/build_large_catalogue.py && python -m recsys index --catalogue data/large  # once
    python benchmarks/alignment.py --cross \
        data/tuxpaint data/large@openclipart data/large@iconify --out artifacts/alignment-cross.json

With ``--cross`` it also measures the match confidence (:mod:`recsys.alignment.crossconfidence`):
calibration fitted on the training sources' out-of-sample scores, ECE and Brier on the held-out
source for the per-query standardised score, the raw cosine mapped the same way, and the base rate;
``--write-confidence data/aligners/confidence.json`` writes the shipped aligner's calibration
(fitted on the sources it did not train on), keeping the file's other entries.

``--confidence`` (with ``--modalities audio --extra-pairs data/sounds``) instead fits the shipped audio
head's match confidence on held-out folds (:mod:`recsys.alignment.heldoutconfidence`): each demo clip
scored by a head trained in the shipped setting (read from the head's own record) that never saw it;
ECE / Brier of the z-score calibration, the raw cosine mapped the same way and the base rate, each
fold measured by the fit on the other folds; ``--write-confidence data/aligners/confidence.json``
writes the fit on all folds beside the file's other entries (~1 min with cached features):

    python benchmarks/alignment.py --modalities audio --extra-pairs data/sounds \
        --write-confidence data/aligners/confidence.json

A source is ``DIR`` (the whole catalogue) or ``DIR@NAME`` (its items whose ``source`` column names
NAME; :mod:`recsys.alignment.sources`).

Features come from the recsys feature cache, so a rerun costs only the (seconds-long) training.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys import atomic  # noqa: E402
from recsys.alignment.crosscatalogue import category_query  # noqa: E402
from recsys.alignment.factory import LabelBridge  # noqa: E402
from recsys.alignment.heldout import (  # noqa: E402
    Candidate,
    cross_source,
    fold_galleries,
    fold_splits,
    mix,
    near_duplicates,
    out_of_fold,
    out_of_fold_ensemble,
)
from recsys.alignment.metrics import retrieval_metrics  # noqa: E402
from recsys.alignment.projection import TrainConfig  # noqa: E402
from recsys.alignment.sources import item_description  # noqa: E402
from recsys.alignment.spoken import WORDS_WEIGHT  # noqa: E402
from recsys.alignment.training import (  # noqa: E402
    DEFAULT_BRIDGE_WEIGHTS,
    DEFAULT_CONFIGS,
    Pairs,
    encode_texts,
    train_on_pairs,
)
from recsys.threads import use_threads  # noqa: E402
from recsys.vectors import unit_vectors  # noqa: E402


def evaluate(
    vectors: np.ndarray,
    texts: list[str],
    categories: list[str],
    text_encoder: Any,
    item_groups: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """All metrics for aligned item vectors (one row per item, unit rows in the text space).

    ``item_groups`` (name -> item mask, e.g. speech clips) adds R@1/R@10/MRR per group: text->X for the
    descriptions with an item in the group (against the whole gallery), X->text for its items.
    """
    udesc, dinv = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    dinv = dinv.reshape(-1)
    qdesc = encode_texts(text_encoder, udesc.tolist())
    rel = np.arange(len(udesc))[:, None] == dinv[None, :]
    fwd = retrieval_metrics(qdesc @ vectors.T, rel)
    back = retrieval_metrics(vectors @ qdesc.T, rel.T)
    out: dict[str, Any] = {
        "to_items": {k: fwd[k] for k in ("recall@1", "recall@10", "mrr", "queries", "gallery")},
        "to_text": {k: back[k] for k in ("recall@1", "recall@10", "mrr", "queries", "gallery")},
        "chance": {
            "to_items": {k: fwd[f"{k}_chance"] for k in ("recall@1", "recall@10", "mrr")},
            "to_text": {k: back[f"{k}_chance"] for k in ("recall@1", "recall@10", "mrr")},
        },
    }
    for name, mask in (item_groups or {}).items():
        queries = np.flatnonzero(rel[:, mask].any(axis=1))
        if len(queries) == 0 or not mask.any():
            continue
        gf = retrieval_metrics(qdesc[queries] @ vectors.T, rel[queries])
        gb = retrieval_metrics(vectors[mask] @ qdesc.T, rel.T[mask])
        out.setdefault("groups", {})[name] = {
            "to_items": {k: gf[k] for k in ("recall@1", "recall@10", "mrr", "queries")},
            "to_text": {k: gb[k] for k in ("recall@1", "recall@10", "mrr", "queries")},
        }
    for level in ("leaf", "top"):
        names = [category_query(c, level) for c in categories]
        ucat, cinv = np.unique(np.asarray(names, dtype=str), return_inverse=True)
        cinv = cinv.reshape(-1)
        qcat = encode_texts(text_encoder, ucat.tolist())
        crel = np.arange(len(ucat))[:, None] == cinv[None, :]
        cf = retrieval_metrics(qcat @ vectors.T, crel)
        cb = retrieval_metrics(vectors @ qcat.T, crel.T)
        out["to_items"][f"category_{level}_p@10"] = cf["precision@10"]
        out["chance"]["to_items"][f"category_{level}_p@10"] = cf["precision@10_chance"]
        out["to_text"][f"category_{level}_acc@1"] = cb["recall@1"]
        out["chance"]["to_text"][f"category_{level}_acc@1"] = cb["recall@1_chance"]
        out[f"n_categories_{level}"] = len(ucat)
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def candidates(base: TrainConfig, args: argparse.Namespace, *, with_repeat: bool) -> list[Candidate]:
    """The hyper-parameter grid chosen from on inner splits (never on the held-out folds)."""
    repeats = args.grid_repeat if with_repeat else [1]
    return [
        Candidate(TrainConfig(**{**base.__dict__, "hidden": h, "epochs": e}), r)
        for h in args.grid_hidden
        for e in args.grid_epochs
        for r in repeats
    ]


def extra_pairs(args: argparse.Namespace, modality: str, encoder: Any, text_encoder: Any, pairs: Pairs, report: dict):
    """The ``--extra-pairs`` catalogues' (media, description) pairs, less near-copies of a catalogue item."""
    from recsys.alignment.training import catalogue_pairs
    from recsys.catalogue import load_catalogue

    parts = []
    for folder in args.extra_pairs:
        extra_catalogue = load_catalogue(folder, cache_dir=args.cache_dir)
        if extra_catalogue.has_modality(modality).any():
            parts.append(
                catalogue_pairs(extra_catalogue, modality, encoder, text_encoder, cache_dir=args.cache_dir, min_pairs=0)
            )
    if not parts:
        return None
    extra = Pairs.concat(parts)
    copies = near_duplicates(extra, pairs, args.duplicate_cosine)
    report.setdefault("extra_pairs", {})[modality] = {
        "catalogues": list(args.extra_pairs),
        "pairs": int(len(extra) - copies.sum()),
        "dropped_near_copies_of_catalogue_items": int(copies.sum()),
        "duplicate_cosine": args.duplicate_cosine,
    }
    _log(f"{modality}: {len(extra)} extra pairs, {int(copies.sum())} near-copies of catalogue items dropped")
    return extra.subset(np.flatnonzero(~copies))


def per_fold(vectors: np.ndarray, texts: list[str], splits: list, text_encoder: Any) -> dict[str, Any]:
    """R@10 of each outer fold's items (media->text) and descriptions (text->media), against the whole gallery."""
    udesc, dinv = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    qdesc = encode_texts(text_encoder, udesc.tolist())
    rel = np.arange(len(udesc))[:, None] == dinv.reshape(-1)[None, :]
    out: dict[str, list[float]] = {"to_items_r@10": [], "to_text_r@10": []}
    for _, test in splits:
        out["to_text_r@10"].append(retrieval_metrics(vectors[test] @ qdesc.T, rel.T[test])["recall@10"])
        queries = np.flatnonzero(rel[:, test].any(axis=1))
        out["to_items_r@10"].append(retrieval_metrics(qdesc[queries] @ vectors.T, rel[queries])["recall@10"])
    return {
        **out,
        **{f"{k}_mean": float(np.mean(v)) for k, v in out.items()},
        **{f"{k}_sd": float(np.std(v, ddof=1)) for k, v in out.items()},
    }


def modality_pairs(catalogue: Any, modality: str, text_encoder: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """The catalogue's (media, description) pairs of ``modality`` with their encoder and features
    (None when no item has that modality)."""
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder
    from recsys.encoding import catalogue_features

    if not catalogue.has_modality(modality).any():
        return None
    encoder = create_encoder(DEFAULT_ENCODERS[modality])

    def progress(done: int, total: int) -> None:
        print(f"\r{modality} features {done}/{total}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    outputs = ["embedding"]
    if getattr(encoder, "class_names", None) and hasattr(encoder, "predict_proba"):
        outputs.append("class_proba")
    feats = catalogue_features(catalogue, modality, encoder, outputs, cache_dir=args.cache_dir, progress=progress)
    emb = feats["embedding"]
    texts_all = [item_description(it) for it in catalogue.items]
    rows = np.flatnonzero(emb.present & np.array([bool(t) for t in texts_all]))
    texts = [texts_all[i] for i in rows]
    return {
        "encoder": encoder,
        "feats": feats,
        "rows": rows,
        "texts": texts,
        "categories": [catalogue.items[i].category for i in rows],
        "pairs": Pairs(emb.vectors[rows], encode_texts(text_encoder, texts), texts, rows),
    }


def head_fitter(modality: str, encoder: Any, text_encoder: Any) -> Any:
    """``fit(pairs, config) -> transform`` for :mod:`recsys.alignment.heldout`: one head per call."""

    def fit(train: Pairs, config: TrainConfig) -> Any:
        result = train_on_pairs(
            train, modality=modality, source_encoder=encoder, text_encoder=text_encoder, config=config
        )
        return result.aligner.transform

    return fit
def pooled_fold_metrics(
    galleries: list[np.ndarray],
    texts: list[str],
    splits: list,
    text_encoder: Any,
    item_groups: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """R@1 / R@10 / MRR of aligners chosen per outer fold: fold k's descriptions (text->X) and items
    (X->text) scored against ``galleries[k]``, pooled over the folds' queries (each query counted once,
    in the fold holding its items). ``item_groups`` as in :func:`evaluate`."""
    udesc, dinv = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    qdesc = encode_texts(text_encoder, udesc.tolist())
    rel = np.arange(len(udesc))[:, None] == dinv.reshape(-1)[None, :]
    keys = ("recall@1", "recall@10", "mrr")
    masks = {"": np.ones(len(texts), dtype=bool), **(item_groups or {})}
    sums = {g: {side: dict.fromkeys(keys, 0.0) for side in ("to_items", "to_text")} for g in masks}
    counts = {g: {"to_items": 0, "to_text": 0} for g in masks}
    for vectors, (_, test) in zip(galleries, splits, strict=True):
        in_fold = np.zeros(len(texts), dtype=bool)
        in_fold[test] = True
        for g, mask in masks.items():
            queries = np.flatnonzero(rel[:, in_fold & mask].any(axis=1))
            items = np.flatnonzero(in_fold & mask)
            for side, n, scores, relevant in (
                ("to_items", len(queries), qdesc[queries] @ vectors.T, rel[queries]),
                ("to_text", len(items), vectors[items] @ qdesc.T, rel.T[items]),
            ):
                if n:
                    m = retrieval_metrics(scores, relevant)
                    for k in keys:
                        sums[g][side][k] += m[k] * n
                    counts[g][side] += n
    out: dict[str, Any] = {}
    for g in masks:
        values = {
            side: {k: sums[g][side][k] / max(counts[g][side], 1) for k in keys} for side in ("to_items", "to_text")
        }
        if g:
            out.setdefault("groups", {})[g] = values
        else:
            out.update(values)
    return out


def speech_groups(encoder: Any, embeddings: np.ndarray) -> dict[str, np.ndarray] | None:
    """Items whose clip the shipped speech detector (:mod:`recsys.speech`) calls speech, and the others;
    None without a detector for this encoder. A tagger cannot tell spoken words apart."""
    from recsys import speech

    detector = speech.detector_for(encoder.encoder_id)
    if detector is None:
        return None
    is_speech = detector.is_speech(embeddings)
    return {"speech": is_speech, "non-speech": ~is_speech}


def by_words(
    vectors: np.ndarray, catalogue: Any, loaded: dict[str, Any], text_encoder: Any, args: argparse.Namespace,
    weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(``vectors`` with the speech clips moved to their words at ``weight``, the flags) by the product's
    rule (:meth:`recsys.alignment.spoken.SpokenWords.items`); unchanged without a speech head or recogniser."""
    from recsys.alignment.spoken import spoken_rule
    from recsys.encoding.cache import content_keys

    rule = spoken_rule(loaded["encoder"], text_encoder)
    if rule is None:
        return vectors, np.zeros(len(vectors), dtype=bool)
    items = [catalogue.items[i] for i in loaded["rows"]]

    def progress(done: int, total: int) -> None:
        print(f"\rtranscripts {done}/{total}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    return rule.items(
        vectors,
        loaded["pairs"].source,
        np.ones(len(items), dtype=bool),
        content_keys(items, "audio"),
        [str(it.audio) for it in items],
        catalogue_root=catalogue.root,
        cache_dir=args.cache_dir,
        progress=progress,
        weight=weight,
    )


#: Words weights tried for speech clips (recsys.alignment.spoken.blend), chosen on the dev half.
WORDS_GRID = (0.25, 0.5, 0.75, 1.0)


def spoken_rows(
    aligned: dict[str, np.ndarray],
    catalogue: Any,
    loaded: dict[str, Any],
    text_encoder: Any,
    args: argparse.Namespace,
    base: str,
) -> dict[str, Any] | None:
    """Rows for the product's speech rule (:mod:`recsys.alignment.spoken`) on top of the held-out ``base``
    row: every clip the speech head flags moved to the words it says, at each weight of
    :data:`WORDS_GRID`; the weight is chosen on the dev half of the descriptions
    (:func:`recsys.alignment.heldout.description_half`: mean of text->audio and audio->text R@10 over the
    dev half's queries) and that row is reported whole and on the test half. Nothing is trained: the base
    vectors are out of fold. Returns the choice (None without a speech head or recogniser)."""
    from recsys.alignment.heldout import description_half
    from recsys.alignment.spoken import spoken_rule

    if spoken_rule(loaded["encoder"], text_encoder) is None:
        return None
    texts = loaded["texts"]
    udesc, dinv = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    qdesc = encode_texts(text_encoder, udesc.tolist())
    rel = np.arange(len(udesc))[:, None] == dinv.reshape(-1)[None, :]
    halves = np.array([description_half(d) for d in udesc])

    def half_r10(vectors: np.ndarray, half: str) -> tuple[float, float]:
        q = halves == half
        clips = q[dinv]
        fwd = retrieval_metrics(qdesc[q] @ vectors.T, rel[q])["recall@10"]
        back = retrieval_metrics(vectors[clips] @ qdesc.T, rel.T[clips])["recall@10"]
        return float(fwd), float(back)

    grid, flagged = {}, None
    for w in WORDS_GRID:
        vectors, flagged = by_words(aligned[base], catalogue, loaded, text_encoder, args, w)
        grid[w] = (vectors, {h: half_r10(vectors, h) for h in ("dev", "test")})

    def choose(half: str) -> float:
        return max(WORDS_GRID, key=lambda w: (sum(grid[w][1][half]), -w))

    chosen = choose("dev")
    aligned[f"{base} + words (w={chosen:g}, dev half)"] = grid[chosen][0]
    # Cross-fitted: each half scored at the weight the other half chose, pooled by queries (text->audio)
    # and clips (audio->text): a figure for the procedure in which no query picked its own weight.
    sizes = {h: ((halves == h).sum(), (halves[dinv] == h).sum()) for h in ("dev", "test")}
    picks = {"test": chosen, "dev": choose("test")}
    crossed = tuple(
        float(sum(grid[picks[h]][1][h][side] * sizes[h][side] for h in picks) / sum(sizes[h][side] for h in picks))
        for side in (0, 1)
    )
    return {
        "base": base,
        "speech_clips": int(flagged.sum()) if flagged is not None else 0,
        "r10": {f"{w:g}": grid[w][1] for w in WORDS_GRID},
        "chosen": chosen,
        "chosen_on_test": picks["dev"],
        "test_r10": {"base": half_r10(aligned[base], "test"), "chosen": grid[chosen][1]["test"]},
        "cross_fitted_r10": crossed,
        "dev_queries": int(sizes["dev"][0]),
        "test_queries": int(sizes["test"][0]),
    }


def format_spoken(report: dict[str, Any]) -> str:
    sp = report.get("spoken")
    if not sp:
        return ""
    lines = [f"\nspeech clips by their words ({sp['speech_clips']} clips flagged), on top of '{sp['base']}':"]
    for half in ("dev", "test"):
        lines.append(
            f"  words weight, {half} half ({sp[half + '_queries']} descriptions), R@10 text->audio / audio->text: "
            + ", ".join(f"w={w} {r[half][0]:.3f} / {r[half][1]:.3f}" for w, r in sp["r10"].items())
        )
    base, chosen = sp["test_r10"]["base"], sp["test_r10"]["chosen"]
    lines += [
        f"  chosen on dev w={sp['chosen']:g} (shipped); test half: base {base[0]:.3f} / {base[1]:.3f} -> "
        f"{chosen[0]:.3f} / {chosen[1]:.3f}",
        f"  cross-fitted (each half at the other's choice; test chose w={sp['chosen_on_test']:g}): "
        f"{sp['cross_fitted_r10'][0]:.3f} / {sp['cross_fitted_r10'][1]:.3f}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recsys.catalogue import load_catalogue
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder

    started = time.perf_counter()
    catalogue = load_catalogue(args.catalogue)
    text_encoder = create_encoder(DEFAULT_ENCODERS["text"])
    report: dict[str, Any] = {"catalogue": str(args.catalogue), "folds": args.folds, "rows": [], "encoders": {}}
    report["encoders"]["text"] = text_encoder.encoder_id
    for modality in args.modalities:
        loaded = modality_pairs(catalogue, modality, text_encoder, args)
        if loaded is None:
            continue
        encoder, feats, rows, texts, cats, pairs = (
            loaded[k] for k in ("encoder", "feats", "rows", "texts", "categories", "pairs")
        )
        report["encoders"][modality] = encoder.encoder_id
        aligned: dict[str, np.ndarray] = {}
        per_fold_galleries: dict[str, list[np.ndarray]] = {}
        if "class_proba" in feats:
            proba = feats["class_proba"]
            bridge = LabelBridge.from_encoders(encoder, text_encoder, cache_dir=args.cache_dir)
            aligned["label-bridge"] = bridge.transform(proba.vectors[rows])
        t0 = time.perf_counter()
        base = DEFAULT_CONFIGS[modality]
        if args.epochs:
            base = TrainConfig(**{**base.__dict__, "epochs": args.epochs})
        if args.seed is not None:
            base = TrainConfig(**{**base.__dict__, "seed": args.seed})
        fit = head_fitter(modality, encoder, text_encoder)

        splits = fold_splits(pairs, args.folds)
        aligned["projection"] = out_of_fold(pairs, args.folds, fit, [Candidate(base)]).vectors
        train_s = time.perf_counter() - t0
        chosen: dict[str, list[str]] = {}
        if args.variants:
            variants = {
                "projection-mlp512": {"hidden": 512},
                f"projection-center={not base.center}": {"center": not base.center},
            }
            for name, change in variants.items():
                cfg = TrainConfig(**{**base.__dict__, **change})
                aligned[name] = out_of_fold(pairs, args.folds, fit, [Candidate(cfg)]).vectors
        extra = extra_pairs(args, modality, encoder, text_encoder, pairs, report) if args.extra_pairs else None
        if args.tune or extra is not None:
            grid = candidates(base, args, with_repeat=False)
            tuned = out_of_fold(pairs, args.folds, fit, grid, inner_folds=args.inner_folds, log=_log)
            aligned["projection, tuned"] = tuned.vectors
            chosen["projection, tuned"] = tuned.chosen
        if extra is not None:
            aligned["projection + extra"] = out_of_fold(pairs, args.folds, fit, [Candidate(base)], extra=extra).vectors
            grid = candidates(base, args, with_repeat=True)
            tuned = out_of_fold(pairs, args.folds, fit, grid, extra=extra, inner_folds=args.inner_folds, log=_log)
            aligned["projection + extra, tuned"] = tuned.vectors
            chosen["projection + extra, tuned"] = tuned.chosen
            cross = cross_source(pairs, extra, fit, grid, inner_folds=args.inner_folds)
            aligned["extra only (cross)"] = cross.vectors
            chosen["extra only (cross)"] = cross.chosen
        if "label-bridge" in aligned:
            # The head beside the bridge: with extra pairs the tuned one (its grid; the shipped setting when
            # the grid is that one setting), else the default head. Fixed weights first, then the weight
            # (and head setting) chosen per outer fold on inner splits of its training items.
            head = "projection + extra, tuned" if extra is not None else "projection"
            report.setdefault("ensemble_head", {})[modality] = head
            for w in sorted({DEFAULT_BRIDGE_WEIGHTS[modality], *args.bridge_weights}):
                aligned[f"ensemble(w_bridge={w:g})"] = mix(aligned["label-bridge"], aligned[head], w)
            grid = candidates(base, args, with_repeat=True) if extra is not None else [Candidate(base)]
            tuned = out_of_fold_ensemble(
                pairs,
                args.folds,
                fit,
                grid,
                aligned["label-bridge"],
                args.bridge_grid,
                extra=extra,
                inner_folds=args.inner_folds,
                log=_log,
            )
            aligned["ensemble, w_bridge tuned"] = tuned.vectors
            chosen["ensemble, w_bridge tuned"] = tuned.chosen
            per_fold_galleries["ensemble, w_bridge tuned"] = fold_galleries(aligned["label-bridge"], tuned)
        groups = speech_groups(encoder, feats["embedding"].vectors[rows]) if modality == "audio" else None
        if groups:
            report.setdefault("speech_items", {})[modality] = int(groups["speech"].sum())
        if modality == "audio":
            base = f"ensemble(w_bridge={DEFAULT_BRIDGE_WEIGHTS[modality]:g})"  # the shipped aligner's mix
            if base not in aligned:
                heads = ("projection + extra, tuned", "projection + extra", "projection")
                base = next(n for n in heads if n in aligned)
            spoken = spoken_rows(aligned, catalogue, loaded, text_encoder, args, base)
            if spoken:
                report["spoken"] = spoken
        for name, vectors in aligned.items():
            metrics = evaluate(vectors, texts, cats, text_encoder, groups)
            if name in per_fold_galleries:  # R@1 / R@10 / MRR: each fold against its own gallery
                pooled = pooled_fold_metrics(per_fold_galleries[name], texts, splits, text_encoder, groups)
                for side in ("to_items", "to_text"):
                    metrics[side].update(pooled[side])
                for group, values in pooled.get("groups", {}).items():
                    metrics["groups"][group] = values
            metrics["per_fold"] = per_fold(vectors, texts, splits, text_encoder)
            if name in chosen:
                metrics["chosen_per_fold"] = chosen[name]
            report["rows"].append({"modality": modality, "aligner": name, "items": len(rows), **metrics})
        report.setdefault("train_seconds_per_fold", {})[modality] = train_s / args.folds
    report["elapsed_s"] = time.perf_counter() - started
    return report


COLUMNS = (
    ("to_items", "recall@1", "R@1"),
    ("to_items", "recall@10", "R@10"),
    ("to_items", "mrr", "MRR"),
    ("to_items", "category_leaf_p@10", "leafP@10"),
    ("to_items", "category_top_p@10", "topP@10"),
    ("to_text", "recall@1", "R@1"),
    ("to_text", "recall@10", "R@10"),
    ("to_text", "mrr", "MRR"),
    ("to_text", "category_leaf_acc@1", "leafAcc"),
    ("to_text", "category_top_acc@1", "topAcc"),
)


def format_table(report: dict[str, Any]) -> str:
    lines = []
    for modality in dict.fromkeys(r["modality"] for r in report["rows"]):
        rows = [r for r in report["rows"] if r["modality"] == modality]
        width = max(26, *(len(r["aligner"]) for r in rows))
        head = f"{'aligner':{width}s} | " + " ".join(f"{c:>8s}" for _, _, c in COLUMNS[:5]) + " | "
        head += " ".join(f"{c:>8s}" for _, _, c in COLUMNS[5:])
        lines.append(f"\ntext->{modality} (left) and {modality}->text (right), {rows[0]['items']} held-out items")
        lines.append(head)
        lines.append("-" * len(head))
        for r in [*rows, {"aligner": "random chance", **rows[0]["chance"]}]:
            cells = [f"{r[side][key]:8.3f}" for side, key, _ in COLUMNS]
            lines.append(f"{r['aligner']:{width}s} | " + " ".join(cells[:5]) + " | " + " ".join(cells[5:]))
        grouped = [r for r in rows if "groups" in r]
        if grouped:
            names = list(grouped[0]["groups"])
            counts = ", ".join(
                f"{g}: {grouped[0]['groups'][g]['to_items']['queries']} queries / "
                f"{grouped[0]['groups'][g]['to_text']['queries']} items"
                for g in names
            )
            lines.append(f"by query kind (speech detector; {counts}): R@1 R@10 MRR text->{modality} | {modality}->text")
            for r in grouped:
                cells = " | ".join(
                    f"{g} "
                    + " ".join(f"{r['groups'][g]['to_items'][k]:.3f}" for k in ("recall@1", "recall@10", "mrr"))
                    + " / "
                    + " ".join(f"{r['groups'][g]['to_text'][k]:.3f}" for k in ("recall@1", "recall@10", "mrr"))
                    for g in names
                    if g in r["groups"]
                )
                lines.append(f"{r['aligner']:{width}s} | {cells}")
        if any(r["aligner"] == "ensemble, w_bridge tuned" for r in rows):
            lines.append(
                "ensemble, w_bridge tuned: R@1/R@10/MRR score each outer fold against a gallery mixed at its own "
                "weight; categories and the per-fold lines below use the folds' rows side by side"
            )
        lines.append(f"per outer fold: R@10 mean +- sd, text->{modality} then {modality}->text; inner-split choices")
        for r in rows:
            f = r["per_fold"]
            chosen = "; ".join(f"{k} x{n}" for k, n in Counter(r.get("chosen_per_fold", [])).items())
            lines.append(
                f"{r['aligner']:{width}s} | {f['to_items_r@10_mean']:.3f} +- {f['to_items_r@10_sd']:.3f}, "
                f"{f['to_text_r@10_mean']:.3f} +- {f['to_text_r@10_sd']:.3f}" + (f" | {chosen}" if chosen else "")
            )
    return "\n".join(lines)


def shipped_candidate(aligner: Any, catalogue: str, extra: list[str]) -> Candidate:
    """The setting a shipped projection head trained in (its recorded config, and how many times the
    catalogue's pairs counted), checked against the catalogue and ``--extra-pairs`` given, so the
    held-out heads train as the shipped one did."""
    from recsys.errors import InputError

    meta = getattr(aligner, "meta", {})
    training = meta.get("training", {})
    if "config" not in meta or "sources" not in training:
        raise InputError(
            f"--confidence refits the shipped head per fold, but {aligner.describe()} records no training "
            "config and sources (the image ensemble is calibrated across catalogues with --cross)."
        )
    sources = training["sources"]
    own = Path(catalogue).name
    if own not in sources:
        raise InputError(f"The shipped head trained on {', '.join(sources)}, not on the catalogue {catalogue}.")
    given, trained = sorted(Path(d).name for d in extra), sorted(n for n in sources if n != own)
    if given != trained:
        raise InputError(
            f"The shipped head trained with extra pairs from {', '.join(trained) or 'nothing'}; "
            f"pass those with --extra-pairs (given: {', '.join(given) or 'none'})."
        )
    return Candidate(TrainConfig(**meta["config"]), int(sources[own].get("repeat", 1)))


def shipped_members(aligner: Any) -> tuple[Any, Any, float]:
    """(learned head, label bridge or None, the bridge's weight) of a shipped aligner: a head alone,
    or a two-member ensemble of a bridge and a head (the shipped audio aligner)."""
    from recsys.errors import InputError

    members = getattr(aligner, "members", None)
    if members is None:
        return aligner, None, 0.0
    bridges = [(m, w) for m, w in zip(members, aligner.weights, strict=True) if isinstance(m, LabelBridge)]
    heads = [m for m in members if not isinstance(m, LabelBridge)]
    if len(bridges) != 1 or len(heads) != 1:
        raise InputError(f"--confidence takes a head, or a label bridge and one head; {aligner.describe()} is neither.")
    return heads[0], bridges[0][0], float(bridges[0][1])


def run_confidence(args: argparse.Namespace) -> dict[str, Any]:
    """Match confidence of the shipped heads fitted on held-out folds (recsys.alignment.heldoutconfidence)."""
    from recsys.alignment.confidence import merge_pairs, shipped_calibration, update_calibrations
    from recsys.alignment.factory import DEFAULT_ALIGNERS, load_aligner
    from recsys.alignment.heldoutconfidence import fold_pairs, rotated_report
    from recsys.catalogue import load_catalogue
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder

    started = time.perf_counter()
    catalogue = load_catalogue(args.catalogue)
    text_encoder = create_encoder(DEFAULT_ENCODERS["text"])
    report: dict[str, Any] = {
        "mode": "held-out confidence",
        "catalogue": str(args.catalogue),
        "folds": args.folds,
        "rows": [],
        "encoders": {"text": text_encoder.encoder_id},
        "confidence": {},
    }

    def encode(texts: list[str]) -> np.ndarray:
        return unit_vectors(encode_texts(text_encoder, texts, cache_dir=args.cache_dir))

    gallery = [(it.text, item_description(it)) for it in catalogue.items if it.text.strip()]
    calibrations = []
    for modality in args.modalities:
        loaded = modality_pairs(catalogue, modality, text_encoder, args)
        if loaded is None:
            continue
        encoder, pairs, texts = loaded["encoder"], loaded["pairs"], loaded["texts"]
        report["encoders"][modality] = encoder.encoder_id
        shipped = load_aligner(DEFAULT_ALIGNERS[modality], source_encoder=encoder, text_encoder=text_encoder)
        head, bridge, bridge_weight = shipped_members(shipped)
        candidate = shipped_candidate(head, args.catalogue, args.extra_pairs)
        extra = extra_pairs(args, modality, encoder, text_encoder, pairs, report) if args.extra_pairs else None
        fit = head_fitter(modality, encoder, text_encoder)
        splits = fold_splits(pairs, args.folds)
        vectors = out_of_fold(pairs, args.folds, fit, [candidate], extra=extra).vectors
        name = f"shipped setting, {candidate.label()}"
        if bridge is not None:  # the zero-shot bridge needs no folds: mixed in as the shipped ensemble does
            bridged = bridge.transform(loaded["feats"]["class_proba"].vectors[loaded["rows"]])
            vectors = mix(bridged, vectors, bridge_weight)
            name = f"shipped ensemble (w_bridge={bridge_weight:g}), head {candidate.label()}"
        if modality == "audio":  # speech clips sit by their words in the engine: so they are scored here
            vectors, flagged = by_words(vectors, catalogue, loaded, text_encoder, args, WORDS_WEIGHT)
            if flagged.any():
                name += f", {int(flagged.sum())} speech clips by their words (w={WORDS_WEIGHT:g})"
        metrics = evaluate(vectors, texts, loaded["categories"], text_encoder)
        metrics["per_fold"] = per_fold(vectors, texts, splits, text_encoder)
        report["rows"].append({"modality": modality, "aligner": name, "items": len(pairs), **metrics})
        parts = fold_pairs(modality, vectors, texts, [t for t, _ in gallery], [d for _, d in gallery], splits, encode)
        meta = {
            "fitted_on": [Path(args.catalogue).name],
            "scores": f"out of fold: {args.folds} grouped folds, each scored by a head trained in the shipped "
            f"setting ({candidate.label()}, with the extra pairs) that never saw it"
            + (f", mixed with the zero-shot label bridge at weight {bridge_weight:g}" if bridge is not None else "")
            + (", speech clips moved to their words as the engine does" if modality == "audio" else ""),
            "relevance": "instance: the item carries the query's description",
        }
        calibration = shipped_calibration(shipped, merge_pairs(parts), text_encoder.encoder_id, meta)
        calibrations.append(calibration)
        report["confidence"][modality] = {"setting": candidate.label(), **rotated_report(parts)}
    if args.write_confidence and calibrations:
        update_calibrations(args.write_confidence, calibrations)
        report["written"] = {"path": str(args.write_confidence), "calibrations": [c.to_json() for c in calibrations]}
    report["elapsed_s"] = time.perf_counter() - started
    return report


def format_heldout_confidence_table(report: dict[str, Any]) -> str:
    """Pooled ECE / Brier / AUC over the rotated folds (each fold measured by the fit on the others)."""
    head = f"{'pair':14s} {'pairs':>6s} {'rel%':>5s} | " + " | ".join(f"{name:>20s}" for _, name in CONFIDENCE_ROWS)
    sub = f"{'':27s} | " + " | ".join(f"{'ECE':>6s} {'Brier':>6s} {'AUC':>6s}" for _ in CONFIDENCE_ROWS)
    lines = []
    for modality, conf in report["confidence"].items():
        lines += [
            f"\n{modality} match confidence on held-out folds ({conf['setting']}): fitted on {report['folds'] - 1} "
            f"folds' out-of-fold scores, measured on the other, all {report['folds']} rotations pooled "
            "(top-10 results per query; relevant: same description)",
            head,
            sub,
            "-" * len(head),
        ]
        for pair, t in conf["pooled"].items():
            cells = " | ".join(
                f"{t[k]['ece']:6.4f} {t[k]['brier']:6.4f} {_auc(t[k]['auc'])}" for k, _ in CONFIDENCE_ROWS
            )
            lines.append(f"{pair:14s} {t['z']['pairs']:6d} {100 * t['z']['relevant_rate']:5.1f} | {cells}")
        for pair in conf["pooled"]:
            eces = [fold[pair]["test"]["z"]["ece"] for fold in conf["folds"]]
            lines.append(f"{pair}: z-score ECE per held-out fold " + " ".join(f"{e:.4f}" for e in eces))
    for c in report.get("written", {}).get("calibrations", []):
        fits = ", ".join(f"{n}: slope {p['slope']:.3f}, intercept {p['intercept']:.3f}" for n, p in c["pairs"].items())
        lines.append(f"written to {report['written']['path']} ({c['modality']}, all folds): {fits}")
    return "\n".join(lines)


def run_cross(args: argparse.Namespace) -> dict[str, Any]:
    """Leave-one-source-out over the ``--cross`` sources (logic in recsys.alignment.crosscatalogue)."""
    from recsys.alignment.confidence import update_calibrations
    from recsys.alignment.crosscatalogue import CrossCatalogue, CrossConfig, load_source_data
    from recsys.alignment.crossconfidence import calibration_split, fit_calibration, fixed_aligner_splits
    from recsys.alignment.factory import DEFAULT_ALIGNERS, load_aligner
    from recsys.alignment.sources import load_sources
    from recsys.encoders import DEFAULT_ENCODERS, create_encoder
    from recsys.encoding.cache import default_cache_dir

    started = time.perf_counter()
    cache_dir = args.cache_dir or default_cache_dir()
    specs: dict[str, list[str]] = {}
    for spec in args.cross:
        folder, _, name = spec.partition("@")
        specs.setdefault(folder, []).extend([name] if name else [])
    sources = load_sources(list(specs.items()), cache_dir=cache_dir)
    text_encoder = create_encoder(DEFAULT_ENCODERS["text"])
    image_encoder = create_encoder(DEFAULT_ENCODERS["image"])
    data = [load_source_data(s, image_encoder, cache_dir=cache_dir) for s in sources]
    bridge = LabelBridge.from_encoders(image_encoder, text_encoder, cache_dir=cache_dir)

    def encode(texts: list[str]) -> np.ndarray:
        return unit_vectors(encode_texts(text_encoder, texts, cache_dir=cache_dir))

    shipped = load_aligner(DEFAULT_ALIGNERS["image"], source_encoder=image_encoder, text_encoder=text_encoder)
    trained_on = {"tuxpaint"}  # the shipped demo heads saw data/tuxpaint only
    config = CrossConfig(
        train=TrainConfig(**{**DEFAULT_CONFIGS["image"].__dict__, "epochs": args.epochs or 15}),
        max_gallery=args.max_gallery,
        max_train=args.max_train,
    )
    cross = CrossCatalogue(
        data,
        bridge=bridge.transform,
        encode=encode,
        ids={"image": image_encoder.encoder_id, "text": text_encoder.encoder_id, "space": text_encoder.space},
        config=config,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    splits = cross.run({"shipped demo aligner (tuxpaint)": (shipped.transform, trained_on)})
    confidence = {
        "splits": [calibration_split(cross, name) for name in cross.sources],
        "shipped": fixed_aligner_splits(cross, shipped.transform, trained_on),
    }
    if args.write_confidence:
        calibration = fit_calibration(cross, shipped, trained_on, text_encoder.encoder_id)
        update_calibrations(args.write_confidence, [calibration])
        confidence["written"] = {"path": str(args.write_confidence), **calibration.to_json()}
    return {
        "mode": "cross-catalogue",
        "sources": {d.name: len(d) for d in data},
        "max_gallery": args.max_gallery,
        "max_train": args.max_train,
        "epochs": config.train.epochs,
        "encoders": {"text": text_encoder.encoder_id, "image": image_encoder.encoder_id},
        "splits": splits,
        "confidence": confidence,
        "elapsed_s": time.perf_counter() - started,
    }


CROSS_COLUMNS = (
    ("instance", "recall@1", "R@1"),
    ("instance", "recall@10", "R@10"),
    ("category_top", "precision@10", "topP@10"),
    ("category_leaf", "precision@10", "leafP@10"),
)


def format_cross_table(report: dict[str, Any]) -> str:
    lines = []
    for split in report["splits"]:
        rows = split["rows"]
        choice = split["choice"]
        lines.append(
            f"\nheld out {split['test']} ({rows[0]['items']} items scored; "
            f"{rows[0]['instance']['queries']} titles, {rows[0]['category_top']['queries']} top / "
            f"{rows[0]['category_leaf']['queries']} leaf categories); trained on {' + '.join(split['train'])}; "
            f"chosen on them: text={choice['text_field']}, w_bridge={choice['bridge_weight']:g}"
        )
        head = f"{'text->image aligner':36s} | " + " ".join(f"{c:>8s}" for _, _, c in CROSS_COLUMNS)
        head += " | " + " ".join(f"{'x' + c:>9s}" for _, _, c in CROSS_COLUMNS[2:])
        lines += [head, "-" * len(head)]
        chance = rows[0]["chance"]
        for r in rows:
            cells = [f"{r[g][k]:8.3f}" for g, k, _ in CROSS_COLUMNS]
            ratios = [f"{r[g][k] / chance[g][k]:8.1f}x" for g, k, _ in CROSS_COLUMNS[2:]]
            lines.append(f"{r['aligner']:36s} | " + " ".join(cells) + " | " + " ".join(ratios))
        lines.append(f"{'random chance':36s} | " + " ".join(f"{chance[g][k]:8.3f}" for g, k, _ in CROSS_COLUMNS))
    return "\n".join(lines)


CONFIDENCE_ROWS = (("z", "z-score Platt"), ("cosine", "raw cosine Platt"), ("base_rate", "base rate (constant)"))


def _auc(value: float | None) -> str:
    return f"{value:6.3f}" if value is not None else f"{'-':>6s}"


def format_confidence_table(report: dict[str, Any]) -> str:
    """ECE / Brier / AUC per held-out source and direction, z-score calibration beside raw cosine and base rate."""
    conf = report["confidence"]
    head = f"{'held out':12s} {'aligner / fitted on':44s} {'direction':12s} {'pairs':>6s} {'rel%':>5s} | "
    head += " | ".join(f"{name:>20s}" for _, name in CONFIDENCE_ROWS)
    sub = f"{'':82s} | " + " | ".join(f"{'ECE':>6s} {'Brier':>6s} {'AUC':>6s}" for _ in CONFIDENCE_ROWS)
    lines = ["\nmatch confidence on the held-out source (top-10 results per query; relevant: same title)", head, sub]
    lines.append("-" * len(head))
    rows = [(s["test"], f"{s['aligner']} on {'+'.join(s['train'])}", s) for s in conf["splits"]]
    rows += [
        (
            s["test"] + ("*" if s["aligner_trained_on_test"] else ""),
            f"shipped demo aligner, fit on {'+'.join(s['fitted_on'])}",
            s,
        )
        for s in conf["shipped"]
    ]
    for test, what, split in rows:
        for direction, d in split["directions"].items():
            t = d["test"]
            cells = " | ".join(
                f"{t[k]['ece']:6.3f} {t[k]['brier']:6.4f} {_auc(t[k]['auc'])}" for k, _ in CONFIDENCE_ROWS
            )
            n, rate = t["z"]["pairs"], 100 * t["z"]["relevant_rate"]
            lines.append(f"{test:12s} {what[:44]:44s} {direction:12s} {n:6d} {rate:5.1f} | {cells}")
    lines.append("* the shipped aligner trained on this source: its scores there are in sample")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--catalogue", default=str(REPO / "data" / "tuxpaint"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--modalities", nargs="+", default=["image", "audio"])
    p.add_argument("--bridge-weights", type=float, nargs="*", default=[0.3, 0.7], help="fixed ensemble weights")
    p.add_argument(
        "--bridge-grid",
        type=float,
        nargs="+",
        default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        help="bridge weights the tuned ensemble chooses from on inner splits",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the heads' training epochs")
    p.add_argument("--seed", type=int, default=None, help="override the heads' training seed")
    p.add_argument("--variants", action="store_true", help="also score alternative head configurations")
    p.add_argument(
        "--extra-pairs",
        action="append",
        default=[],
        metavar="DIR",
        help="a catalogue whose pairs join every fold's training set, never a test set (repeatable); "
        "also reports a head tuned on inner splits with them, and one trained on them alone (cross)",
    )
    p.add_argument("--tune", action="store_true", help="also report a head tuned on inner splits (no extra pairs)")
    p.add_argument("--inner-folds", type=int, default=3, help="inner grouped folds that choose the hyper-parameters")
    p.add_argument("--grid-hidden", type=int, nargs="+", default=[0, 512], help="hidden widths tried (0: linear)")
    p.add_argument("--grid-epochs", type=int, nargs="+", default=[30, 60, 120], help="epochs tried")
    p.add_argument(
        "--grid-repeat",
        type=int,
        nargs="+",
        default=[1, 4],
        help="times each catalogue pair is repeated beside the extra pairs",
    )
    p.add_argument(
        "--duplicate-cosine",
        type=float,
        default=0.99,
        help="extra pairs whose media features reach this cosine with a catalogue item's are dropped (near-copies)",
    )
    p.add_argument("--cache-dir", default=None)
    p.add_argument(
        "--cross",
        nargs="*",
        default=None,
        metavar="DIR[@NAME]",
        help="hold out whole sources instead of folds (default sources: data/tuxpaint, "
        "data/large@openclipart, data/large@iconify)",
    )
    p.add_argument("--max-gallery", type=int, default=2000, help="--cross: items scored per held-out source (0: all)")
    p.add_argument("--max-train", type=int, default=6000, help="--cross: training pairs per source (0: all)")
    p.add_argument(
        "--confidence",
        action="store_true",
        help="instead of the retrieval grid: the shipped heads' match confidence fitted on held-out folds, each "
        "trained in the shipped setting (e.g. --modalities audio --extra-pairs data/sounds)",
    )
    p.add_argument(
        "--write-confidence",
        default=None,
        metavar="PATH",
        help="write the shipped aligner's match-confidence calibration into PATH, keeping its other aligners' "
        "entries (e.g. data/aligners/confidence.json): with --cross the image aligner's, else (implies "
        "--confidence) the held-out one of each --modalities head",
    )
    p.add_argument("--out", default=None, help="JSON report (default artifacts/alignment.json, -cross with --cross)")
    args = p.parse_args(argv)
    if args.cross is not None and not args.cross:
        args.cross = [
            str(REPO / "data" / "tuxpaint"),
            f"{REPO / 'data' / 'large'}@openclipart",
            f"{REPO / 'data' / 'large'}@iconify",
        ]
    args.confidence = args.confidence or bool(args.write_confidence and args.cross is None)
    default_out = "alignment-cross" if args.cross else "alignment-confidence" if args.confidence else "alignment"
    args.out = args.out or str(REPO / "artifacts" / f"{default_out}.json")
    with use_threads("batch"):  # catalogue encoding; the heads themselves train on one thread
        if args.cross:
            report = run_cross(args)
            print(format_cross_table(report) + "\n" + format_confidence_table(report))
        elif args.confidence:
            report = run_confidence(args)
            print(format_table(report) + "\n" + format_heldout_confidence_table(report))
        else:
            report = run(args)
            print(format_table(report) + format_spoken(report))
    print(f"\nelapsed {report['elapsed_s']:.0f}s; written to {args.out}")
    atomic.write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
