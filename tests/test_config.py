"""The typed settings schema (recsys.config through PipelineConfig): wrong values are named with
their file and key, variable or option; property tests feed it generated TOML and variables."""

from __future__ import annotations

import dataclasses
import json
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.config import whole_number
from recsys.errors import ConfigError, RecsysError
from recsys.pipeline import PipelineConfig

FIELDS = {f.name: f for f in dataclasses.fields(PipelineConfig)}


@pytest.fixture(autouse=True)
def no_recsys_environment(monkeypatch):
    for var in [v for v in os.environ if v.startswith("RECSYS_")]:
        monkeypatch.delenv(var)


@pytest.mark.parametrize(
    "toml, words",
    [
        ("image_encoder = 5", ["c.toml: key 'image_encoder'", "an encoder name", "got 5 (an integer)"]),
        ("pipeline = 5", ["key 'pipeline'", "table", "got 5"]),
        ("[pipeline]\nbatch_size = '8'", ["key 'batch_size'", "whole number >= 1", "got '8'"]),
        ("batch_size = true", ["batch_size", "got True (a boolean)"]),
        ("batch_size = 0", ["batch_size", ">= 1", "got 0"]),
        ("search = 'fast'", ["search", "one of 'auto', 'exact', 'ann'", "got 'fast'"]),
        ("precision = 16", ["precision", "got 16"]),
        ("ray_actors = 1.5", ["ray_actors", "got 1.5 (a number)"]),
        ("device = 'bogus'", ["device", "'bogus' is not a device"]),
        ("image_aligner = [1, 2]", ["image_aligner", "(an array)"]),
        ("store = {uri = 'x'}", ["store", "(a table)"]),
        ("text_encoder = 'a", ["not valid TOML"]),
    ],
)
def test_file_values_are_named_by_file_key_type_and_value(tmp_path, toml, words):
    (tmp_path / "c.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as err:
        PipelineConfig.layered(config_file=tmp_path / "c.toml")
    assert all(word in str(err.value) for word in words), str(err.value)


def test_files_must_exist_and_be_utf8(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.layered(config_file=tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        PipelineConfig.layered(config_file=tmp_path)
    (tmp_path / "c.toml").write_bytes(b"# fine\ntext_encoder = 'caf\xe9'\n")
    with pytest.raises(ConfigError, match="not UTF-8 text .byte 0xe9 on line 2"):
        PipelineConfig.layered(config_file=tmp_path / "c.toml")
    PipelineConfig.layered(tmp_path)  # the catalogue's own recsys.toml is optional


def test_environment_and_options(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_BATCH_SIZE", " 8 ")
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "")  # "" keeps meaning "no aligner"
    config = PipelineConfig.layered(tmp_path, device="cpu")
    assert (config.batch_size, config.aligner_spec("image"), config.device) == (8, None, "cpu")
    monkeypatch.setenv("RECSYS_BATCH_SIZE", "abc")
    with pytest.raises(ConfigError, match="environment variable RECSYS_BATCH_SIZE must be a whole number"):
        PipelineConfig.layered(tmp_path)
    monkeypatch.delenv("RECSYS_BATCH_SIZE")
    monkeypatch.setenv("RECSYS_CACHE_DIR", "/dev/null")
    with pytest.raises(ConfigError, match="RECSYS_CACHE_DIR: '/dev/null' is not a folder"):
        PipelineConfig.layered(tmp_path)
    monkeypatch.delenv("RECSYS_CACHE_DIR")
    monkeypatch.setenv("RECSYS_QUERY_THREADS", "many")  # thread overrides are checked with the config
    with pytest.raises(ConfigError, match="RECSYS_QUERY_THREADS"):
        PipelineConfig.layered(tmp_path)
    monkeypatch.delenv("RECSYS_QUERY_THREADS")
    with pytest.raises(ConfigError, match="option --device: 'bogus'"):
        PipelineConfig.layered(tmp_path, device="bogus")


def test_the_api_checks_too():
    with pytest.raises(ConfigError, match="PipelineConfig.batch_size"):
        PipelineConfig(batch_size="32")
    with pytest.raises(ConfigError, match="PipelineConfig.search"):
        dataclasses.replace(PipelineConfig(), search="fast")


def test_whole_number():
    assert whole_number(" 3 ", "X", minimum=1) == 3
    with pytest.raises(ConfigError, match="X must be a whole number of threads .1 or more., got 'two'"):
        whole_number("two", "X", minimum=1, unit="threads")
    with pytest.raises(ConfigError, match="X must be at least 1, got 0"):
        whole_number("0", "X", minimum=1)


# -- properties ---------------------------------------------------------------------------------

def toml_string(text: str) -> str:
    """A TOML basic string; JSON escapes are TOML escapes, except that TOML has no surrogates."""
    return json.dumps(text, ensure_ascii=False)


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else toml_string(key)


scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30).map(toml_string),
    st.sampled_from(["1979-05-27T07:32:00Z", "07:32:00", "1979-05-27"]),
    st.sampled_from(["cpu", "cuda", "mps", "auto", "exact", "ann", "fp16", "minilm", "none", "/dev/null", "."]).map(
        toml_string
    ),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["a", "b", "uri"]), inner, max_size=2).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=4,
)
keys = st.one_of(st.sampled_from([*FIELDS, "pipeline"]), st.text(min_size=1, max_size=12))


def assert_well_typed(config: PipelineConfig) -> None:
    """Every field of an accepted config has its declared type (and counts are >= 1)."""
    for name in FIELDS:
        value = getattr(config, name)
        if name in ("batch_size", "ray_actors"):
            assert value is None or (type(value) is int and value >= 1), (name, value)  # None: decided per device
        else:
            assert value is None or isinstance(value, str), (name, value)


#: Environment text: anything an OS environment can hold (undecodable bytes arrive as surrogates).
env_text = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
    st.binary(max_size=20).map(lambda b: os.fsdecode(b.replace(b"\x00", b""))),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(st.tuples(keys, toml_values), max_size=4),
    table=st.booleans(),
    junk=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_any_toml_file_gives_a_config_or_a_config_error(tmp_path, entries, table, junk):
    """Generated TOML (wrong types, unknown keys, bad bytes) never escapes as anything but RecsysError."""
    lines = ["[pipeline]"] if table else []
    lines += [f"{toml_key(k)} = {v}" for k, v in entries]
    data = "\n".join(lines).encode("utf-8") + b"\n" + (junk or b"")
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    try:
        config = PipelineConfig.layered(config_file=path)
    except RecsysError:
        return
    assert_well_typed(config)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(st.sampled_from(sorted(FIELDS)), env_text, max_size=4))
def test_any_environment_gives_a_config_or_a_config_error(env):
    """Arbitrary text, undecodable bytes included, in RECSYS_<FIELD> variables."""
    variables = {f"RECSYS_{name.upper()}": value for name, value in env.items()}
    try:
        with mock.patch.dict(os.environ, variables):
            config = PipelineConfig.layered()
    except RecsysError:
        return
    assert_well_typed(config)
