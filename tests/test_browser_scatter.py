"""The WebGL map in Chromium (bench/map_demo_app.py): the viewport survives a colour change, a box selection, a
focus and a tab switch; the coordinates cross the wire once; without WebGL the map says so instead of staying blank."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N = 20_000
VIEW = "Array.from(window.__embedlabMaps.demo.sp.get('cameraView'))"


@contextlib.contextmanager
def demo_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "bench/map_demo_app.py", "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def chromium(*extra: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra])
        try:
            yield b
        finally:
            b.close()


def _layers_drawn(page) -> int:
    return page.evaluate("(window.__embedlabMaps && window.__embedlabMaps.demo && "
                         "window.__embedlabMaps.demo.layersDrawn) || 0")


def _wait_for_layer(page, at_least: int) -> None:
    page.wait_for_function(f"() => window.__embedlabMaps && window.__embedlabMaps.demo && "
                           f"window.__embedlabMaps.demo.layersDrawn >= {at_least} && "
                           "!window.__embedlabMaps.demo.drawing", timeout=120_000)


def _canvas_box(page) -> dict:
    return page.locator("canvas.embedlab-map-canvas").bounding_box()


@pytest.fixture(scope="module")
def demo_url():
    require_chromium()
    with demo_server() as url:
        yield url


def test_the_viewport_survives_colour_selection_focus_and_tab_switch(demo_url: str) -> None:
    with chromium() as b:
        page = b.new_page(viewport={"width": 1200, "height": 1000})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        received: list[int] = []
        cdp.on("Network.webSocketFrameReceived", lambda e: received.append(len(e["response"]["payloadData"])))
        page.goto(f"{demo_url}/?n={N}")
        _wait_for_layer(page, 1)
        first_draw_bytes = sum(received)
        box = _canvas_box(page)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -500)                                          # zoom in
        page.wait_for_timeout(1500)
        zoomed = page.evaluate(VIEW)
        assert zoomed != [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "the wheel did not zoom"

        received.clear()
        page.get_by_text("parity", exact=True).click()                    # colour change
        _wait_for_layer(page, 2)
        colour_bytes = sum(received)
        assert page.evaluate(VIEW) == zoomed
        assert colour_bytes < first_draw_bytes / 5, (colour_bytes, first_draw_bytes)   # no coordinates re-sent
        assert colour_bytes < 2.1 * N + 20_000

        page.keyboard.down("Shift")                                         # a box selection
        x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
        page.mouse.move(x0, y0)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(x0 + step * box["width"] * 0.04, y0 + step * box["height"] * 0.04)
            page.wait_for_timeout(30)
        page.mouse.up()
        page.keyboard.up("Shift")
        page.get_by_text("picked=").filter(has_not_text="picked=0").wait_for(timeout=60_000)
        _wait_for_layer(page, 3)
        assert page.evaluate(VIEW) == zoomed

        target = page.evaluate("""() => { const m = window.__embedlabMaps.demo;
            for (let i = 0; i < m.points.header.n; i++) { const [x, y] = m.sp.getScreenPosition(i);
              if (x > 100 && y > 100 && x < m.canvas.clientWidth - 100 && y < m.canvas.clientHeight - 100)
                return [i, x, y]; } return null; }""")
        assert target is not None
        index, px, py = target
        drawn = _layers_drawn(page)
        page.mouse.click(box["x"] + px, box["y"] + py)                     # focus a document
        page.get_by_text("focus=").filter(has_not_text="focus=None").wait_for(timeout=60_000)
        _wait_for_layer(page, drawn + 1)
        assert page.evaluate(VIEW) == zoomed
        focus = int(page.get_by_text("focus=").inner_text().split()[0].split("=")[1])
        fx, fy = page.evaluate(f"window.__embedlabMaps.demo.sp.getScreenPosition({focus})")
        assert (fx - px) ** 2 + (fy - py) ** 2 <= 8 ** 2, (focus, index)   # the point under the cursor

        page.get_by_role("tab", name="two").click()                         # a tab switch (a rerun)
        page.wait_for_timeout(1000)
        assert page.evaluate(VIEW) == zoomed
        assert page.locator("[data-testid='stException']").count() == 0


def test_without_webgl_the_map_says_so(demo_url: str) -> None:
    with chromium("--disable-webgl", "--disable-3d-apis") as b:
        page = b.new_page()
        page.goto(f"{demo_url}/?n=500")
        message = page.locator(".embedlab-map-message")
        message.wait_for(state="visible", timeout=60_000)
        assert "needs WebGL" in message.inner_text()


def test_hovering_a_point_shows_its_snippet_sent_deflated(demo_url: str) -> None:
    """The hover snippets travel deflated with the points and are inflated after the first frame: hovering a
    point shows "#i · category — its text"."""
    with chromium() as b:
        page = b.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(f"{demo_url}/?n=500")
        _wait_for_layer(page, 1)
        page.wait_for_function("() => !!window.__embedlabMaps.demo.texts", timeout=60_000)
        index = 123
        x, y = page.evaluate(f"() => window.__embedlabMaps.demo.sp.getScreenPosition({index})")
        box = _canvas_box(page)
        page.mouse.move(box["x"] + x, box["y"] + y)
        tip = page.locator(".embedlab-map-tip")
        tip.wait_for(state="visible", timeout=30_000)
        text = tip.inner_text()
        assert text.startswith(f"#{index} · c") and f"— point {index} of cluster" in text, text
