"""Typed settings: ``recsys.toml`` / ``--config`` files, ``RECSYS_*`` variables and options, checked
against one schema before any work starts.

A wrong value is reported where the user wrote it (the file and key, the environment variable or
the option) with the type expected and the value found. Left to the code that uses it,
``image_encoder = 5`` surfaced as a ``TypeError`` in the encoder registry, ``pipeline = 5`` as
``'int' object is not iterable``, and ``RECSYS_CACHE_DIR=/dev/null`` as ``NotADirectoryError``
after the whole catalogue had been read.

A settings dataclass *is* the schema: each field's annotation (``str``, ``int``, ``float``,
``bool``, each optionally ``| None``) and its ``metadata``:

``expects``
    how a message describes a valid value ("an encoder name"); defaults to the type.
``choices``
    the allowed values.
``minimum``
    the smallest allowed number.
``check``
    ``(value) -> problem or None`` for what a type cannot say (a usable device, a writable folder).

:func:`validate` checks a built instance (``__post_init__``); :func:`check_value` one value with
the place it came from; :func:`env_values` reads the ``RECSYS_<FIELD>`` variables.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from recsys.errors import ConfigError

ENV_PREFIX = "RECSYS_"
#: Longest value repeated in a message.
SHOWN_CHARS = 60

_TYPE_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
_VALUE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "dict": "a table"}


def shown(value: Any) -> str:
    """``value`` for a one-line message: its repr (cut when long) and, for non-strings, its kind."""
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 3] + "..."
    if isinstance(value, str):
        return text
    kind = _VALUE_WORDS.get(type(value).__name__, "an array" if isinstance(value, list) else type(value).__name__)
    return f"{text} ({kind})"


def whole_number(raw: str, where: str, *, minimum: int | None = None, unit: str = "") -> int:
    """Parse a user-typed whole number (``" 3 "``), or raise :class:`ConfigError` naming ``where``."""
    of_unit = f" of {unit}" if unit else ""
    at_least = f" ({minimum} or more)" if minimum is not None else ""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{where} must be a whole number{of_unit}{at_least}, got {shown(raw)}.") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where} must be at least {minimum}, got {value}.")
    return value


def read_table(path: str | os.PathLike[str], table: str) -> dict[str, Any]:
    """The ``[table]`` of TOML file ``path`` (or its top level when it has no such table).

    Raises :class:`ConfigError` for a file that is missing, unreadable, not UTF-8, not TOML, or
    whose ``table`` is not a table.
    """
    from recsys.paths import UnreadableText, input_file_problem, read_utf8, show

    problem = input_file_problem(path)
    if problem is not None:
        raise ConfigError(f"configuration file {show(path)} {problem}.")
    try:
        text = read_utf8(path)
    except UnreadableText as exc:
        if exc.os_error is not None:
            error = exc.os_error
            raise ConfigError(f"configuration file {show(path)} cannot be read ({error.strerror or error}).") from None
        raise ConfigError(
            f"configuration file {show(path)} is not UTF-8 text (byte 0x{exc.byte:02x} on line {exc.line}); "
            "save it as UTF-8."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {show(path)} is not valid TOML: {exc}.") from None
    section = data.get(table, data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: key '{table}' must be a table ([{table}]), got {shown(section)}.")
    return dict(section)


@functools.cache
def _schema(cls: type) -> dict[str, tuple[dataclasses.Field, tuple[type, ...], bool]]:
    """Field name -> (field, accepted types, whether None is allowed)."""
    hints = typing.get_type_hints(cls)
    schema = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = typing.get_args(hint) if union else (hint,)
        schema[f.name] = (f, tuple(a for a in args if a is not type(None)), type(None) in args)
    return schema


def _expects(f: dataclasses.Field, kinds: tuple[type, ...]) -> str:
    if "expects" in f.metadata:
        return f.metadata["expects"]
    if "choices" in f.metadata:
        return "one of " + ", ".join(repr(c) for c in f.metadata["choices"])
    words = " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds)
    return f"{words} >= {f.metadata['minimum']}" if "minimum" in f.metadata else words


def _has_type(value: Any, kinds: tuple[type, ...]) -> bool:
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return True
        if kind is str and isinstance(value, str):
            return True
    return False


def check_value(cls: type, name: str, value: Any, where: str) -> Any:
    """``value`` if it fits field ``name`` of settings class ``cls``, else :class:`ConfigError` naming ``where``."""
    f, kinds, optional = _schema(cls)[name]
    if value is None and optional:
        return value
    expects = _expects(f, kinds)
    if not _has_type(value, kinds):
        raise ConfigError(f"{where} must be {expects}, got {shown(value)}.")
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise ConfigError(f"{where} must be {expects}, got {shown(value)}.")
    if "minimum" in f.metadata and value < f.metadata["minimum"]:
        raise ConfigError(f"{where} must be {expects}, got {shown(value)}.")
    check: Callable[[Any], str | None] | None = f.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem is not None:
        raise ConfigError(f"{where}: {shown(value)} {problem}.")
    return value


def validate(settings: Any) -> None:
    """Check every field of a settings dataclass instance (call it from ``__post_init__``)."""
    cls = type(settings)
    for f in dataclasses.fields(cls):
        check_value(cls, f.name, getattr(settings, f.name), f"{cls.__name__}.{f.name}")


def env_values(cls: type, environ: Mapping[str, str] | None = None) -> dict[str, tuple[Any, str]]:
    """Field name -> (value, where) for each ``RECSYS_<FIELD>`` variable set, parsed by the field's type.

    Blank variables count as unset, except for string fields (where ``""`` may mean "none").
    """
    environ = os.environ if environ is None else environ
    values: dict[str, tuple[Any, str]] = {}
    for name, (f, kinds, _) in _schema(cls).items():
        var = f"{ENV_PREFIX}{name.upper()}"
        raw = environ.get(var)
        if raw is None or (str not in kinds and not raw.strip()):
            continue
        where = f"environment variable {var}"
        values[name] = (_parse_text(raw, f, kinds, where), where)
    return values


def _parse_text(raw: str, f: dataclasses.Field, kinds: tuple[type, ...], where: str) -> Any:
    """A value typed as text (an environment variable) converted to the field's type."""
    if str in kinds:
        return raw
    if int in kinds:
        return whole_number(raw, where, minimum=f.metadata.get("minimum"))
    if float in kinds:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where} must be {_expects(f, kinds)}, got {shown(raw)}.") from None
    if bool in kinds:
        word = raw.strip().lower()
        if word in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return word in ("1", "true", "yes", "on")
        raise ConfigError(f"{where} must be true or false, got {shown(raw)}.")
    return raw  # pragma: no cover - every schema type is handled above
