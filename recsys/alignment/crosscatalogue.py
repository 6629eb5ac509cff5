"""Cross-catalogue evaluation: train image -> text aligners on some sources, test on one nobody trained on.

Folds of one catalogue share its drawing style, its naming habits and its category tree, so
in-catalogue figures flatter a head; what a user with their own media meets is a new source. For
every split "train on the others, test on the held-out one" this measures, each beside its exact
random-chance value:

* instance: text -> image Recall@1/@10 with each distinct title of the held-out gallery as the
  query (relevant: the items carrying that title);
* category: text -> image Precision@10 with category names as queries, at the top level and the
  leaf of the held-out source's own tree (a root shared by all its items, like ``clipart/``, is
  dropped first: it says which source an item came from, not what it shows).

Hyper-parameters (the label bridge's share in the ensemble, the training text) are chosen by an
inner leave-one-source-out split of the training sources alone; the held-out source is touched
only to score the final choice. The label bridge alone (no training) is the baseline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recsys.alignment.base import mix
from recsys.alignment.metrics import label_topk_metrics
from recsys.alignment.projection import TrainConfig, groups_from_targets, train_projection
from recsys.alignment.sources import TEXT_FIELDS
from recsys.errors import InputError
from recsys.vectors import unit_vectors

#: Text -> vectors (unit rows in the text space), e.g. a cached text encoder.
Encode = Callable[[list[str]], np.ndarray]
LEVELS = ("top", "leaf")


@dataclass
class SourceData:
    """One source's items that have an image: encoder outputs, titles, descriptions, categories."""

    name: str
    embedding: np.ndarray  # (n, d_image) encoder embeddings (the heads' input)
    class_proba: np.ndarray  # (n, n_classes) classifier probabilities (the label bridge's input)
    titles: list[str]
    descriptions: list[str]
    categories: list[str]
    #: What the text encoder sees for each item (``Item.text``: "title. description"); titles when absent.
    item_texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.titles)

    def subset(self, rows: np.ndarray) -> SourceData:
        pick = rows.tolist()
        return SourceData(
            self.name,
            self.embedding[rows],
            self.class_proba[rows],
            [self.titles[i] for i in pick],
            [self.descriptions[i] for i in pick],
            [self.categories[i] for i in pick],
            [self.item_texts[i] for i in pick] if self.item_texts else [],
        )

    def indexed_texts(self) -> list[str]:
        """The items' texts as an engine indexes them (their titles when they were not recorded)."""
        return self.item_texts or self.titles

    def texts(self, text_field: str) -> list[str]:
        """Training texts (:data:`~recsys.alignment.sources.TEXT_FIELDS`), each falling back on the other."""
        first, second = (self.titles, self.descriptions) if text_field == "title" else (self.descriptions, self.titles)
        return [(a or "").strip() or (b or "").strip() for a, b in zip(first, second, strict=True)]


def load_source_data(source: Any, encoder: Any, *, cache_dir: Any = None, progress: Any = None) -> SourceData:
    """A :class:`~recsys.alignment.sources.Source`'s image items with their features (from the cache)."""
    from recsys.encoding import catalogue_features

    items = source.catalogue.items
    feats = catalogue_features(
        source.catalogue, "image", encoder, ["embedding", "class_proba"], cache_dir=cache_dir, progress=progress
    )
    rows = np.flatnonzero(feats["embedding"].present & feats["class_proba"].present)
    pick = rows.tolist()
    return SourceData(
        source.name,
        feats["embedding"].vectors[rows],
        feats["class_proba"].vectors[rows],
        [items[i].title for i in pick],
        [items[i].description for i in pick],
        [items[i].category for i in pick],
        [items[i].text for i in pick],
    )


def category_query(path: str, level: str) -> str:
    """``symbols/money/us/coins`` -> ``symbols money us coins`` (leaf) or ``symbols`` (top)."""
    parts = [re.sub(r"^[\d_]+", "", p).replace("_", " ").replace("-", " ").strip() for p in path.split("/")]
    parts = [p for p in parts if p]
    return " ".join(parts if level == "leaf" else parts[:1]) or path


def strip_common_root(categories: Sequence[str]) -> list[str]:
    """Drop the leading path segments every category shares (keeping at least the last segment)."""
    split = [c.strip("/").split("/") for c in categories]
    if not split:
        return []
    common = 0
    while all(len(s) > common + 1 for s in split) and len({s[common] for s in split}) == 1:
        common += 1
    return ["/".join(s[common:]) for s in split]


