"""End to end: `streamlit run app.py` on a free port, driven by Debian's headless Chromium via Playwright.

Uses the real demo catalogue (data/tuxpaint) and the offline models. The first run builds the
embedding cache (minutes on 2 cores); later runs reuse it. Screenshots of the three pages go to
artifacts/screenshots/ (git-ignored). Chromium comes from Debian (`apt-get install -y chromium`);
nothing is downloaded by a test tool.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from recsys import atomic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 1200  # a first start encodes the whole catalogue
ALL_IMAGES_LOADED = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the current script run (its status widget goes away)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


def lasso(page, area) -> None:
    """Draw a lasso around the middle of a plotly plot area with the mouse, as a person would."""
    box = area.bounding_box()
    cx, cy, rx, ry = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 4, box["height"] / 4
    path = [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)]
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def screenshot(page, name: str) -> None:
    """Whole-page screenshot: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    height = page.evaluate(
        '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], '
        '[data-testid="stAppViewContainer"], section.main\')].map(e => e.scrollHeight), 900)'
    )
    page.set_viewport_size({"width": 1500, "height": min(int(height) + 40, 5000)})
    page.wait_for_timeout(500)  # let plotly re-layout
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)  # lazy thumbnails below the old fold
    page.screenshot(path=str(SHOTS / name), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 1100})


def test_query_results_explore_and_why(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(server)
    box = page.get_by_label("Describe what you are looking for")
    box.wait_for(timeout=START_TIMEOUT_S * 1000)  # first start: embedding cache with a progress bar
    wait_idle(page, START_TIMEOUT_S * 1000)
    page.get_by_text("Type a query").wait_for()

    timings = []
    for text, expected in (("a red apple", "Apple red"), ("a barking dog", "Dog"), ("a red apple", "Apple")):
        box.fill(text)
        started = time.perf_counter()
        box.press("Enter")
        page.get_by_role("heading", name=f"results for “{text}”").wait_for(timeout=30_000)
        page.wait_for_function(
            "t => [...document.querySelectorAll('[data-testid=\"stMarkdownContainer\"] strong')]"
            ".some(e => e.textContent.startsWith('1. ') && e.textContent.includes(t))",
            arg=expected, timeout=30_000,
        )  # fmt: skip
        page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
        timings.append(time.perf_counter() - started)
        wait_idle(page)
    titles = page.locator("[data-testid='stMarkdownContainer'] strong").all_inner_texts()
    ranked = [t for t in titles if t[:1].isdigit() and ". " in t]
    assert ranked[0].startswith("1. Apple"), ranked
    assert any("Apple red" in t for t in ranked[:3]), ranked
    assert page.locator("[data-testid='stImage']").count() >= 10  # card thumbnails
    assert not page.locator("[data-testid='stException']").count()
    screenshot(page, "1_recommend.png")

    # like a result: the profile in the sidebar shows it and the next results exclude it
    page.get_by_role("button", name="Like", exact=True).first.click()
    page.get_by_text("Liked:").wait_for(timeout=30_000)
    wait_idle(page)

    page.get_by_role("link", name="Explore").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)  # first map: UMAP fit + numba
    wait_idle(page, 300_000)
    page.get_by_text("the star is your last query").wait_for()
    lasso(page, page.locator(".js-plotly-plot .nsewdrag").first)
    page.get_by_role("heading", name="selected").wait_for(timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)  # the selection as a table
    page.get_by_role("button", name="Like these").wait_for()
    screenshot(page, "2_explore.png")

    page.get_by_role("link", name="Why this item").click()
    page.get_by_text("Similarity per modality").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("Nearest neighbours in each modality").wait_for()
    assert not page.locator("[data-testid='stException']").count()
    screenshot(page, "3_why_this_item.png")

    atomic.write_json(REPO / "artifacts" / "e2e_timing.json",
                      {"query_to_results_s": timings, "queries": 3})  # fmt: skip
    print("query -> results (s):", ", ".join(f"{t:.2f}" for t in timings))
