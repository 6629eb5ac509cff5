"""Per-session state shared by the pages: the like/dislike profile and the last search.

Functions take the session-state mapping explicitly so they can be tested with a plain dict.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

PROFILE_KEY = "profile"
LAST_SEARCH_KEY = "last_search"


@dataclass
class Profile:
    """Items the user liked or disliked this session; they refine the next query."""

    likes: list[str] = field(default_factory=list)
    dislikes: list[str] = field(default_factory=list)

    def like(self, item_id: str) -> None:
        if item_id in self.dislikes:
            self.dislikes.remove(item_id)
        if item_id not in self.likes:
            self.likes.append(item_id)

    def dislike(self, item_id: str) -> None:
        if item_id in self.likes:
            self.likes.remove(item_id)
        if item_id not in self.dislikes:
            self.dislikes.append(item_id)

    def forget(self, item_id: str) -> None:
        for bucket in (self.likes, self.dislikes):
            if item_id in bucket:
                bucket.remove(item_id)

    def clear(self) -> None:
        self.likes.clear()
        self.dislikes.clear()

    def is_empty(self) -> bool:
        return not self.likes and not self.dislikes

    def prune(self, known_ids: set[str]) -> None:
        """Drop ids no longer in the catalogue (the catalogue changed under a running session)."""
        self.likes[:] = [i for i in self.likes if i in known_ids]
        self.dislikes[:] = [i for i in self.dislikes if i in known_ids]


def get_profile(state: MutableMapping[str, Any]) -> Profile:
    """The session's profile, created on first use."""
    profile = state.get(PROFILE_KEY)
    if not isinstance(profile, Profile):
        profile = Profile()
        state[PROFILE_KEY] = profile
    return profile


@dataclass(frozen=True)
class LastSearch:
    """What the Recommend page last ran, so Explore and Why-this-item explain the same thing."""

    query: Any  # recsys.recommend.Query
    weights: dict[str, float]
    strategy: str
    k: int
    category: str | None
    result_ids: tuple[str, ...]
    scores: tuple[float, ...] = ()


def get_last_search(state: MutableMapping[str, Any]) -> LastSearch | None:
    last = state.get(LAST_SEARCH_KEY)
    return last if isinstance(last, LastSearch) else None


def set_last_search(state: MutableMapping[str, Any], search: LastSearch) -> None:
    state[LAST_SEARCH_KEY] = search
