"""Category colours for the Explore map that stay tellable apart, however many categories there are.

The first ten are the familiar D3 / Tableau "category10" colours. Past ten (the demo has ~16
top-level categories; 26-colour alphabets put near-twins side by side) each next colour is the
sRGB grid colour farthest, in CIELAB, from every colour already taken - and from the map's own
marks (the gold query star, the black result rings) and its white background - so the palette
grows without limit while each added colour is as distinct as what is left allows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: D3's category10: well separated, and what people expect a first colour to be.
BASE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22")
#: Marks the palette must not imitate: the query star (gold), result rings (black), the background (white).
RESERVED = ("#ffd700", "#000000", "#ffffff")
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_GRID = 12  # levels per channel of the candidate grid (1,728 candidates)


def _hex_to_rgb(colours: Sequence[str]) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float64) / 255.0


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (n, 3) -> CIELAB (D65), where euclidean distance approximates perceived difference."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def colour_distance(a: str, b: str) -> float:
    """CIE76 difference (delta E) of two ``#rrggbb`` colours: about 2 is just noticeable, 20+ clearly different."""
    lab = to_lab(_hex_to_rgb([a, b]))
    return float(np.linalg.norm(lab[0] - lab[1]))


@lru_cache(maxsize=16)
def distinct_colours(n: int) -> tuple[str, ...]:
    """``n`` colours: :data:`BASE` first, then greedy farthest-point picks in CIELAB (see module doc)."""
    if n <= len(BASE):
        return BASE[:n]
    levels = np.linspace(0.0, 1.0, _GRID)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = to_lab(grid)
    # readable on white as marker fill: neither near-white nor near-black
    keep = (lab[:, 0] > 25) & (lab[:, 0] < 85)
    grid, lab = grid[keep], lab[keep]
    taken = to_lab(_hex_to_rgb([*BASE, *RESERVED]))
    nearest = np.min(np.linalg.norm(lab[:, None, :] - taken[None, :, :], axis=2), axis=1)
    out = list(BASE)
    while len(out) < n:
        best = int(np.argmax(nearest))
        r, g, b = np.rint(grid[best] * 255).astype(int)
        out.append(f"#{r:02x}{g:02x}{b:02x}")
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[best], axis=1))
    return tuple(out)


def category_palette(groups: Sequence[str]) -> dict[str, str]:
    """A colour per distinct group; the largest groups get the first (most familiar, best separated) colours."""
    counts = Counter(groups)
    order = sorted(counts, key=lambda g: (-counts[g], str(g)))
    return dict(zip(order, distinct_colours(len(order)), strict=True))
