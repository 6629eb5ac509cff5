"""Label placement on the map: offset from the marks, never on another label, inside the plot."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.ui.map_labels import MARK_RADIUS_PX, Canvas, _overlap, boxes, label_size, place_labels


def crowd(n: int, seed: int = 0, spread: float = 0.2) -> tuple[np.ndarray, Canvas]:
    rng = np.random.default_rng(seed)
    background = rng.normal(0.0, 3.0, (500, 2))
    points = rng.normal(0.0, spread, (n, 2))  # a query and its results, close together
    return points, Canvas.around(np.concatenate([background, points]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crowded_labels_overlap_neither_each_other_nor_the_marks(seed):
    points, canvas = crowd(13, seed)
    texts = ["★ your query", *[f"{k} Some title {k}" for k in range(1, 13)]]
    offsets = place_labels(points, texts, canvas)
    placed = boxes(points, texts, offsets, canvas)
    assert all(_overlap(a, b) == 0 for i, a in enumerate(placed) for b in placed[i + 1 :])
    marks = [np.array([x, y, 2 * MARK_RADIUS_PX, 2 * MARK_RADIUS_PX]) for x, y in canvas.to_px(points)]
    assert all(_overlap(box, mark) == 0 for box in placed for mark in marks)
    assert np.all(np.hypot(*offsets.T) >= 25)  # never on the point itself


def test_labels_stay_inside_the_plot_at_its_edges():
    points = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0], [10.0, 0.0]])  # the four corners
    canvas = Canvas.around(points)
    texts = ["top left?", "a corner label", "another one", "the last corner"]
    for cx, cy, w, h in boxes(points, texts, place_labels(points, texts, canvas), canvas):
        assert cx - w / 2 >= 0 and cx + w / 2 <= canvas.width
        assert cy - h / 2 >= 0 and cy + h / 2 <= canvas.height


def test_other_marks_are_avoided_too():
    points = np.array([[0.0, 0.0]])
    canvas = Canvas(-10, 10, -10, 10)
    free = place_labels(points, ["label"], canvas)[0]
    # put a mark where the label went: it moves elsewhere
    blocked_at = np.array([[free[0], -free[1]]]) * 20 / 800  # pixels back to data units (y flips)
    moved = place_labels(points, ["label"], canvas, marks=blocked_at)[0]
    assert not np.allclose(moved, free)


def test_canvas_maps_data_to_screen_pixels_with_y_down():
    canvas = Canvas(0, 10, 0, 5, width=100, height=50)
    assert canvas.to_px(np.array([[0, 5], [10, 0]])).tolist() == [[0, 0], [100, 50]]
    assert label_size("abc")[0] > label_size("a")[0]
