"""Where to put the labels of marked points on a map so they cover neither each other nor the marks.

The query star and its results sit close together by construction (the results are what is
nearest the query), so labels drawn on the points pile up. Each label is offset from its point
(plotly draws an arrow back to it) at the candidate position - 16 directions times a few
distances - that overlaps the fewest already placed labels and marks; ties go to the nearest.
Work is in screen pixels, estimated from the data range and the figure size, because that is
where overlap happens; plotly annotations take their offsets in pixels too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CHAR_PX = 7.0  # average glyph width of plotly's 12 px annotation font
LINE_PX = 18.0
MARK_RADIUS_PX = 11.0  # a result ring (16 px) or the query star (22 px), with some air
DISTANCES_PX = (30.0, 50.0, 75.0, 105.0)
DIRECTIONS = 16


@dataclass(frozen=True)
class Canvas:
    """The data range shown and the plot area's estimated size in pixels."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: float = 800.0
    height: float = 600.0

    @classmethod
    def around(cls, xy: np.ndarray, width: float = 800.0, height: float = 600.0) -> Canvas:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        pad = 0.05 * span  # plotly's autorange margin, roughly
        return cls(lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1], width, height)

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """Data -> pixels, y growing downwards as on screen."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        px = (xy[:, 0] - self.x0) / max(self.x1 - self.x0, 1e-12) * self.width
        py = (self.y1 - xy[:, 1]) / max(self.y1 - self.y0, 1e-12) * self.height
        return np.stack([px, py], axis=1)


def label_size(text: str) -> tuple[float, float]:
    """Estimated (width, height) in pixels of a one-line label."""
    return CHAR_PX * len(text) + 8.0, LINE_PX


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap area of boxes (cx, cy, w, h)."""
    dx = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    dy = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    return max(dx, 0.0) * max(dy, 0.0)


def place_labels(
    points: np.ndarray, texts: Sequence[str], canvas: Canvas, marks: np.ndarray | None = None
) -> np.ndarray:
    """Pixel offsets (n, 2) - plotly's ``ax``, ``ay`` - of each point's label, placed in order.

    ``marks`` (data coordinates) are every drawn mark labels must not hide (the labelled points
    are always marks). The first labels get the best places: pass them most important first.
    """
    pts = canvas.to_px(points)
    all_marks = pts if marks is None else np.concatenate([pts, canvas.to_px(marks)])
    mark_boxes = [np.array([x, y, 2 * MARK_RADIUS_PX, 2 * MARK_RADIUS_PX]) for x, y in all_marks]
    angles = np.linspace(0.0, 2 * np.pi, DIRECTIONS, endpoint=False) + np.pi / 4  # up-right first
    placed: list[np.ndarray] = []
    offsets = np.zeros((len(pts), 2))
    for i, ((x, y), text) in enumerate(zip(pts, texts, strict=True)):
        w, h = label_size(text)
        best, best_cost = None, np.inf
        for dist in DISTANCES_PX:
            for a in angles:
                # the box's near edge, not its centre, sits ``dist`` from the point
                dx = np.cos(a) * (dist + w / 2 * abs(np.cos(a)))
                dy = -np.sin(a) * (dist + h / 2 * abs(np.sin(a)))
                box = np.array([x + dx, y + dy, w, h])
                cost = sum(_overlap(box, other) for other in placed) * 10.0
                cost += sum(_overlap(box, m) for m in mark_boxes)
                outside = max(0.0, w / 2 - box[0]) + max(0.0, box[0] + w / 2 - canvas.width)
                outside += max(0.0, h / 2 - box[1]) + max(0.0, box[1] + h / 2 - canvas.height)
                cost += outside * h * 10.0 + dist * 0.01  # off the plot is as bad as on another label
                if cost < best_cost - 1e-9:
                    best, best_cost = box, cost
        placed.append(best)
        offsets[i] = best[0] - x, best[1] - y
    return offsets


def boxes(points: np.ndarray, texts: Sequence[str], offsets: np.ndarray, canvas: Canvas) -> list[np.ndarray]:
    """The label boxes (cx, cy, w, h) in pixels that ``offsets`` give: for tests and debugging."""
    pts = canvas.to_px(points)
    return [np.array([x + dx, y + dy, *label_size(t)]) for (x, y), (dx, dy), t in zip(pts, offsets, texts, strict=True)]
