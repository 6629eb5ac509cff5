"""The Explore map: a WebGL plotly scatter of a projection (distinct category colours, the query and
its results labelled beside their marks), its side list, and reading click / box / lasso selections back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys.ui.examples import intro

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from recsys.catalogue import Catalogue

QUERY_ID = "__query__"
#: Above this many points the map sends the least per point: smaller markers, hover = title + top category.
DETAIL_LIMIT = 5000
UNCATEGORISED = "uncategorised"
MAP_HEIGHT = 620
MAP_WIDTH_GUESS = 850  # the map column's width on a desktop: labels are placed for it
#: Points the map draws at most. The figure is rebuilt and sent to the browser on every rerun (each
#: click): 1.2 s and 4.7 MB for 100k points on 2 cores, ~10x that for 1M (benchmarks/map.py), and a
#: 620 px map shows no more distinct points than this. Larger maps draw a seeded sample per top category.
MAX_DRAWN = 50_000
#: Points of each top category a sampled map keeps at least (all of a smaller one): a small category
#: stays on the map and in its legend.
GROUP_FLOOR = 200
#: Results labelled on the map (by rank); the side list names them all.
LABELLED_RESULTS = 15
CLICK_HINT = "click: picture and sound"


def item_groups(catalogue: Catalogue, indices: np.ndarray) -> list[str]:
    """Top category of each mapped item: the map's colours, and the strata of its fitted sample."""
    items = catalogue.items
    return [(items[int(i)].category or UNCATEGORISED).split("/", 1)[0] for i in indices]