def level_labels(categories: Sequence[str], level: str) -> tuple[list[str], np.ndarray]:
    """The category queries of one level and each item's query index (-1: no category)."""
    paths = strip_common_root([c for c in categories if c])
    it = iter(paths)
    names = [category_query(next(it), level) if c else "" for c in categories]
    queries = sorted({n for n in names if n})
    index = {q: i for i, q in enumerate(queries)}
    return queries, np.array([index.get(n, -1) for n in names], dtype=np.int64)


def title_labels(titles: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct titles (compared case- and space-insensitively) and each item's title index."""
    keys = [" ".join(t.split()).casefold() for t in titles]
    shown: dict[str, str] = {}
    for key, title in zip(keys, titles, strict=True):
        if key:
            shown.setdefault(key, " ".join(title.split()))
    order = sorted(shown)
    index = {k: i for i, k in enumerate(order)}
    return [shown[k] for k in order], np.array([index.get(k, -1) for k in keys], dtype=np.int64)


def heldout_metrics(vectors: np.ndarray, data: SourceData, encode: Encode) -> dict[str, Any]:
    """Instance R@1/R@10 by title and category P@10 per level, with chance, for aligned item vectors."""
    titles, tlab = title_labels(data.titles)
    inst = label_topk_metrics(encode(titles), vectors, tlab)
    out: dict[str, Any] = {
        "items": len(data),
        "instance": {"queries": inst["queries"], **{k: inst[k] for k in ("recall@1", "recall@10")}},
        "chance": {"instance": {k: inst[f"{k}_chance"] for k in ("recall@1", "recall@10")}},
    }
    for level in LEVELS:
        queries, lab = level_labels(data.categories, level)
        m = label_topk_metrics(encode(queries), vectors, lab, ks=(10,))
        out[f"category_{level}"] = {"queries": m["queries"], "precision@10": m["precision@10"]}
        out["chance"][f"category_{level}"] = {"precision@10": m["precision@10_chance"]}
    return out


def validation_score(metrics: dict[str, Any]) -> float:
    """What inner validation maximises: the mean of instance R@10 and top-level category P@10."""
    return 0.5 * (metrics["instance"]["recall@10"] + metrics["category_top"]["precision@10"])


@dataclass(frozen=True)
class CrossConfig:
    """The search space and budget of one cross-catalogue run."""

    bridge_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    text_fields: tuple[str, ...] = TEXT_FIELDS
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=15))
    max_gallery: int = 2000  # held-out / validation items scored (a seeded sample; 0: all)
    max_train: int = 6000  # training pairs drawn per source (a seeded sample; 0: all): bounds the CPU time
    seed: int = 0


def sample_rows(n: int, max_items: int, seed: int) -> np.ndarray:
    """A sorted seeded sample of ``max_items`` of ``n`` rows (all of them when ``max_items`` is 0 or >= n)."""
    if max_items <= 0 or n <= max_items:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_items, replace=False))


