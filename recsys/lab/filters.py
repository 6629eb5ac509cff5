"""Interaction filters applied before splitting: a rating threshold and a k-core.

They follow RecBole's preprocessing (``val_interval`` on the rating, ``user_inter_num_interval`` /
``item_inter_num_interval`` as a k-core), so figures can be compared with RecBole's on the same
data. Their description joins the protocol's, so a number is never read without them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from recsys.datasets import InteractionDataset
from recsys.errors import DatasetError


@dataclass(frozen=True)
class Filters:
    """``min_rating``: keep interactions rated at least this; ``k_core``: users and items with >= k each."""

    min_rating: float | None = None
    k_core: int | None = None

    def __post_init__(self) -> None:
        if self.min_rating is not None and not np.isfinite(self.min_rating):
            raise DatasetError(f"The rating threshold must be a finite number, got {self.min_rating}.")
        if self.k_core is not None and self.k_core < 1:
            raise DatasetError(f"The k-core must be a whole number >= 1, got {self.k_core}.")

    @property
    def active(self) -> bool:
        return self.min_rating is not None or (self.k_core or 0) > 1

    def describe(self) -> str:
        parts = []
        if self.min_rating is not None:
            parts.append(f"ratings >= {self.min_rating:g}")
        if (self.k_core or 0) > 1:
            parts.append(f"{self.k_core}-core (users and items with >= {self.k_core} interactions)")
        return ", ".join(parts)


def _subset(ds: InteractionDataset, keep: np.ndarray) -> InteractionDataset:
    """The interactions selected by boolean ``keep``; ids unchanged."""

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[keep]

    return replace(
        ds,
        users=ds.users[keep],
        items=ds.items[keep],
        timestamps=pick(ds.timestamps),
        ratings=pick(ds.ratings),
        split=pick(ds.split),
    )


def _compact(ds: InteractionDataset, users: bool, items: bool) -> InteractionDataset:
    """Renumber users (and items) to those that keep an interaction; item side data follows."""
    out = ds
    if users:
        kept, new_users = np.unique(ds.users, return_inverse=True)
        tokens = [ds.user_tokens[i] for i in kept] if ds.user_tokens is not None else None
        out = replace(out, users=new_users.astype(np.int64), n_users=len(kept), user_tokens=tokens)
    if items:
        kept, new_items = np.unique(ds.items, return_inverse=True)
        out = replace(
            out,
            items=new_items.astype(np.int64),
            n_items=len(kept),
            item_features={m: f[kept] for m, f in ds.item_features.items()},
            item_names=[ds.item_names[i] for i in kept] if ds.item_names is not None else None,
            item_tokens=[ds.item_tokens[i] for i in kept] if ds.item_tokens is not None else None,
        )
    return out


def k_core(ds: InteractionDataset, k: int) -> InteractionDataset:
    """Repeatedly drop users and items with fewer than ``k`` interactions, until none is left to drop.

    Items without any interaction leave too (as in RecBole); both are renumbered.
    """
    keep = np.ones(ds.n_interactions, dtype=bool)
    while True:
        user_n = np.bincount(ds.users[keep], minlength=ds.n_users)
        item_n = np.bincount(ds.items[keep], minlength=ds.n_items)
        drop = keep & ((user_n[ds.users] < k) | (item_n[ds.items] < k))
        if not drop.any():
            break
        keep &= ~drop
    if not keep.any():
        raise DatasetError(f"The {k}-core of {ds.name} is empty: no users and items with {k} interactions each.")
    return _compact(_subset(ds, keep), users=True, items=True)


def apply_filters(ds: InteractionDataset, filters: Filters) -> InteractionDataset:
    """``ds`` with the rating threshold, then the k-core, applied (``ds`` itself when none is set)."""
    if not filters.active:
        return ds
    if filters.min_rating is not None:
        if ds.ratings is None:
            raise DatasetError(f"Dataset {ds.name} has no rating column, so a rating threshold cannot apply.")
        keep = ds.ratings >= filters.min_rating
        if not keep.any():
            raise DatasetError(
                f"No interaction of {ds.name} is rated >= {filters.min_rating:g} "
                f"(ratings range {ds.ratings.min():g}..{ds.ratings.max():g})."
            )
        ds = _compact(_subset(ds, keep), users=True, items=False)  # unrated items stay in the catalogue
    if (filters.k_core or 0) > 1:
        ds = k_core(ds, int(filters.k_core))
    return ds
