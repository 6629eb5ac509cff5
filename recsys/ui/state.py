"""Per-session state shared by the pages: the like/dislike profile, the last search, the URL state.

Functions take the session-state mapping explicitly so they can be tested with a plain dict.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROFILE_KEY = "profile"
LAST_SEARCH_KEY = "last_search"
ALL_CATEGORIES = "All categories"


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

    def prune(self, known_ids: Container[str]) -> None:
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

    query: Any  # recsys.recommend.query.Query
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


# -- the page state in the URL ----------------------------------------------------------------
# Widget values are kept under SAVED_PREFIX + widget key (Streamlit drops a widget's own state
# when another page is shown); the URL mirrors them so a reload or a shared link restores them.

SAVED_PREFIX = "saved-"
TEXT_KEY = "query-text"
STRATEGY_KEY = "strategy"
SIMILARITY_KEY = "similarity"
K_KEY = "k"
CATEGORY_KEY = "category"
CATEGORY_FIND_KEY = "category-find"  # the search of a long category tree
#: Session keys of the catalogue item whose picture / sound is the query (the onboarding samples).
SAMPLE_KEYS = {"image": "query-sample-image", "audio": "query-sample-audio"}
SAMPLE_PARAMS = {"image": "img", "audio": "snd"}
DEFAULT_K = 12
MAX_K = 40
DEFAULT_WEIGHT = 1.0
MAX_TEXT_CHARS = 1000
MAX_PROFILE_IDS = 200


def weight_key(modality: str) -> str:
    return f"weight-{modality}"


def threshold_key(strategy: str, similarity: str) -> str:
    """Each (strategy, similarity) keeps its own threshold: their scores live on different scales."""
    return f"threshold-{strategy}-{similarity}"


@dataclass(frozen=True)
class UrlState:
    """What the URL carries: the query text, the controls and the profile.

    ``weights`` lists only the modalities whose weight differs from 1, in the catalogue's modality
    order; ``threshold`` None means the default of the strategy and similarity.
    """

    text: str = ""
    weights: tuple[tuple[str, float], ...] = ()
    strategy: str = "early"
    k: int = DEFAULT_K
    category: str | None = None
    similarity: str = "cosine"
    threshold: float | None = None
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()
    #: modality -> id of the catalogue item whose picture / sound is part of the query
    samples: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UrlContext:
    """What a URL is checked against: the catalogue's modalities, category paths and item ids
    (``media``: modality -> ids of the items that have that medium)."""

    modalities: tuple[str, ...]
    categories: frozenset[str]
    item_ids: frozenset[str]
    media: tuple[tuple[str, frozenset[str]], ...] = ()


def _last(value: Any) -> str:
    """The last value of a parameter (``st.query_params`` keeps the last of repeated keys)."""
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return str(value)


def _all(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _printable(raw: str) -> str:
    return "".join(ch for ch in raw if ch.isprintable())


def _short(raw: str, n: int = 40) -> str:
    text = _printable(raw)
    return repr(text if len(text) <= n else text[:n] + "...")


def parse_url(params: Mapping[str, Any], ctx: UrlContext) -> tuple[UrlState, list[str]]:
    """Read page state from query parameters; every bad value is dropped with a message saying why.

    Never raises for any input: a hostile or stale link (an item since removed, a typo) still
    opens the page, with the defaults in place of what could not be used.
    """
    from recsys.fusion import SIMILARITIES, STRATEGIES
    from recsys.recommend.relevance import threshold_scale

    problems: list[str] = []
    text = ""
    if "q" in params:
        text = _printable(_last(params["q"])).strip()
        if len(text) > MAX_TEXT_CHARS:
            problems.append(f"the query text in the link was cut to {MAX_TEXT_CHARS} characters")
            text = text[:MAX_TEXT_CHARS]
    weights: dict[str, float] = {}
    for key in sorted(k for k in params if str(k).startswith("w_")):
        modality, raw = str(key)[2:], _last(params[key])
        value = _number(raw)
        if modality not in ctx.modalities:
            problems.append(f"no '{_printable(modality)}' modality in this catalogue: weight ignored")
        elif value is None or not 0.0 <= value <= 1.0:
            problems.append(f"the {modality} weight {_short(raw)} is not a number from 0 to 1: using 1")
        elif value != DEFAULT_WEIGHT:
            weights[modality] = value
    strategy = _last(params.get("strategy", "early"))
    if strategy not in STRATEGIES:
        problems.append(f"unknown strategy {_short(strategy)}: using early (choose {', '.join(STRATEGIES)})")
        strategy = "early"
    similarity = _last(params.get("sim", "cosine"))
    if similarity not in SIMILARITIES:
        problems.append(f"unknown similarity {_short(similarity)}: using cosine (choose {', '.join(SIMILARITIES)})")
        similarity = "cosine"
    k = DEFAULT_K
    if "k" in params:
        raw = _last(params["k"])
        value = _number(raw)
        if value is None or value != int(value) or not 1 <= value <= MAX_K:
            problems.append(f"K {_short(raw)} is not a whole number from 1 to {MAX_K}: using {DEFAULT_K}")
        else:
            k = int(value)
    category = None
    if "category" in params:
        raw = _last(params["category"])
        if raw in ctx.categories:
            category = raw
        elif raw:
            problems.append(f"no category {_short(raw)} in this catalogue: showing all categories")
    threshold = None
    if "thr" in params:
        raw = _last(params["thr"])
        value = _number(raw)
        scale = threshold_scale(strategy, similarity)
        if value is None or not scale.low <= value <= scale.high:
            problems.append(
                f"threshold {_short(raw)} is outside {scale.format(scale.low)}..{scale.format(scale.high)} "
                f"for {strategy}/{similarity}: using {scale.format(scale.default)}"
            )
        else:
            threshold = value
    likes = _ids(params.get("like", []), ctx, "liked", problems)
    dislikes = _ids(params.get("dislike", []), ctx, "disliked", problems)
    both = [i for i in dislikes if i in likes]
    if both:
        problems.append(f"{len(both)} item(s) both liked and disliked in the link: kept as liked")
        dislikes = tuple(i for i in dislikes if i not in likes)
    samples = []
    with_media = dict(ctx.media)
    for modality, key in SAMPLE_PARAMS.items():
        if key in params:
            raw = _last(params[key])
            if raw in with_media.get(modality, frozenset()):
                samples.append((modality, raw))
            else:
                problems.append(
                    f"no catalogue item {_short(raw, 20)} with {'a picture' if modality == 'image' else 'a sound'}"
                )
    ordered = tuple((m, weights[m]) for m in ctx.modalities if m in weights)
    state = UrlState(
        text, ordered, strategy, k, category, similarity, threshold, likes, dislikes, tuple(samples)
    )
    return state, problems


def _ids(value: Any, ctx: UrlContext, what: str, problems: list[str]) -> tuple[str, ...]:
    raw = [v for v in _all(value) if v != ""]
    if len(raw) > MAX_PROFILE_IDS:
        problems.append(f"the link lists {len(raw)} {what} items: kept the first {MAX_PROFILE_IDS}")
        raw = raw[:MAX_PROFILE_IDS]
    unknown = [v for v in raw if v not in ctx.item_ids]
    if unknown:
        names = ", ".join(_short(v, 20) for v in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        problems.append(f"{len(unknown)} {what} item(s) not in this catalogue were left out: {names}")
    return tuple(dict.fromkeys(v for v in raw if v in ctx.item_ids))


def to_params(state: UrlState) -> dict[str, str | list[str]]:
    """Query parameters for ``state``; values equal to the defaults are left out to keep links short."""
    params: dict[str, str | list[str]] = {}
    if state.text:
        params["q"] = state.text
    for modality, value in state.weights:
        if value != DEFAULT_WEIGHT:
            params[f"w_{modality}"] = f"{value:g}"
    if state.strategy != "early":
        params["strategy"] = state.strategy
    if state.similarity != "cosine":
        params["sim"] = state.similarity
    if state.k != DEFAULT_K:
        params["k"] = str(state.k)
    if state.category:
        params["category"] = state.category
    if state.threshold is not None:
        params["thr"] = f"{state.threshold:g}"
    if state.likes:
        params["like"] = list(state.likes)
    if state.dislikes:
        params["dislike"] = list(state.dislikes)
    for modality, item_id in state.samples:
        params[SAMPLE_PARAMS[modality]] = item_id
    return params


def apply_url_state(session: MutableMapping[str, Any], url: UrlState) -> None:
    """Put ``url``'s values where the pages read them: saved widget values and the profile."""
    session[SAVED_PREFIX + TEXT_KEY] = url.text
    for modality, value in url.weights:
        session[SAVED_PREFIX + weight_key(modality)] = value
    session[SAVED_PREFIX + STRATEGY_KEY] = url.strategy
    session[SAVED_PREFIX + SIMILARITY_KEY] = url.similarity
    session[SAVED_PREFIX + K_KEY] = url.k
    if url.category is not None:
        session[SAVED_PREFIX + CATEGORY_KEY] = url.category
    if url.threshold is not None:
        session[SAVED_PREFIX + threshold_key(url.strategy, url.similarity)] = url.threshold
    profile = get_profile(session)
    profile.clear()
    for item_id in url.likes:
        profile.like(item_id)
    for item_id in url.dislikes:
        profile.dislike(item_id)
    for modality, item_id in url.samples:
        session[SAMPLE_KEYS[modality]] = item_id


