"""TaggedEncoder: one encoder whose pass yields one model's embedding and another's class scores.

The tagger is the tiny random YAMNet stand-in (``_yamnet_model.py``); the embedder a pitch
histogram, so the tests need no model weights.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from recsys.encoders.tagged import TaggedEncoder
from recsys.encoders.yamnet import YamnetEncoder
from recsys.encoding import feature_id

from ._signals import tone
from ._yamnet_model import CLASSES, PitchEncoder, build_tiny_model


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> TaggedEncoder:
    tagger = YamnetEncoder(data_dir=build_tiny_model(tmp_path_factory.mktemp("tagger")))
    return TaggedEncoder(PitchEncoder(), tagger)


def test_outputs_come_from_each_model(tagged):
    clips = [tone(300.0, 1.0), tone(1300.0, 1.5)]
    out = tagged.encode_outputs(clips, batch_size=2)
    np.testing.assert_array_equal(out["embedding"], PitchEncoder().encode(clips))
    np.testing.assert_allclose(out["class_proba"], tagged.tagger.predict_proba(clips), atol=1e-6)
    np.testing.assert_allclose(tagged.predict_proba(clips), out["class_proba"], atol=1e-6)
    assert tagged.class_names == tagged.tagger.class_names and tagged.class_synonyms[1] == CLASSES[1]
    assert tagged.output_dims() == {"embedding": 8, "class_proba": len(CLASSES)}


def test_each_output_is_cached_under_the_model_that_computes_it(tagged):
    """The embedding keeps the embedder's cache (and its trained heads); class scores get the tagger's id."""
    assert tagged.encoder_id == "audio/pitch@1"
    assert feature_id(tagged, "embedding") == "audio/pitch@1"
    assert feature_id(tagged, "class_proba") == f"{tagged.tagger.encoder_id}#class_proba"


def test_preprocessor_pickles_for_worker_processes(tagged):
    pre = pickle.loads(pickle.dumps(tagged.preprocessor))
    batch = pre.collate([pre(tone(440.0, 1.2)), pre(tone(880.0, 0.3))])
    out = tagged.forward_batch(batch)
    assert out["embedding"].shape == (2, 8) and out["class_proba"].shape == (2, len(CLASSES))
