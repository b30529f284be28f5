"""The browser app in a real browser: Playwright driving Debian's chromium against ``resim viz``.

The server is started here on a free 127.0.0.1 port through ``viz.server.serve`` (as ``resim
viz`` starts it) with a results folder of two small runs and a half-finished sweep, and stopped
at the end. Screenshots of each page go to ``tests/artifacts/`` (ignored by git), with the
measured speed in ``tests/artifacts/speed.txt``.

``make test`` installs chromium (Debian's package) and the front-end assets; run alone without
chromium, these tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.cli import main as resim
from tests.test_viz import write_partial_sweep

pytestmark = [
    # Playwright's sync API runs an event loop in a thread; on teardown it may leave these.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1500, "height": 2300}  # tall: the page scrolls inside, not the window
MIN_MONTHS_PER_SECOND = 10.0

# Errors from the page that are not the app's: none are expected; list any here with a reason.
IGNORED_CONSOLE: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser_results")
    common = ["--seeds", "2", "--months", "24"]
    assert resim(["run", "baseline", *common, "--out", str(root / "baseline_24m")]) == 0
    tariff = ["--set", "policy.tariff.ndpr=1.0", "--out", str(root / "tariff_ndpr_100")]
    assert resim(["run", "baseline", *common, *tariff]) == 0
    write_partial_sweep(root / "tariff_sweep_running")
    return root


@pytest.fixture(scope="module")
def server(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``resim viz`` on a free loopback port, stopped (with its solara child) at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "RESIM_RESULTS_DIR": str(results_dir)}
    code = f"import sys; from viz.server import serve; sys.exit(serve({port}))"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()  # serve() passes it on to the solara server
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a solara child left behind, if any


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A browser page on the app, with the console errors and failed requests it saw."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not any(s in m.text for s in IGNORED_CONSOLE)
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )
        self.page.goto(url)
        self.page.locator(".resim-play, .resim-pause").first.wait_for(timeout=60_000)

    def month(self) -> int:
        return int(self.page.locator(".resim-month").text_content() or "0")

    def wait_month(self, at_least: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while (month := self.month()) < at_least:
            assert time.monotonic() < deadline, f"stuck at month {month}"
            time.sleep(0.1)
        return month

    def speed(self, label: str) -> None:
        self.page.locator(".resim-speed").click()
        self.page.get_by_role("option", name=label).click()

    def tab(self, css: str) -> None:
        self.page.locator(css).click()
        time.sleep(0.6)  # the tabs slide in; let the transition finish before looking

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def app(browser: Any, server: str) -> Iterator[Page]:
    page = Page(browser, server)
    yield page
    page.close()


CHART_MARKS_JS = """() => {
    const defined = window.requirejs.s.contexts._.defined;
    const key = Object.keys(defined).find((k) => k.includes("echarts"));
    const echarts = defined[key];
    return Array.from(document.querySelectorAll(".resim-live-chart")).map((el) => {
        const chart = echarts.getInstanceByDom(el);
        if (!chart) return null;
        const first = chart.getOption().series[0];
        return ((first.markLine && first.markLine.data) || []).map((d) => d.name);
    });
}"""


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_page_loads_without_console_errors(app: Page) -> None:
    page = app.page
    page.wait_for_function(
        "document.querySelectorAll('.resim-live-chart canvas').length >= 11", timeout=30_000
    )
    assert page.get_by_text("NdPr oxide prices").count() == 0  # drawn on canvas, not in the DOM
    assert "Month 0 of 132" in page.locator(".resim-status").inner_text()
    app.shot("live_start.png")
    assert app.errors == []


def test_play_advances_months_at_speed(app: Page) -> None:
    app.speed("as fast as possible")
    frames_before = int(app.page.locator(".resim-frames").text_content() or "0")
    started = time.monotonic()
    app.page.locator(".resim-play").click()
    app.wait_month(132, timeout=60)
    elapsed = time.monotonic() - started
    app.page.locator(".resim-play").wait_for(timeout=10_000)  # the loop has stopped
    server_rate = float(app.page.locator(".resim-rate").text_content() or "0")
    frames = int(app.page.locator(".resim-frames").text_content() or "0") - frames_before
    browser_rate = 132 / elapsed
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "speed.txt").write_text(
        f"default population (baseline), 132 months at 'as fast as possible', charts updating:\n"
        f"  {server_rate:.1f} months/s as the server measured it\n"
        f"  {browser_rate:.1f} months/s from the click on Play to month 132 in the browser\n"
        f"  {frames} chart updates drawn on the way ({frames / elapsed:.1f} per second)\n"
    )
    print(
        f"\nspeed: {server_rate:.1f} months/s (server), {browser_rate:.1f} (browser), {frames} frames"
    )
    app.shot("live_end.png")
    assert browser_rate >= MIN_MONTHS_PER_SECOND
    assert server_rate >= MIN_MONTHS_PER_SECOND
    # (At this speed the whole run may take well under a second, so that the charts are drawn
    # only once or twice: that they move while a run plays is checked at 12 months/s below.)
    assert app.errors == []


def test_lever_change_mid_run_shows_in_event_log_and_charts(app: Page) -> None:
    page = app.page
    app.speed("12 months/s")
    frames_before = int(page.locator(".resim-frames").text_content() or "0")
    page.locator(".resim-play").click()
    app.wait_month(6)
    field = page.locator(".resim-field-policy-tariff-ndpr input")
    field.fill("100")
    field.press("Enter")
    app.wait_month(30)
    # The charts moved while the run played (about 2 s at 12 months/s), not only at the end.
    assert int(page.locator(".resim-frames").text_content() or "0") - frames_before >= 3
    page.locator(".resim-pause").click()
    page.locator(".resim-play").wait_for()
    # The charts draw asynchronously after the server sends them: wait until every chart has
    # drawn the mark (on a loaded CI machine the last update can land after Pause).
    wanted = "policy.tariff.ndpr = 1.0 (browser)"
    page.wait_for_function(
        f"() => {{ const m = ({CHART_MARKS_JS})(); return m.length === 11 && "
        f"m.every((c) => (c || []).includes({wanted!r})); }}",
        timeout=20_000,
    )
    marks = page.evaluate(CHART_MARKS_JS)
    assert len(marks) == 11
    assert all(
        any(name == "policy.tariff.ndpr = 1.0 (browser)" for name in chart or []) for chart in marks
    ), marks
    app.shot("live_lever_change.png")
    app.tab(".resim-tab-events")
    page.locator(".resim-event-search input").fill("browser")  # the filter
    log = page.locator(".resim-event-log")
    expect(log.locator("tbody tr")).to_have_count(1, timeout=15_000)
    log.get_by_text("policy.tariff.ndpr = 1.0 (browser)").wait_for(timeout=15_000)
    app.shot("event_log_filtered.png")
    page.locator(".resim-event-search input").fill("")
    log.get_by_text("miner_state").first.wait_for(timeout=15_000)
    app.shot("event_log.png")
    app.tab(".resim-tab-flows")
    page.wait_for_function(
        "document.querySelectorAll('.resim-sankey canvas').length >= 1", timeout=15_000
    )
    time.sleep(0.5)
    app.shot("supply_chain.png")
    assert app.errors == []


def test_results_page_renders_two_folders(app: Page) -> None:
    page = app.page
    app.tab(".resim-page-results")
    page.locator(".resim-results-select").click()
    page.get_by_role("option", name="baseline_24m").click()
    page.get_by_role("option", name="tariff_ndpr_100").click()
    page.keyboard.press("Escape")
    page.locator(".resim-compare").click()
    page.wait_for_function(
        "document.querySelectorAll('.resim-compare-plots img').length >= 2", timeout=60_000
    )
    page.get_by_text("Differences from the reference (95% CI)").wait_for()
    time.sleep(0.5)
    app.shot("results.png")
    assert app.errors == []


def test_sweep_monitor_shows_a_running_sweep(app: Page) -> None:
    page = app.page
    app.tab(".resim-page-sweep")
    status = page.locator(".resim-sweep-status")
    status.wait_for(timeout=15_000)
    assert "2 done, 1 failed, 1 pending of 4 runs" in status.inner_text()
    page.get_by_text("RuntimeError: injected").wait_for()
    app.shot("sweep_monitor.png")
    assert app.errors == []


def test_five_sessions_stay_independent(browser: Any, server: str) -> None:
    pages = [Page(browser, server) for _ in range(5)]
    try:
        for i, page in enumerate(pages):
            for _ in range(i + 1):
                before = page.month()
                page.page.locator(".resim-step").click()
                page.wait_month(before + 1, timeout=15)
        assert [page.month() for page in pages] == [1, 2, 3, 4, 5]
        for page in pages:
            assert page.errors == []
    finally:
        for page in pages:
            page.close()
