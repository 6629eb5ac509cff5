"""End to end: `streamlit run app.py` on a free port, driven by Debian's headless Chromium via Playwright.

Uses the real demo catalogue (data/tuxpaint) and the offline models. The first run builds the
embedding cache (minutes on 2 cores); later runs reuse it. It walks a newcomer's path: an example
query, the weak-match flags, CSV / JSON downloads, a reload and a shared link (threshold -> "No
good match"), the map (labels, hover, a click that shows the picture and the sound, lasso), Why
this item? (summary, pictures, players) and a phone-width page. Screenshots go to
artifacts/screenshots/ (git-ignored); timings are printed and written to artifacts/, never asserted.
Chromium comes from Debian (`apt-get install -y chromium`);
nothing is downloaded by a test tool.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
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
    """Wait until Streamlit has finished the current script run: its status widget is gone and no
    element of the previous run is still shown (stale elements, e.g. an old download button)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')",
        timeout=timeout_ms,
    )


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


def ranked_titles(page) -> list[str]:
    titles = page.locator("[data-testid='stMarkdownContainer'] strong").all_inner_texts()
    return [t for t in titles if t[:1].isdigit() and ". " in t]


RANKED_CARDS_SHOWN = """() => [...document.querySelectorAll("[data-testid='stMarkdownContainer'] strong")]
    .some(e => /^\\d+\\. /.test(e.innerText))"""


def wait_results(page, text: str) -> None:
    """The heading for ``text``, then its ranked cards, their pictures, and the end of the run (the
    heading is drawn before the cards, and Streamlit shows its status widget only after a delay)."""
    page.get_by_role("heading", name=f"results for “{text}”").wait_for(timeout=60_000)
    page.wait_for_function(RANKED_CARDS_SHOWN, timeout=60_000)
    wait_idle(page)
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    page.wait_for_timeout(700)  # past the status widget's delay: a run still going shows it by now
    wait_idle(page)


def point_on_map(page, item_id: str | None = None, trace: str = "results") -> tuple[float, float]:
    """Page pixel position of the map point of ``item_id`` (else the first point of ``trace``): where a
    person would aim the mouse."""
    xy = page.evaluate(
        """([id, name]) => {
            const gd = document.querySelector('.js-plotly-plot');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
            const at = (t, i) => [r.left + xa._offset + xa.l2p(t.x[i]), r.top + ya._offset + ya.l2p(t.y[i])];
            for (const t of gd._fullData) {
                if (id === null) { if (t.name === name) return at(t, 0); continue; }
                const rows = t.customdata || [];
                for (let i = 0; i < rows.length; i++) {
                    if ((Array.isArray(rows[i]) ? rows[i][0] : rows[i]) === id) return at(t, i);
                }
            }
            return null;
        }""",
        [item_id, trace],
    )
    assert xy, f"no point for {item_id or trace} on the map"
    return xy[0], xy[1]


def with_param(url: str, **params: str) -> str:
    """``url`` with query parameters set (replaced, not repeated)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def scroll_through(page) -> None:
    """Scroll Streamlit's main block to the bottom and back, so every element has been drawn."""
    page.evaluate("() => document.querySelectorAll('[data-testid=\"stMain\"]').forEach(e => e.scrollTo(0, 1e6))")
    page.wait_for_timeout(500)
    page.evaluate("() => document.querySelectorAll('[data-testid=\"stMain\"]').forEach(e => e.scrollTo(0, 0))")


