"""What a newcomer sees first: one line about the catalogue, example queries, a sample picture and sound.

Everything is chosen from the loaded catalogue, so any catalogue gets its own examples: the
largest top-level categories, and in each the item that a fixed hash of the ids picks among
those with a short plain title. The same catalogue always gives the same examples.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from recsys.catalogue import Catalogue, Item

_PLAIN_TITLE = re.compile(r"^[^\W\d_]{3,}(?: [^\W\d_]{3,}){0,2}$")
MEDIA_WORDS = {"image": "a picture", "audio": "a sound"}


def _pick(item_id: str) -> str:
    """A stable pseudo-random order of items (not alphabetical, not manifest order)."""
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def _top(item: Item) -> str:
    return item.category.split("/", 1)[0] if item.category else ""


def catalogue_name(catalogue: Catalogue) -> str:
    """The first ``# heading`` of the catalogue folder's README.md if it has one, else the folder's name."""
    readme = catalogue.root / "README.md"
    try:
        with readme.open(encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("# ") and line[2:].strip():
                    return line[2:].strip()
    except OSError:
        pass
    return f"the catalogue '{catalogue.root.name}'"


def catalogue_summary(catalogue: Catalogue) -> str:
    """One line: what the catalogue is, how many items and categories, how many have a picture or a sound."""
    n = len(catalogue)
    tops = Counter(_top(it) for it in catalogue.items if it.category)
    shown = 4
    biggest = ", ".join(name for name, _ in sorted(tops.items(), key=lambda kv: (-kv[1], kv[0]))[:shown])
    biggest += ", ..." if len(tops) > shown else ""  # only when some are not named
    images = sum(it.image is not None for it in catalogue.items)
    sounds = sum(it.audio is not None for it in catalogue.items)
    cats = len(catalogue.categories)
    line = f"{catalogue_name(catalogue)}: {n:,} item{'s' * (n != 1)}"
    if cats:
        line += f" in {cats:,} categor{'ies' if cats != 1 else 'y'}" + (f" ({biggest})" if biggest else "")
    return line + f"; {images:,} with a picture, {sounds:,} with a sound."


def example_queries(catalogue: Catalogue, n: int = 4) -> list[str]:
    """Up to ``n`` text queries: a plain item title from each of the largest top-level categories."""
    by_top: dict[str, list[Item]] = {}
    for item in catalogue.items:
        if _PLAIN_TITLE.match(item.title.strip()):
            by_top.setdefault(_top(item), []).append(item)
    order = sorted(by_top, key=lambda top: (-len(by_top[top]), top))
    out: list[str] = []
    for top in order:
        for item in sorted(by_top[top], key=lambda it: _pick(it.id)):
            text = item.title.strip().lower()
            if text not in out:
                out.append(text)
                break
        if len(out) == n:
            break
    return out


def sample_item(catalogue: Catalogue, modality: str) -> Item | None:
    """A catalogue item with an image (``modality="image"``) or a sound (``"audio"``) to try as a query."""
    if modality not in MEDIA_WORDS:
        raise ValueError(f"no sample for modality {modality!r}")
    having = [it for it in catalogue.items if getattr(it, modality) is not None]
    return min(having, key=lambda it: _pick(it.id)) if having else None


@dataclass(frozen=True)
class Intro:
    """Everything :func:`intro` chose for one catalogue."""

    summary: str
    examples: list[str]
    samples: dict[str, Item | None]


_INTROS: weakref.WeakKeyDictionary[Catalogue, Intro] = weakref.WeakKeyDictionary()


def intro(catalogue: Catalogue) -> Intro:
    """The summary, examples and samples of ``catalogue``, chosen once per loaded catalogue: each is a
    pass over every item (a hash per item for the samples), and Streamlit reruns the page on every click."""
    found = _INTROS.get(catalogue)
    if found is None:
        found = _INTROS[catalogue] = Intro(
            catalogue_summary(catalogue),
            example_queries(catalogue),
            {m: sample_item(catalogue, m) for m in MEDIA_WORDS},
        )
    return found
