"""Leave-one-source-out evaluation on small synthetic sources that share one image->text map."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from recsys.alignment.crosscatalogue import (
    CrossCatalogue,
    CrossConfig,
    SourceData,
    category_query,
    heldout_metrics,
    level_labels,
    sample_rows,
    strip_common_root,
    title_labels,
)
from recsys.alignment.projection import TrainConfig
from recsys.errors import InputError
from recsys.vectors import unit_vectors

D_TEXT, D_IMG, N_CLASSES = 16, 24, 6
MIX = np.random.default_rng(42).normal(size=(D_TEXT, D_IMG))
CLASS_EMB = unit_vectors(np.random.default_rng(7).normal(size=(N_CLASSES, D_TEXT)))


def encode(texts):
    rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=D_TEXT) for t in texts]
    return unit_vectors(np.asarray(rows, dtype=np.float32).reshape(len(texts), D_TEXT))


def _source(name: str, n: int, root: str, seed: int) -> SourceData:
    rng = np.random.default_rng(seed)
    titles = [f"{name} thing {i % (n // 2)}" for i in range(n)]  # every title twice
    embedding = (encode(titles) @ MIX + 0.05 * rng.normal(size=(n, D_IMG))).astype(np.float32)
    proba = rng.dirichlet(np.ones(N_CLASSES), size=n).astype(np.float32)
    cats = [f"{root}/group{i % 3}/sub{i % 2}" for i in range(n)]
    return SourceData(name, embedding, proba, titles, [f"A {name} picture." for _ in titles], cats)


def _cross(**config):
    sources = [_source("a", 80, "clip", 0), _source("b", 60, "icons", 1), _source("c", 40, "x", 2)]
    cfg = CrossConfig(
        bridge_weights=(0.0, 0.5), train=TrainConfig(epochs=40, batch_size=64), max_gallery=0, max_train=0, **config
    )
    ids = {"image": "image/fake@1", "text": "text/fake@1", "space": "fake-text"}
    return CrossCatalogue(sources, bridge=lambda p: unit_vectors(p @ CLASS_EMB), encode=encode, ids=ids, config=cfg)


def test_category_levels_drop_the_shared_root():
    assert strip_common_root(["clipart/animals/cats", "clipart/food"]) == ["animals/cats", "food"]
    assert strip_common_root(["icons/set", "icons/set"]) == ["set", "set"]  # the last segment always stays
    assert strip_common_root(["animals", "food/fruit"]) == ["animals", "food/fruit"]
    queries, labels = level_labels(["clipart/food/fruit", "clipart/animals", "", "clipart/food/veg"], "top")
    assert queries == ["animals", "food"] and labels.tolist() == [1, 0, -1, 1]
    assert category_query("symbols/money/00_symbols", "leaf") == "symbols money symbols"
    assert category_query("ui-24px/akar-icons", "top") == "ui 24px"


def test_titles_compare_case_and_space_insensitively():
    titles, labels = title_labels(["Red  Apple", "red apple", "Pear", ""])
    assert titles == ["Pear", "Red Apple"] and labels.tolist() == [1, 1, 0, -1]


def test_sample_rows_is_seeded_and_sorted():
    assert sample_rows(5, 0, 0).tolist() == list(range(5))
    a = sample_rows(100, 10, 3)
    assert len(a) == 10 and a.tolist() == sorted(a.tolist()) and a.tolist() == sample_rows(100, 10, 3).tolist()


def test_heldout_metrics_report_chance_beside_every_figure():
    data = _source("a", 20, "r", 0)
    m = heldout_metrics(encode(data.titles), data, encode)  # the items' own title vectors: perfect
    assert m["instance"]["recall@1"] == 1.0 and m["instance"]["queries"] == 10
    assert m["chance"]["instance"]["recall@10"] == pytest.approx(10 * 2 / 20 / 2)
    assert set(m) >= {"category_top", "category_leaf"} and m["chance"]["category_top"]["precision@10"] > 0


def test_every_split_trains_without_its_test_source_and_transfers():
    cross = _cross()
    fixed = {"trained on a": (lambda f: unit_vectors(f[:, :D_TEXT]), {"a"})}
    splits = cross.run(fixed)
    assert [s["test"] for s in splits] == ["a", "b", "c"]
    for split in splits:
        assert split["test"] not in split["train"]
        assert split["head_training"]["sources"] == split["train"]
        assert split["choice"]["bridge_weight"] in (0.0, 0.5)
        assert split["choice"]["text_field"] in ("description", "title")
        assert all(r["validate"] != split["test"] and split["test"] not in r["train"] for r in split["choice"]["inner"])
        names = [r["aligner"] for r in split["rows"]]
        assert names[0] == "label-bridge (no training)"
        assert ("trained on a" in names) == (split["test"] != "a")
        head = split["rows"][1]
        assert head["instance"]["recall@10"] > 3 * head["chance"]["instance"]["recall@10"]
    # titles carry the shared map; the descriptions ("A b picture.") do not
    assert {s["choice"]["text_field"] for s in splits} == {"title"}


def test_too_few_sources_are_refused():
    with pytest.raises(InputError, match="at least two"):
        CrossCatalogue([_source("a", 10, "r", 0)], bridge=lambda p: p, encode=encode, ids={})
