"""Picking one item (or one category) out of a catalogue: a list while it is short, a search box once it is long.

A select box sends every option to the browser on each rerun: fine for the demo's 950 items, a
multi-megabyte message and seconds per click at 100k, unusable at a million.
"""

from __future__ import annotations

import itertools

from recsys.catalogue import Catalogue

#: Catalogues up to this many items are offered as one list.
LIST_ALL_MAX = 2_000
#: Matches of a typed search offered at once.
MATCHES_SHOWN = 200


def needs_search(catalogue: Catalogue) -> bool:
    return len(catalogue) > LIST_ALL_MAX


def choices(catalogue: Catalogue, typed: str, preset: str | None = None) -> list[str]:
    """Ids to offer: every item of a short catalogue; else the items whose title or id contains
    ``typed`` (the first :data:`MATCHES_SHOWN`), with ``preset`` (an item chosen elsewhere, e.g. a
    card's Why button) kept first so the page opens on it."""
    if not needs_search(catalogue):
        return catalogue.ids
    found = catalogue.find(typed, limit=MATCHES_SHOWN)
    if preset is not None and preset in catalogue and preset not in found:
        found = [preset, *found[: MATCHES_SHOWN - 1]]
    return found


def category_choices(paths: list[str], typed: str, current: str | None = None) -> list[str]:
    """Category paths to offer: every one of a short tree; else those containing ``typed`` (ignoring
    case; the first :data:`MATCHES_SHOWN`), with ``current`` (the filter in force) kept first so a
    search never drops the filter the page shows. A product tree of 100k leaves is as long as a
    catalogue (and the list was built again on every rerun)."""
    if len(paths) <= LIST_ALL_MAX:
        return paths
    needle = " ".join(str(typed).split()).casefold()
    found = list(itertools.islice((p for p in paths if not needle or needle in p.casefold()), MATCHES_SHOWN))
    if current is not None and current in paths and current not in found:
        found = [current, *found[: MATCHES_SHOWN - 1]]
    return found
