"""Training and evaluation sources: a catalogue, or the part of it that came from one provenance.

A large catalogue may merge several origins (clip art, icon sets) and record each item's in a
``source`` column (e.g. ``openclipart-png 1:0.18: usr/share/...`` or ``@iconify/json 2.2: mdi:home``).
Heads train on the union of several sources, and the cross-catalogue benchmark holds one out,
so a source must be selectable by a short name: ``openclipart``, ``iconify``, or an icon set such
as ``mdi``. A name matches an item when it appears in its ``source`` value as a whole word
(case-insensitive; letters and digits on either side break the match, so ``bi`` does not match
``bitcoin-icons``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import InputError

SOURCE_COLUMN = "source"

#: What a training pair's text side can be: the description (the title when there is none), or the title.
#: Icon sets describe every icon alike ("Academicons icon."), so there the title is the only text that
#: says what the picture shows.
TEXT_FIELDS = ("description", "title")


def item_description(item: Any) -> str:
    return (item.description or "").strip() or (item.title or "").strip()


def item_text(item: Any, text_field: str = "description") -> str:
    """The text an item is paired with in training (:data:`TEXT_FIELDS`)."""
    if text_field == "title":
        return (item.title or "").strip() or (item.description or "").strip()
    if text_field == "description":
        return item_description(item)
    raise InputError(f"Unknown training text {text_field!r}; use one of {', '.join(TEXT_FIELDS)}.")


@dataclass(frozen=True)
class Source:
    """A named set of items of one catalogue (all of it when no source name narrowed it)."""

    name: str
    catalogue: Any  # recsys.catalogue.Catalogue holding only the selected items


def source_origin(value: str) -> str:
    """A ``source`` value without its last ``/`` or ``:`` component (the item's own name)."""
    cut = max(value.rfind("/"), value.rfind(":"))
    return value[:cut] if cut > 0 else value


def source_matches(value: str, name: str) -> bool:
    """Whether ``name`` is a token of the origin of a ``source`` value (see the module docstring)."""
    name = name.strip().lower()
    return bool(name) and name in re.split(r"[\s/:@]+", source_origin(value).lower())


def select_source(catalogue: Any, name: str | None = None) -> Source:
    """The items of ``catalogue`` whose ``source`` matches ``name`` (all items when ``name`` is None).

    Raises :class:`InputError` when nothing matches, naming a few values the column does hold.
    """
    from recsys.catalogue import Catalogue

    folder = Path(catalogue.root).name
    if name is None:
        return Source(folder, catalogue)
    values = [str(item.extra.get(SOURCE_COLUMN, "")) for item in catalogue.items]
    if not any(values):
        raise InputError(
            f"--source {name!r}: the catalogue at {catalogue.root} has no '{SOURCE_COLUMN}' column to select by; "
            "leave --source out to train on all of it."
        )
    items = [item for item, value in zip(catalogue.items, values, strict=True) if source_matches(value, name)]
    if not items:
        seen = sorted({v.split(":", 1)[0].strip() for v in values if v})[:5]
        raise InputError(
            f"--source {name!r} matches no item of the catalogue at {catalogue.root}; its '{SOURCE_COLUMN}' "
            f"values start with e.g. {', '.join(repr(s) for s in seen)}."
        )
    return Source(name, Catalogue(catalogue.root, items, []))


def load_sources(specs: Sequence[tuple[str, Sequence[str]]], *, cache_dir: Any = None) -> list[Source]:
    """``[(catalogue folder, [source names])]`` -> sources; no names means the whole catalogue.

    Each catalogue is loaded once (media checks remembered in ``cache_dir``) however many of its
    sources are named. An empty list is an :class:`InputError`.
    """
    from recsys.catalogue import load_catalogue

    if not specs:
        raise InputError("No training source given; name at least one catalogue with --catalogue DIR.")
    sources: list[Source] = []
    for folder, names in specs:
        catalogue = load_catalogue(folder, cache_dir=cache_dir)
        sources += [select_source(catalogue, n) for n in names] if names else [select_source(catalogue)]
    return sources
