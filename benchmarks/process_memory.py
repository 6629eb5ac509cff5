"""A benchmark process's own memory, read from ``/proc/self/status`` (Linux).

Why not ``resource.getrusage(...).ru_maxrss``: in a process a benchmark starts, Linux keeps across
the spawn and exec the peak of the process it came from, so a child reported its parent's peak
whenever that was the larger: a dataset load started after its parent had written 1.4 GB of
features said 1.96 GB, and a serving process started right after a store build said the builder's
4 GB at 100k items instead of its own 1.8 GB.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def status_kb(key: str) -> float:
    """One ``kB`` line of ``/proc/self/status``; NaN where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _peak_kb() -> float:
    peak = status_kb("VmHWM")
    if peak == peak:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024 if sys.platform == "darwin" else maxrss  # macOS counts bytes


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``) in MB (2**20 bytes)."""
    return _peak_kb() / 1024


def peak_rss_gb() -> float:
    """This process's own peak RSS in GB as the benchmarks print them (kB / 10**6)."""
    return _peak_kb() / 1e6


def anon_rss_mb() -> float:
    """Resident anonymous memory in MB: what the process needs; memory-mapped files it touched are
    page cache (file-backed, evictable) and count only in the peak RSS."""
    return status_kb("RssAnon") / 1024
