"""scripts/milvus_server.sh run: when no private server can be had, it says why and exits 75
without running the command (scripts/test.sh turns that into a skip line, or an error in CI).

Stubs on ``PATH`` stand in for ``unshare`` and ``python``; the real server runs in the tests
marked milvus_server.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "milvus_server.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    reason = tmp_path / "reason"
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "MILVUS_HOME": str(tmp_path / "milvus"),
        "MILVUS_REASON_FILE": str(reason),
        "PYTHON": str(tmp_path / "bin" / "python"),
    }
    proc = subprocess.run([BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
    return proc, reason.read_text().strip() if reason.exists() else ""


def _bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "ip", "exit 0\n")  # present, whether or not this machine has iproute2
    return bin_dir


def test_no_network_namespace_means_unavailable_and_the_command_does_not_run(tmp_path: Path) -> None:
    bin_dir = _bin(tmp_path)
    _stub(bin_dir, "unshare", 'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1\n')
    proc, reason = _run(tmp_path, "run", "touch", str(tmp_path / "ran"))
    assert proc.returncode == 75
    assert "cannot create a private network namespace" in reason and "Operation not permitted" in reason
    assert not (tmp_path / "ran").exists()


def test_a_failed_install_means_unavailable_and_leaves_no_half_venv(tmp_path: Path) -> None:
    bin_dir = _bin(tmp_path)
    _stub(bin_dir, "unshare", "exit 0\n")  # a namespace could be made
    # `python -m venv DIR` makes DIR/bin/python, a stand-in whose pip install fails
    _stub(
        bin_dir,
        "python",
        'if [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi\n'
        'echo "ERROR: No matching distribution found for milvus==2.3.5" >&2; exit 1\n',
    )
    proc, reason = _run(tmp_path, "run", "touch", str(tmp_path / "ran"))
    assert proc.returncode == 75
    assert "could not install milvus==2.3.5" in reason
    assert not (tmp_path / "milvus" / "venv").exists()
    assert not (tmp_path / "ran").exists()


def test_run_needs_a_command(tmp_path: Path) -> None:
    proc, _ = _run(tmp_path, "run")
    assert proc.returncode == 2 and "usage" in proc.stderr
