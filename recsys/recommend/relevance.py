"""Is a result a good match? A score threshold per fusion strategy and similarity.

Scores live on different scales (early / late: a similarity, about -1 .. 1 or 0 .. 1; rrf: a sum of
``w / (60 + rank)``, at most 1/61), so the threshold's range and default depend on both. The
defaults were read off the demo catalogue with its offline encoders (``benchmarks/thresholds.py``
prints the figures): right matches scored about 0.55-0.9 (early, cosine) and 0.45-0.8 (late),
queries with nothing to find about 0.3-0.4 and 0.2-0.33. Results below the threshold are still
shown, flagged as weak; when none passes the page says there is no good match.

rrf only sees ranks: a best match in every pair scores 1/61 however poor it is, so its threshold
flags items the pairs rank far down (``1 / (60 + r)``: on average below rank ``r``), not weak ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recsys.fusion import RRF_K, STRATEGIES, check_similarity

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import Recommendation

#: rrf's default: the pairs rank the item 20th on average, or better.
RRF_DEFAULT_RANK = 20

_DEFAULTS: dict[tuple[str, str], float] = {
    ("early", "cosine"): 0.45,
    ("early", "euclidean"): 0.47,
    ("early", "pearson"): 0.45,
    ("late", "cosine"): 0.35,
    ("late", "euclidean"): 0.43,
    ("late", "pearson"): 0.35,
}


@dataclass(frozen=True)
class ThresholdScale:
    """The range, step and default of the threshold slider, and how to print a value."""

    low: float
    high: float
    step: float
    default: float
    decimals: int

    def clamp(self, value: float) -> float:
        return min(max(float(value), self.low), self.high)

    def format(self, value: float) -> str:
        return f"{value:.{self.decimals}f}"


def threshold_scale(strategy: str, similarity: str = "cosine") -> ThresholdScale:
    """The threshold's scale for ``strategy`` and ``similarity``; unknown names raise InputError."""
    check_similarity(similarity)
    if strategy == "rrf":
        return ThresholdScale(0.0, round(1.0 / (RRF_K + 1), 4), 0.0001, round(1.0 / (RRF_K + RRF_DEFAULT_RANK), 4), 4)
    if strategy not in STRATEGIES:
        from recsys.errors import InputError

        raise InputError(f"unknown fusion strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    return ThresholdScale(0.0, 1.0, 0.01, _DEFAULTS[(strategy, similarity)], 2)


def threshold_meaning(strategy: str, similarity: str, threshold: float) -> str:
    """One line saying what the threshold means in this setting."""
    scale = threshold_scale(strategy, similarity)
    if strategy == "rrf":
        rank = 1.0 / threshold - RRF_K if threshold > 0 else float("inf")
        where = f"about rank {rank:.0f}" if rank != float("inf") else "any rank"
        return (
            f"Results scoring below {scale.format(threshold)} are flagged as weak: the pairs rank them, "
            f"on average, below {where}. rrf cannot tell a poor best match from a good one."
        )
    return f"Results with a {similarity} score below {scale.format(threshold)} are flagged as weak matches."


def split_weak(
    results: Sequence[Recommendation], threshold: float
) -> tuple[list[Recommendation], list[Recommendation]]:
    """(results at or above ``threshold``, results below it), each in rank order."""
    strong = [r for r in results if r.score >= threshold]
    weak = [r for r in results if r.score < threshold]
    return strong, weak


def is_weak(score: float, threshold: float) -> bool:
    return score < threshold
