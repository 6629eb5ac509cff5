"""The Explore map: a WebGL plotly scatter of a projection and reading box / lasso selections back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from recsys.catalogue import Catalogue

QUERY_ID = "__query__"
#: Above this many points the map sends the least per point: smaller markers, hover = title + top category.
DETAIL_LIMIT = 5000
UNCATEGORISED = "uncategorised"


def item_groups(catalogue: Catalogue, indices: np.ndarray) -> list[str]:
    """Top category of each mapped item: the map's colours, and the strata of its fitted sample."""
    items = catalogue.items
    return [(items[int(i)].category or UNCATEGORISED).split("/", 1)[0] for i in indices]


def map_frame(catalogue: Catalogue, indices: np.ndarray, coords: np.ndarray, result_ids: Sequence[str]) -> pd.DataFrame:
    """One row per mapped item: coordinates, id, title, category, top category, rank in the last results."""
    ranks = {item_id: r for r, item_id in enumerate(result_ids, start=1)}
    items = [catalogue.items[int(i)] for i in indices]
    coords = np.asarray(coords, dtype=np.float32).reshape(len(items), 2)
    ids = [item.id for item in items]
    return pd.DataFrame(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "id": ids,
            "title": [item.title for item in items],
            "category": [item.category or UNCATEGORISED for item in items],
            "group": item_groups(catalogue, indices),
            "rank": np.array([ranks.get(i, np.nan) for i in ids], dtype=np.float64),
        }
    )


def map_figure(frame: pd.DataFrame, query_xy: np.ndarray | None = None, title: str = "") -> go.Figure:
    """Points coloured by top category, last results ringed and labelled by rank, the query as a star.

    Every trace is WebGL (``Scattergl``): SVG stalls the browser beyond a few thousand points, and
    SVG traces would sit under the WebGL canvas. Each point carries its id (selection reads it back);
    above :data:`DETAIL_LIMIT` points it carries nothing else, and hover shows title + top category.
    """
    import plotly.express as px
    import plotly.graph_objects as go

    detailed = len(frame) <= DETAIL_LIMIT
    colours = px.colors.qualitative.Alphabet
    fig = go.Figure()
    for n, (group, part) in enumerate(frame.groupby("group", sort=False)):
        fig.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(),
                y=part["y"].to_numpy(),
                mode="markers",
                name=str(group),
                customdata=part[["id", "category"] if detailed else ["id"]].to_numpy(),
                hovertext=part["title"].to_numpy(),
                hovertemplate="<b>%{hovertext}</b><br>"
                + ("%{customdata[1]}" if detailed else "%{fullData.name}")
                + "<extra></extra>",
                marker={
                    "size": 8 if detailed else 4,
                    "opacity": 0.8 if detailed else 0.6,
                    "color": colours[n % len(colours)],
                },
            )
        )
    hits = frame[frame["rank"].notna()].sort_values("rank")
    if len(hits):
        fig.add_trace(
            go.Scattergl(
                x=hits["x"].to_numpy(),
                y=hits["y"].to_numpy(),
                mode="markers+text",
                name="results",
                text=[str(int(r)) for r in hits["rank"]],
                textposition="top right",  # beside the ring, not on the point it marks
                textfont={"size": 14, "color": "black"},
                customdata=hits[["id"]].to_numpy(),
                hovertext=hits["title"].to_numpy(),
                hovertemplate="<b>%{hovertext}</b><br>result #%{text}<extra></extra>",
                marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": "black"}},
            )
        )
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
    fig.update_layout(
        title=title,
        height=620,
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend_title_text="category",
        dragmode="lasso",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


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
