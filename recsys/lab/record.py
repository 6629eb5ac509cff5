"""A results file as the Fusion lab shows it: runs, their seed summaries, and what made them.

The page opens on the results file shipped in ``data/lab/`` (written by ``benchmarks/lfm2k.py``,
whose command line is in the file's ``meta``), so a first visit shows real figures instead of an
empty form, and says where they came from. Every chart and table reads :class:`SeedSummary`
objects (mean and 95% interval per model, the paired test against the best): a file that has
none (one seed, an older file) gets them rebuilt from its runs, with intervals but no paired test,
since files keep no per-user figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recsys.atomic import json_text
from recsys.errors import RecsysError
from recsys.lab.evaluate import Results, read_results_json, results_record
from recsys.lab.fusiongain import FusionGain, explain, fusion_gain
from recsys.lab.report import provenance_line, run_label, summary_label
from recsys.lab.stats import SeedSummary, summarise

REPO = Path(__file__).resolve().parents[2]
#: The results the page opens with; regenerate with the command in its ``meta`` (also in the README).
SHIPPED_RESULTS = REPO / "data" / "lab" / "lfm2k-results.json"


@dataclass
class LabRecord:
    """Runs (one per protocol and seed), one summary per run label, and the file's ``meta``."""

    runs: list[Results]
    summaries: list[SeedSummary]
    meta: dict[str, object] = field(default_factory=dict)
    fusion: list[FusionGain] = field(default_factory=list)  # as the run wrote them (with paired tests)

    @classmethod
    def from_runs(
        cls, runs: Sequence[Results], summaries: Sequence[SeedSummary] = (), meta: dict[str, object] | None = None
    ) -> LabRecord:
        """Keep the given summaries and summarise every run label that has none (no paired test)."""
        have = {summary_label(s): s for s in summaries}
        out = []
        for label in dict.fromkeys(run_label(r) for r in runs):
            if label not in have:
                try:
                    have[label] = summarise([r for r in runs if run_label(r) == label])
                except RecsysError as exc:
                    raise RecsysError(f"Cannot summarise the runs {label}: {exc}") from exc
            out.append(have[label])
        return cls(list(runs), out, dict(meta or {}))

    @property
    def labels(self) -> list[str]:
        return [summary_label(s) for s in self.summaries]

    def select(self, labels: Sequence[str]) -> LabRecord:
        """Only the runs and summaries of ``labels`` (all seeds of each)."""
        wanted = set(labels)
        summaries = [s for s in self.summaries if summary_label(s) in wanted]
        protocols = {s.protocol for s in summaries}
        return LabRecord(
            [r for r in self.runs if run_label(r) in wanted],
            summaries,
            self.meta,
            [f for f in self.fusion if f.protocol in protocols],
        )

    def fusion_gains(self) -> list[FusionGain]:
        """Per summary, does fusion earn its place: as the run recorded it, else computed from the
        summary (then without paired tests, which need the per-user figures files do not keep)."""
        stored = {f.protocol: f for f in self.fusion}
        out = []
        for summary in self.summaries:
            gain = stored.get(summary.protocol)
            if gain is not None:
                gain.reasons = explain(summary, gain)
            else:
                runs = [r for r in self.runs if run_label(r) == summary_label(summary)]
                modalities = list((runs[0].dataset.get("modalities") or {}) if runs else {})
                gain = fusion_gain(summary, modalities, runs)
            if gain is not None:
                out.append(gain)
        return out

    def first_runs(self) -> list[Results]:
        """One run per label, its first seed's: the views that show a single run (weights, sanity checks)."""
        firsts: dict[str, Results] = {}
        for r in self.runs:
            firsts.setdefault(run_label(r), r)
        return list(firsts.values())

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    def to_json(self) -> str:
        """The record in the results-file format ``save_results`` writes (the page's JSON download)."""
        return json_text(results_record(self.runs, self.summaries, self.meta, self.fusion), compact=True)

    def origin(self) -> str:
        """Where these figures came from: command, date, versions and commit, seeds."""
        parts = []
        command = self.meta.get("command")
        if command:
            parts.append(f"made by `{command}`")
        created = min((r.created for r in self.runs if r.created), default="")
        if created:
            parts.append(f"on {created.replace('T', ' ')}")
        if self.runs:
            parts.append(f"with {provenance_line(self.runs[0])}")
        seeds = self.seeds
        parts.append(f"{len(seeds)} seed(s): {', '.join(map(str, seeds))}")
        return "; ".join(parts)


def read_record(source: str | Path | bytes) -> LabRecord:
    """A results file (path or bytes) with its summaries and ``meta``; ``RecsysError`` when it is not one."""
    data = read_results_json(source)
    runs = [Results.from_dict(r) for r in data["runs"]]
    if not runs:
        raise RecsysError("The results file holds no runs.")
    raw = data.get("summaries") or []
    if not isinstance(raw, list):
        raise RecsysError("Not a lab results file (its summaries are not a list).")
    summaries = [SeedSummary.from_dict(s) for s in raw]
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise RecsysError("Not a lab results file (its meta is not a table).")
    fusion = data.get("fusion_gain") or []
    if not isinstance(fusion, list):
        raise RecsysError("Not a lab results file (its fusion_gain is not a list).")
    record = LabRecord.from_runs(runs, summaries, meta)
    record.fusion = [FusionGain.from_dict(f) for f in fusion]
    return record


def shipped_record(path: str | Path | None = None) -> tuple[LabRecord | None, str]:
    """The shipped results (``path`` default :data:`SHIPPED_RESULTS`), or None and a sentence saying
    what is wrong with the file and how to remake it.

    Never raises for a missing or damaged file: the page must still open (it then offers a run).
    """
    path = SHIPPED_RESULTS if path is None else path
    try:
        return read_record(path), ""
    except RecsysError as exc:
        return None, (
            f"The shipped results {path} cannot be shown: {exc} Regenerate them with the command in the "
            "README (Fusion lab: shipped results), or run an evaluation here."
        )