def map_frame(
    catalogue: Catalogue,
    indices: np.ndarray,
    coords: np.ndarray | Callable[[np.ndarray], np.ndarray],
    result_ids: Sequence[str],
    groups: Sequence[str] | None = None,
    limit: int | None = None,
    sample: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per drawn item: coordinates, id, title, category, top category, rank in the last results.

    Every mapped item up to ``limit`` (default :data:`MAX_DRAWN`); beyond, :func:`drawn_rows` (the
    results always among them). ``coords``: the (n, 2) coordinates of ``indices``, or a function
    giving those at positions into them (a map that places items when first drawn). ``groups``:
    :func:`item_groups` of ``indices``, and ``sample``: its :func:`fixed_sample`, when the caller
    keeps them (the page reruns on every click).
    """
    limit = MAX_DRAWN if limit is None else limit
    ranks = {item_id: r for r, item_id in enumerate(result_ids, start=1)}
    indices = np.asarray(indices)
    if callable(coords):
        coords_at = coords
    else:
        coords_at = np.asarray(coords, dtype=np.float32).reshape(len(indices), 2).__getitem__
    groups = groups if groups is not None else item_groups(catalogue, indices)
    rows = np.arange(len(indices))
    if len(indices) > limit:
        results = catalogue.rows_of([item_id for item_id in ranks if item_id in catalogue])
        rows = drawn_rows(groups, results, indices, limit, sample)
        indices, groups = indices[rows], [groups[r] for r in rows.tolist()]
    xy = coords_at(rows)
    items = [catalogue.items[int(i)] for i in indices]
    ids = [item.id for item in items]
    return pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "id": ids,
            "title": [item.title for item in items],
            "category": [item.category or UNCATEGORISED for item in items],
            "group": groups,
            "rank": np.array([ranks.get(i, np.nan) for i in ids], dtype=np.float64),
        }
    )


def drawn_rows(
    groups: Sequence[str], keep: np.ndarray, indices: np.ndarray, limit: int, sample: np.ndarray | None = None
) -> np.ndarray:
    """Positions (into ``indices``, in order) of the points a map of more than ``limit`` items draws:
    its :func:`fixed_sample` (``sample`` when given), plus the positions of the catalogue rows
    ``keep`` (the last results) wherever they are mapped."""
    chosen = fixed_sample(groups, limit) if sample is None else sample.copy()
    chosen[np.isin(indices, keep)] = True
    return np.flatnonzero(chosen)


def fixed_sample(groups: Sequence[str], limit: int) -> np.ndarray:
    """Which of the mapped points (a mask over ``groups``, their top categories) a map of more than
    ``limit`` items draws besides the results.

    Seeded, so the same points stay on the map from rerun to rerun (a selection made on it holds):
    each top category in proportion to its size, at least :data:`GROUP_FLOOR` points of it.
    """
    codes, _ = pd.factorize(np.asarray(groups, dtype=object))
    sizes = np.bincount(codes)
    quota = np.maximum(sizes * limit // max(1, len(codes)), np.minimum(sizes, GROUP_FLOOR))
    order = np.lexsort((np.random.default_rng(0).random(len(codes)), codes))  # shuffled within each group
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    place = np.empty(len(codes), dtype=np.int64)
    place[order] = np.arange(len(codes)) - starts[codes[order]]  # each point's place in its group's shuffle
    return place < quota[codes]


def what_a_click_shows(catalogue: Catalogue) -> str:
    """"see its picture and hear its sound", or only the half the catalogue has media for (read from
    :func:`recsys.ui.examples.intro`, worked out once per catalogue: the page reruns on every click)."""
    samples = intro(catalogue).samples
    parts = [
        phrase
        for modality, phrase in (("image", "see its picture"), ("audio", "hear its sound"))
        if samples.get(modality) is not None
    ]
    return " and ".join(parts) or "see it"


def click_hint(catalogue: Catalogue) -> str:
    """The map's hover line: :data:`CLICK_HINT`, or what clicking shows where the catalogue lacks a medium."""
    shows = what_a_click_shows(catalogue)
    return CLICK_HINT if shows == "see its picture and hear its sound" else f"click: {shows}"


def short_title(title: str, limit: int = 18) -> str:
    """A title cut to ``limit`` characters (with an ellipsis), for labels on the map."""
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def map_figure(
    frame: pd.DataFrame,
    query_xy: np.ndarray | None = None,
    title: str = "",
    palette: Mapping[str, str] | None = None,
    click_hint: str = CLICK_HINT,
) -> go.Figure:
    """Points coloured by top category, last results ringed, the query as a star; the star and the
    first :data:`LABELLED_RESULTS` results labelled beside their marks (:mod:`recsys.ui.map_labels`).

    Every trace is WebGL (``Scattergl``): SVG stalls the browser beyond a few thousand points, and
    SVG traces would sit under the WebGL canvas; the labels are annotations, drawn above it. Each
    point carries its id (selection reads it back); above :data:`DETAIL_LIMIT` points it carries
    nothing else, and hover shows title + top category.
    """
    import plotly.graph_objects as go

    from recsys.ui.palette import category_palette

    detailed = len(frame) <= DETAIL_LIMIT
    colours = dict(palette) if palette is not None else category_palette(list(frame["group"]))
    rank_text = frame["rank"].map(lambda r: "" if np.isnan(r) else f"<br>result #{int(r)}")
    fig = go.Figure()
    for group, part in frame.groupby("group", sort=False):
        fig.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                name=str(group),
                customdata=(
                    np.stack([part["id"], part["category"], rank_text[part.index]], axis=1)
                    if detailed
                    else part[["id"]].to_numpy()
                ),
                hovertext=part["title"].to_numpy(),
                hovertemplate="<b>%{hovertext}</b><br>"
                + (f"%{{customdata[1]}}%{{customdata[2]}}<br><i>{click_hint}</i>" if detailed else "%{fullData.name}")
                + "<extra></extra>",
                marker={
                    "size": 8 if detailed else 4,
                    "opacity": 0.85 if detailed else 0.6,
                    "color": colours.get(str(group), "#7f7f7f"),
                },
            )
        )
    hits = frame[frame["rank"].notna()].sort_values("rank")
    # The star goes under the rings: it is larger, so it stays visible, and a click on a result
    # next to the query selects the result rather than the star.
    if query_xy is not None:
        fig.add_trace(
            go.Scattergl(
                x=[float(query_xy[0])],
                y=[float(query_xy[1])],
                mode="markers",
                name="your query",
                customdata=[[QUERY_ID]],
                hovertemplate="<b>your query</b><extra></extra>",
                marker={"symbol": "star", "size": 22, "color": "gold", "line": {"width": 1.5, "color": "black"}},
            )
        )
    if len(hits):
        fig.add_trace(
            go.Scattergl(
                x=hits["x"].to_numpy(),
                y=hits["y"].to_numpy(),
                mode="markers",
                name="results",
                customdata=hits[["id"]].to_numpy(),
                hovertext=hits["title"].to_numpy(),
                text=[str(int(r)) for r in hits["rank"]],
                hovertemplate="<b>%{hovertext}</b><br>result #%{text}<extra></extra>",
                marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": "black"}},
            )
        )
    fig.update_layout(
        title=title,
        height=MAP_HEIGHT,
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend_title_text="category",
        # No dragmode: Streamlit then pans on drag and selects the clicked point; under a lasso or
        # box dragmode it turns click selection off. The lasso and box tools stay in the toolbar.
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        annotations=_labels(frame, hits, query_xy),
    )
    return fig