class CrossCatalogue:
    """Trains heads on source unions and scores aligners on held-out sources (see the module docstring).

    ``bridge`` maps class probabilities into the text space (the label bridge); ``encode`` embeds
    texts; ``ids`` are the encoder ids written into the heads.
    """

    def __init__(
        self,
        sources: Sequence[SourceData],
        *,
        bridge: Callable[[np.ndarray], np.ndarray],
        encode: Encode,
        ids: dict[str, str],
        config: CrossConfig = CrossConfig(),
        log: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        names = [s.name for s in sources]
        if len(sources) < 2 or len(set(names)) != len(names):
            raise InputError(f"Cross-catalogue evaluation needs at least two distinctly named sources, got {names}.")
        for s in sources:
            if len(s) < 2:
                raise InputError(f"The source {s.name} has {len(s)} items with an image; at least two are needed.")
        self.sources = {s.name: s for s in sources}
        self.bridge = bridge
        self.encode = encode
        self.ids = ids
        self.config = config
        self.log = log
        self._heads: dict[tuple[tuple[str, ...], str], Any] = {}
        self._choices: dict[tuple[str, ...], dict[str, Any]] = {}

    def train_head(self, names: Sequence[str], text_field: str) -> Any:
        """A projection head on the union of the named sources' (image, text) pairs (trained once per
        union and text: the calibration benchmark reuses the heads the retrieval one trained)."""
        key = (tuple(names), text_field)
        if key not in self._heads:
            self._heads[key] = self._train_head(names, text_field)
        return self._heads[key]

    def _train_head(self, names: Sequence[str], text_field: str) -> Any:
        parts = [self._train_rows(n) for n in names]
        texts = [t for p in parts for t in p.texts(text_field)]
        target = unit_vectors(self.encode(texts))
        cfg = self.config.train
        return train_projection(
            np.concatenate([p.embedding for p in parts]),
            target,
            groups=groups_from_targets(target),
            source_modality="image",
            source_encoder_id=self.ids["image"],
            text_encoder_id=self.ids["text"],
            target_space=self.ids["space"],
            config=replace(cfg, seed=self.config.seed),
            extra={"sources": list(names), "text_field": text_field},
        ).aligner

    def _train_rows(self, name: str) -> SourceData:
        data = self.sources[name]
        return data.subset(sample_rows(len(data), self.config.max_train, self.config.seed + 1))

    def gallery(self, name: str) -> SourceData:
        data = self.sources[name]
        return data.subset(sample_rows(len(data), self.config.max_gallery, self.config.seed))

    def _ensembles(self, head: Any, data: SourceData, bridge_vecs: np.ndarray) -> dict[float, np.ndarray]:
        head_vecs = head.transform(data.embedding)
        return {w: mix(bridge_vecs, head_vecs, w) for w in self.config.bridge_weights}

    def aligned(self, head: Any, data: SourceData, bridge_weight: float) -> np.ndarray:
        """``data``'s images in the text space through the label bridge and ``head`` mixed at ``bridge_weight``."""
        return mix(self.bridge(data.class_proba), head.transform(data.embedding), bridge_weight)

    def select(self, train_names: Sequence[str]) -> dict[str, Any]:
        """Pick the training text and bridge weight by leave-one-source-out within ``train_names``
        (once per set of names)."""
        key = tuple(train_names)
        if key not in self._choices:
            self._choices[key] = self._select(train_names)
        return self._choices[key]

    def _select(self, train_names: Sequence[str]) -> dict[str, Any]:
        if len(train_names) < 2:
            return {
                "text_field": self.config.text_fields[0],
                "bridge_weight": self.config.bridge_weights[0],
                "inner": [],
                "note": "one training source: no inner split, first candidates used",
            }
        scores: dict[tuple[str, float], list[float]] = {}
        inner = []
        for val in train_names:
            rest = [n for n in train_names if n != val]
            data = self.gallery(val)
            bridge_vecs = self.bridge(data.class_proba)
            for text_field in self.config.text_fields:
                head = self.train_head(rest, text_field)
                for w, vecs in self._ensembles(head, data, bridge_vecs).items():
                    m = heldout_metrics(vecs, data, self.encode)
                    scores.setdefault((text_field, w), []).append(validation_score(m))
                    inner.append(
                        {
                            "train": rest,
                            "validate": val,
                            "text_field": text_field,
                            "bridge_weight": w,
                            "score": validation_score(m),
                        }
                    )
                self.log(f"  inner: {'+'.join(rest)} -> {val}, text={text_field}")
        (text_field, weight), _ = max(scores.items(), key=lambda kv: (float(np.mean(kv[1])), -kv[0][1]))
        return {"text_field": text_field, "bridge_weight": weight, "inner": inner}

    def split(self, test: str, fixed: dict[str, tuple[Any, set[str]]] | None = None) -> dict[str, Any]:
        """Train on every source but ``test`` (choices made on those alone), score on ``test``.

        ``fixed``: already trained aligners to score too, as ``name -> (transform of the
        embedding+class_proba features, names of the sources it was trained on)``; one trained on
        ``test`` is left out (it would not be a held-out figure).
        """
        train_names = [n for n in self.sources if n != test]
        self.log(f"held out: {test}; training on {', '.join(train_names)}")
        choice = self.select(train_names)
        data = self.gallery(test)
        bridge_vecs = self.bridge(data.class_proba)
        head = self.train_head(train_names, choice["text_field"])
        head_vecs = head.transform(data.embedding)
        w = choice["bridge_weight"]
        rows = {
            "label-bridge (no training)": bridge_vecs,
            f"projection (text={choice['text_field']})": head_vecs,
            f"ensemble (w_bridge={w:g}, chosen)": mix(bridge_vecs, head_vecs, w),
        }
        for name, (transform, trained_on) in (fixed or {}).items():
            if test not in trained_on:
                rows[name] = transform(np.concatenate([data.embedding, data.class_proba], axis=1))
        results = [{"aligner": name, **heldout_metrics(vecs, data, self.encode)} for name, vecs in rows.items()]
        return {
            "test": test,
            "train": train_names,
            "choice": choice,
            "rows": results,
            "head_training": head.meta["training"],
        }

    def run(self, fixed: dict[str, tuple[Any, set[str]]] | None = None) -> list[dict[str, Any]]:
        """Every leave-one-source-out split, in source order."""
        return [self.split(name, fixed) for name in self.sources]
