"""Label-bridge prompts with WordNet hypernyms."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from recsys.alignment.bridge import (
    LabelBridge,
    class_parents,
    class_text_cache_file,
    class_text_embeddings,
)
from recsys.vectors import unit_vectors

D = 8


class Text:
    encoder_id, space, dim = "text/fake@1", "fake-text", D

    def encode(self, texts, batch_size=32):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=D) for t in texts]
        return unit_vectors(np.asarray(rows, dtype=np.float32).reshape(len(texts), D))


class Classifier:
    modality, encoder_id = "image", "image/fake@1"
    class_names = ("Granny Smith", "tabby", "sports car")
    class_wnids = ("n07742313", "n02123045", "n04285008")  # real ImageNet ids: the shipped hierarchy names them

    def predict_proba(self, x):
        return x


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))


def test_class_parents_reads_levels_and_kind(tmp_path):
    path = tmp_path / "h.json"
    classes = [{"wnid": "n1", "lexname": "artifact", "hypernyms": [["car", "auto"], ["motor vehicle"], ["vehicle"]]}]
    path.write_text(json.dumps({"classes": classes}))
    assert class_parents(["n1", "n9"], 2, path=path) == [["car", "motor vehicle"], []]
    assert class_parents(["n1"], 1, lexname=True, path=path) == [["car", "object"]]
    assert class_parents(["n1"], 0, path=path) == [[]]


def test_parents_pull_a_class_towards_its_hypernym_and_change_the_cache_name():
    text = Text()
    plain = class_text_embeddings(["tabby"], text)
    with_cat = class_text_embeddings(["tabby"], text, parents=[["cat"]], parent_weight=0.5)
    cat = class_text_embeddings(["cat"], text)
    assert float(with_cat[0] @ cat[0]) > float(plain[0] @ cat[0])
    assert np.allclose(np.linalg.norm(with_cat, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(class_text_embeddings(["tabby"], text, parents=[[]]), plain, atol=1e-6)
    names = ["tabby"]
    assert class_text_cache_file(names, text) == class_text_cache_file(names, text, parents=[[]])
    assert class_text_cache_file(names, text) != class_text_cache_file(names, text, parents=[["cat"]])
    assert class_text_cache_file(names, text, parents=[["cat"]]) != class_text_cache_file(
        names, text, parents=[["cat"]], parent_weight=1.0
    )


def test_the_bridge_uses_wordnet_hypernyms_when_the_classes_have_wordnet_ids():
    text, image = Text(), Classifier()
    default = LabelBridge.from_encoders(image, text)
    without = LabelBridge.from_encoders(image, text, hypernym_levels=0)
    np.testing.assert_allclose(
        without.class_embeddings, class_text_embeddings(list(image.class_names), text), atol=1e-6
    )
    assert not np.allclose(default.class_embeddings, without.class_embeddings)
    apple = class_text_embeddings(["apple"], text)
    assert float(default.class_embeddings[0] @ apple[0]) > float(without.class_embeddings[0] @ apple[0])