def current_url_state(session: Mapping[str, Any], modalities: Sequence[str]) -> UrlState:
    """The state to mirror in the URL, read from the saved widget values and the profile."""
    strategy = str(session.get(SAVED_PREFIX + STRATEGY_KEY, "early"))
    similarity = str(session.get(SAVED_PREFIX + SIMILARITY_KEY, "cosine"))
    category = session.get(SAVED_PREFIX + CATEGORY_KEY)
    from recsys.recommend.relevance import threshold_scale

    threshold = session.get(SAVED_PREFIX + threshold_key(strategy, similarity))
    if threshold is not None and float(threshold) == threshold_scale(strategy, similarity).default:
        threshold = None
    profile = session.get(PROFILE_KEY)
    return UrlState(
        text=str(session.get(SAVED_PREFIX + TEXT_KEY, "") or "").strip(),
        weights=tuple(
            (m, w)
            for m in modalities
            if (w := float(session.get(SAVED_PREFIX + weight_key(m), DEFAULT_WEIGHT))) != DEFAULT_WEIGHT
        ),
        strategy=strategy,
        k=int(session.get(SAVED_PREFIX + K_KEY, DEFAULT_K)),
        category=category if isinstance(category, str) and category != ALL_CATEGORIES else None,
        similarity=similarity,
        threshold=None if threshold is None else float(threshold),
        likes=tuple(profile.likes) if isinstance(profile, Profile) else (),
        dislikes=tuple(profile.dislikes) if isinstance(profile, Profile) else (),
        samples=tuple((m, str(session[key])) for m, key in SAMPLE_KEYS.items() if session.get(key)),
    )
