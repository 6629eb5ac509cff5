"""Results as plain rows, CSV and JSON: what the CLI prints and what the app offers for download.

Every row carries the per-pair contributions (they sum to the score), each pair's share of the
contribution bar in %, the rrf ranks when there are any, and, given a threshold, whether the
result is a weak match.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from recsys.recommend.engine import Recommendation

JSON_FORMAT = "recsys-results/1"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def shares_percent(contributions: Mapping[str, float]) -> dict[str, float]:
    """Pair -> its share of the total |contribution| in % (1 decimal); pairs contributing 0 left out."""
    total = sum(abs(v) for v in contributions.values())
    if total <= 0:
        return {}
    return {pair: round(100.0 * abs(v) / total, 1) for pair, v in contributions.items() if v != 0}


def result_rows(results: Sequence[Recommendation], threshold: float | None = None) -> list[dict[str, Any]]:
    """One JSON-ready dict per result: id, title, category, rank, score, contributions, shares (%),
    ranks (rrf only), cross-modal match confidence (when calibrated) and ``weak`` (only when a
    ``threshold`` is given)."""
    rows = []
    for r in results:
        row: dict[str, Any] = {
            "id": r.item.id,
            "title": r.item.title,
            "category": r.item.category,
            "rank": r.rank,
            "score": r.score,
            "contributions": dict(r.contributions),
            "shares_percent": shares_percent(r.contributions),
        }
        if r.ranks:
            row["pair_ranks"] = dict(r.ranks)
        if r.confidence:
            row["confidence"] = dict(r.confidence)
        if threshold is not None:
            row["weak"] = bool(r.score < threshold)
        rows.append(row)
    return rows


def results_json(
    results: Sequence[Recommendation], settings: Mapping[str, Any] | None = None, threshold: float | None = None
) -> str:
    """``{"format", "settings", "results"}`` as indented JSON; ``settings`` says how the list was made."""
    payload = {
        "format": JSON_FORMAT,
        "settings": dict(settings or {}),
        "results": result_rows(results, threshold),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def results_csv(results: Sequence[Recommendation], threshold: float | None = None) -> str:
    """One line per result: rank, id, title, category, score, [weak], then per pair its contribution,
    its share in % and, under rrf, its rank (empty where a result has no such pair); then each
    calibrated cross-modal pair's confidence."""
    rows = result_rows(results, threshold)
    pairs = list(dict.fromkeys(p for row in rows for p in row["contributions"]))
    ranked = any("pair_ranks" in row for row in rows)
    confident = list(dict.fromkeys(p for row in rows for p in row.get("confidence", {})))
    header = ["rank", "id", "title", "category", "score"] + (["weak"] if threshold is not None else [])
    for pair in pairs:
        header += [f"{pair} contribution", f"{pair} share %"] + ([f"{pair} rank"] if ranked else [])
    header += [f"{pair} confidence" for pair in confident]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line = [row["rank"], _cell(row["id"]), _cell(row["title"]), _cell(row["category"]), f"{row['score']:.6f}"]
        if threshold is not None:
            line.append("yes" if row["weak"] else "no")
        for pair in pairs:
            value = row["contributions"].get(pair)
            share = row["shares_percent"].get(pair, "" if value is None else 0.0)
            line += ["" if value is None else f"{value:.6f}", share]
            if ranked:
                line.append(row.get("pair_ranks", {}).get(pair, ""))
        conf = row.get("confidence", {})
        line += [f"{conf[pair]:.4f}" if pair in conf else "" for pair in confident]
        writer.writerow(line)
    return out.getvalue()
