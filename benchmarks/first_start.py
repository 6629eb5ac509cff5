"""Seconds from `bash scripts/demo.sh` on a fresh clone to the first results of a clicked example query.

    .venv/bin/python benchmarks/first_start.py            # clone HEAD of this checkout, then time it
    .venv/bin/python benchmarks/first_start.py --app      # start `streamlit run app.py` directly

What it does: ``git clone`` of this checkout's committed HEAD into a temporary folder; a ``.venv``
there that reuses this checkout's environment (its folders linked, with setup.sh's stamp for the
clone written, so ``scripts/setup.sh`` finds it up to date and pip does not run: "a fresh clone
with the venv present"); an empty embedding cache (``RECSYS_CACHE_DIR`` in the temporary folder,
so nothing built earlier on this machine is used); then ``bash scripts/demo.sh`` headless on a
free port, Debian's Chromium (driven by Playwright, as tests/e2e does) opening the page, clicking
the first example query of the Recommend page and waiting for its ranked cards.

Prints the time to each step (server answering, page ready with the example buttons, results
shown), the load average before and after (the machine may be shared) and the core count.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
#: What scripts/setup.sh hashes to decide that a .venv is up to date.
STAMPED = ("requirements.txt", "scripts/setup.sh", "pyproject.toml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_for(clone: Path, venv: Path) -> None:
    """A ``.venv`` in the clone that is ``venv``'s folders, linked, plus setup.sh's stamp for the clone."""
    target = clone / ".venv"
    target.mkdir()
    for entry in venv.iterdir():
        if entry.name != ".requirements.sha256":
            (target / entry.name).symlink_to(entry)
    digest = hashlib.sha256(b"".join((clone / name).read_bytes() for name in STAMPED)).hexdigest()
    (target / ".requirements.sha256").write_text(digest + "\n")


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the demo did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", action="store_true", help="run `streamlit run app.py`, not scripts/demo.sh")
    parser.add_argument("--venv", default=str(Path(sys.executable).parent.parent), help="environment to reuse")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="recsys-first-start-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    venv_for(clone, Path(args.venv))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RECSYS_CACHE_DIR": str(work / "cache"),
        "HF_HUB_OFFLINE": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    env.pop("PYTHONPATH", None)
    flags = ["--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1"]
    command = (
        [str(clone / ".venv" / "bin" / "python"), "-m", "streamlit", "run", "app.py", *flags]
        if args.app
        else ["bash", "scripts/demo.sh", *flags]
    )
    log = work / "server.log"
    load_before = os.getloadavg()
    marks: dict[str, float] = {}
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, log, args.timeout)
        marks["server answering"] = time.monotonic() - started
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(url)
            example = page.locator(".st-key-example-0 button")
            example.wait_for(timeout=args.timeout * 1000)
            marks["page ready (example buttons)"] = time.monotonic() - started
            example.click()
            heading = page.get_by_role("heading", name="results for “")  # "12 results for “<the example>”"
            heading.wait_for(timeout=args.timeout * 1000)
            text = heading.inner_text().split("“", 1)[-1].rstrip("”")
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=\"stMarkdownContainer\"] strong')]"
                ".some(e => e.textContent.startsWith('1. '))",
                timeout=args.timeout * 1000,
            )
            marks[f"results for the example “{text}”"] = time.monotonic() - started
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"fresh clone of {head.stdout.strip()}, empty embedding cache, {os.cpu_count()} cores")
    print(f"started with: {'streamlit run app.py' if args.app else 'bash scripts/demo.sh'}")
    for name, seconds in marks.items():
        print(f"{seconds:7.1f} s  {name}")
    print(f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after: {' '.join(f'{x:.2f}' for x in load_after)}")  # fmt: skip
    if args.keep:
        print(f"kept {work} (server log: {log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
