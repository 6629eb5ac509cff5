"""The Explore map: a plotly scatter of a projection and reading box / lasso selections back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from recsys.catalogue import Catalogue

QUERY_ID = "__query__"


def map_frame(catalogue: Catalogue, indices: np.ndarray, coords: np.ndarray, result_ids: Sequence[str]) -> pd.DataFrame:
    """One row per mapped item: coordinates, id, title, category, top category, rank in the last results."""
    ranks = {item_id: r for r, item_id in enumerate(result_ids, start=1)}
    rows = []
    for (x, y), i in zip(coords, indices, strict=True):
        item = catalogue.items[int(i)]
        cat = item.category or "uncategorised"
        rows.append(
            {
                "x": float(x),
                "y": float(y),
                "id": item.id,
                "title": item.title,
                "category": cat,
                "group": cat.split("/", 1)[0],
                "rank": ranks.get(item.id),
            }
        )
    return pd.DataFrame(rows)


def map_figure(frame: pd.DataFrame, query_xy: np.ndarray | None = None, title: str = "") -> go.Figure:
    """Points coloured by top category, last results ringed and labelled by rank, the query as a star."""
    import plotly.express as px
    import plotly.graph_objects as go

    fig = px.scatter(
        frame,
        x="x",
        y="y",
        color="group",
        custom_data=["id"],
        hover_name="title",
        hover_data={"category": True, "group": False, "x": False, "y": False, "id": False},
        title=title,
        color_discrete_sequence=px.colors.qualitative.Alphabet,
        height=620,
    )
    fig.update_traces(marker={"size": 8, "opacity": 0.8})
    hits = frame[frame["rank"].notna()].sort_values("rank")
    if len(hits):
        fig.add_trace(
            go.Scatter(
                x=hits["x"],
                y=hits["y"],
                mode="markers+text",
                name="results",
                text=[str(int(r)) for r in hits["rank"]],
                textposition="top center",
                customdata=hits[["id"]].to_numpy(),
                hovertext=hits["title"],
                hovertemplate="<b>%{hovertext}</b><br>result #%{text}<extra></extra>",
                marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": "black"}},
            )
        )
    if query_xy is not None:
        fig.add_trace(
            go.Scatter(
                x=[float(query_xy[0])],
                y=[float(query_xy[1])],
                mode="markers",
                name="your query",
                customdata=[[QUERY_ID]],
                hovertemplate="<b>your query</b><extra></extra>",
                marker={
                    "symbol": "star",
                    "size": 22,
                    "color": "gold",
                    "line": {"width": 1.5, "color": "black"},
                },
            )
        )
    fig.update_layout(
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