def _labels(frame: pd.DataFrame, hits: pd.DataFrame, query_xy: np.ndarray | None) -> list[dict[str, Any]]:
    """Annotations for the query and the best results, offset so none covers another or a mark."""
    from recsys.ui.map_labels import Canvas, place_labels

    labelled = hits.head(LABELLED_RESULTS)
    points = [] if query_xy is None else [np.asarray(query_xy, dtype=np.float64)[:2]]
    texts = [] if query_xy is None else ["★ your query"]
    points += [np.array([x, y]) for x, y in zip(labelled["x"], labelled["y"], strict=True)]
    texts += [f"{int(r)} {short_title(t)}" for r, t in zip(labelled["rank"], labelled["title"], strict=True)]
    if not points:
        return []
    everything = np.concatenate([frame[["x", "y"]].to_numpy(np.float64), np.array(points)])
    canvas = Canvas.around(everything, width=MAP_WIDTH_GUESS, height=MAP_HEIGHT - 50)
    marks = hits[["x", "y"]].to_numpy(np.float64)
    offsets = place_labels(np.array(points), texts, canvas, marks)
    return [
        {
            "x": float(x),
            "y": float(y),
            "ax": float(dx),
            "ay": float(dy),
            "text": text,
            "showarrow": True,
            "arrowhead": 0,
            "arrowwidth": 1,
            "arrowcolor": "#444",
            "font": {"size": 12, "color": "black"},
            "bgcolor": "rgba(255,255,255,0.85)",
            "bordercolor": "#444" if text.startswith("★") else "rgba(0,0,0,0)",
            "borderpad": 2,
        }
        for (x, y), (dx, dy), text in zip(points, offsets, texts, strict=True)
    ]


def result_list(frame: pd.DataFrame) -> pd.DataFrame:
    """The ringed results in rank order (id, title, category, group): the map's side list."""
    hits = frame[frame["rank"].notna()].sort_values("rank")
    return hits[["rank", "id", "title", "category", "group"]].astype({"rank": int}).reset_index(drop=True)


def selected_ids(event: Mapping[str, Any] | Any) -> list[str]:
    """Item ids of the points in a ``st.plotly_chart(on_select=...)`` event, in order, without duplicates.

    Each point carries its item id as ``customdata[0]``; the query star is ignored.
    """
    if event is None:
        return []
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    if not selection:
        return []
    points = selection.get("points", []) if isinstance(selection, Mapping) else getattr(selection, "points", [])
    out: list[str] = []
    for point in points or []:
        custom = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(custom, list | tuple) and custom:
            custom = custom[0]
        if isinstance(custom, str) and custom != QUERY_ID and custom not in out:
            out.append(custom)
    return out
