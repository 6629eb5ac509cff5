"""The sentence-transformers text encoder: its network loads on first use, once, and its width is
read from the folder's module configs until then."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.encoders import create_encoder
from recsys.encoders.text import SentenceTransformerEncoder, configured_dimension, minilm_folder
from recsys.errors import MissingWeightsError


def test_the_network_loads_on_first_use_and_once(monkeypatch):
    encoder = SentenceTransformerEncoder(minilm_folder(), name="minilm", device="cpu")  # not the shared one
    assert not encoder._network.built
    assert encoder.dim == 384 and encoder.encoder_id.startswith("text/minilm@")
    assert not encoder._network.built  # the width came from the folder's configs
    import sentence_transformers

    built = []
    real = sentence_transformers.SentenceTransformer

    def counted(*args, **kwargs):
        built.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", counted)
    threads = [threading.Thread(target=encoder.encode, args=(["a red apple"],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1  # four queries at once: one of them loaded the network, the others waited for it
    assert encoder._network.built and encoder.dim == 384
    assert encoder.encode(["a red apple"]).shape == (1, 384) and len(built) == 1


def test_a_folder_without_model_files_is_refused_at_once(tmp_path):
    with pytest.raises(MissingWeightsError, match="not a sentence-transformers model folder"):
        create_encoder(f"sentence-transformers:{tmp_path}", device="cpu")


def test_a_folder_whose_model_cannot_load_says_so_on_first_use(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    encoder = create_encoder(f"sentence-transformers:{folder}", device="cpu")
    with pytest.raises(MissingWeightsError, match="Could not load the sentence-transformers model"):
        encoder.encode(["words"])


def test_the_declared_width_follows_pooling_modes_and_dense_layers(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(minilm_folder(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    assert configured_dimension(folder) == 384
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_max_tokens": True}))
    assert configured_dimension(folder) == 768  # mean and max, side by side
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text('{"in_features": 768, "out_features": 256}')
    dense = {"idx": 3, "name": "3", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (folder / "modules.json").write_text(json.dumps([*modules, dense]))
    assert configured_dimension(folder) == 256
    (folder / "modules.json").write_text(json.dumps([*modules, {**dense, "type": "somewhere.Unknown"}]))
    assert configured_dimension(folder) is None  # a module not read here: the network says


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=24), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(modules=JSON, pooling=JSON, raw=st.binary(max_size=40))
def test_any_module_configs_give_a_width_or_none(tmp_path_factory, modules, pooling, raw):
    """Whatever the folder's configs hold (any JSON, or bytes that are not JSON), the width is a
    positive integer or None (the network decides), never an exception."""
    folder = tmp_path_factory.mktemp("configs")
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "config.json").write_bytes(raw)
    width = configured_dimension(folder)
    assert width is None or (isinstance(width, int) and width > 0)
    listed = [{"type": "x.Pooling", "path": "1_Pooling"}]
    (folder / "modules.json").write_text(json.dumps(listed))
    width = configured_dimension(folder)
    assert width is None or (isinstance(width, int) and width > 0)