def test_newcomer_walk_through_every_page(server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    page.goto(server)
    box = page.get_by_label("Describe what you are looking for")
    box.wait_for(timeout=START_TIMEOUT_S * 1000)  # first start: embedding cache with a progress bar
    wait_idle(page, START_TIMEOUT_S * 1000)
    page.get_by_text("Type a query").wait_for()

    # 1. an example query, one click
    example = page.locator(".st-key-example-0 button")
    text = example.locator("[data-testid='stMarkdownContainer']").inner_text().strip()  # the label, not the icon
    started = time.perf_counter()
    example.click()
    wait_results(page, text)
    timings = {"example_to_results_s": time.perf_counter() - started}
    assert box.input_value() == text
    assert ranked_titles(page), "no ranked results after clicking an example"
    assert not page.locator("[data-testid='stException']").count()
    screenshot(page, "1_example_query.png")

    # 2. a typed query: weak matches are flagged; the state goes into the URL
    box.fill("a red apple")
    box.press("Enter")
    wait_results(page, "a red apple")
    assert ranked_titles(page)[0].startswith("1. Apple"), ranked_titles(page)
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'a red apple'", timeout=30_000)
    print("results flagged as weak matches:", page.get_by_text("weak match").count())

    # 3. CSV and JSON downloads carry the contributions
    for name, suffix in (("Download CSV", "csv"), ("Download JSON", "json")):
        with page.expect_download() as got:
            page.get_by_role("button", name=name).click()
        target = REPO / "artifacts" / f"e2e_recommendations.{suffix}"
        got.value.save_as(str(target))
        body = target.read_text(encoding="utf-8")
        assert "Apple" in body and "contribution" in body.lower(), body[:300]

    # 4. a reload keeps the query; a link with a high threshold says there is no good match
    page.reload()
    wait_results(page, "a red apple")
    assert page.get_by_label("Describe what you are looking for").input_value() == "a red apple"
    plain_link = page.url
    page.goto(with_param(plain_link, thr="0.99"))  # a shared link with a strict threshold
    wait_results(page, "a red apple")
    page.get_by_text("No good match").wait_for(timeout=30_000)
    screenshot(page, "2_no_good_match_from_a_link.png")
    page.goto(plain_link)
    wait_results(page, "a red apple")

    # 5. the map: labels beside the marks, hover names a point, a click shows its picture and sound
    started = time.perf_counter()
    page.get_by_role("link", name="Explore").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)  # first map: UMAP fit + numba
    wait_idle(page, 300_000)
    timings["first_map_s"] = time.perf_counter() - started
    page.get_by_text("the star is your last query").wait_for()
    assert page.locator(".js-plotly-plot .annotation-text").first.text_content().startswith("★ your query")  # SVG text
    x, y = point_on_map(page)  # result #1
    page.mouse.move(x, y)
    hover = page.locator(".js-plotly-plot .hoverlayer .hovertext").first
    hover.wait_for(timeout=10_000)
    assert "result #1" in hover.text_content()
    x, y = point_on_map(page, "apple_red")  # a result with a sound
    page.mouse.move(x, y)  # as a person does: point at it (plotly picks the clicked point from its hover)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .hoverlayer .hovertext')]"
        ".some(e => e.textContent.includes('Apple red'))",
        timeout=10_000,
    )
    page.mouse.click(x, y)
    focus = page.locator(".st-key-map-focus")
    focus.get_by_text("Apple red").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    assert focus.locator("[data-testid='stImage'] img").count() == 1
    assert focus.locator("audio").count() == 1  # its sound, started by the click
    assert page.locator(".st-key-map-results").get_by_text("your query").count() >= 1
    page.mouse.move(x, y)  # hover again for the screenshot: the name box beside the picture panel
    hover.wait_for(timeout=10_000)
    page.screenshot(path=str(SHOTS / "3_explore_hover_and_click.png"))

    # 6. why this item, from the clicked point: the summary first, every picture loads, players on sounds
    page.locator(".st-key-map-focus-why button").click()
    summary = page.locator(".st-key-why-summary")
    summary.get_by_text("Ranked #").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_text("Nearest neighbours in each modality").wait_for()
    scroll_through(page)
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=30_000)
    assert "because" in summary.inner_text()
    assert page.get_by_role("heading", name="Apple red").count() >= 1
    assert page.locator("audio").count() >= 2  # the item's own sound and its audio neighbours'
    assert not page.locator("[data-testid='stException']").count()
    screenshot(page, "4_why_this_item.png")

    # back to the map: a lasso selects several, to list and like
    page.get_by_role("link", name="Explore").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    page.mouse.move(*point_on_map(page))  # the toolbar shows while the pointer is over the map
    page.locator(".js-plotly-plot .modebar-btn[data-val='lasso']").first.click()
    lasso(page, page.locator(".js-plotly-plot .nsewdrag").first)
    page.get_by_role("heading", name="selected").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Like these").wait_for()
    screenshot(page, "5_explore_lasso.png")

    # 7. a phone: two compact cards a row
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(f"{server}/?q=a+red+apple")
    wait_results(phone, "a red apple")
    cards = phone.locator(".st-key-results-grid [data-testid='stColumn']")
    try:  # the grid's phone rule comes in its own element: let the layout settle before measuring
        phone.wait_for_function(
            "() => { const c = document.querySelector(\".st-key-results-grid [data-testid='stColumn']\");"
            " return c && c.getBoundingClientRect().width < 200; }",
            timeout=30_000,
        )
    except Exception as exc:  # playwright's TimeoutError: measured and reported below
        if "Timeout" not in type(exc).__name__:
            raise
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert abs(first["y"] - second["y"]) < 5 and first["width"] < 200, (first, second)
    phone.screenshot(path=str(SHOTS / "6_phone.png"), full_page=True)
    phone.close()

    atomic.write_json(REPO / "artifacts" / "e2e_timing.json", timings)
    print("timings (s):", ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
