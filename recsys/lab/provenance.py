"""What produced a results file: library versions and the source commit.

A figure from an older torch or an uncommitted change must be recognisable as such when results
files are compared months later. Nothing here fails a run: a missing git (a tarball, a wheel, no
``git`` binary) just leaves the commit out.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import recsys

LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "implicit")
REPO = Path(recsys.__file__).resolve().parents[1]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit() -> dict[str, object] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout this package runs from, or None without git."""
    sha = _git("rev-parse", "HEAD")
    if not sha:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha, "dirty": bool(status)} if status is not None else {"commit": sha}


def environment() -> dict[str, object]:
    """Versions of recsys, Python and the numeric libraries (installed ones), plus the git commit."""
    versions = {"recsys": recsys.__version__, "python": platform.python_version()}
    versions |= {name: v for name in LIBRARIES if (v := _version(name)) is not None}
    out: dict[str, object] = {"versions": versions}
    commit = git_commit()
    if commit is not None:
        out["git"] = commit
    return out
