"""How the map scales in a real browser: the WebGL map against the Plotly figure the Atlas drew before, on the same
points, in the same run (bench/map_demo_app.py, headless Chromium, software WebGL on a machine without a GPU).

For each n and each renderer, medians of `--runs` runs of:
* first_frame_s: from the moment the page's script finished (its "script-end" stamp) to the map drawn;
* colour_change_s: a click on another "Colour by" choice until the new colours are drawn;
* focus_s: a new focus (number input) until it is drawn;
* select_s: a box selection (shift + drag on the WebGL map; Plotly's box tool) from the mouse's release until the
  rerun's map is drawn;
* *_bytes: WebSocket bytes received for each (Chrome DevTools Protocol, Network.webSocketFrameReceived).
A path that did not finish within `--timeout` seconds has null values. Plotly at 1M is tried and reported as not
finishing when it does not.

    .venv/bin/python bench/map_scale.py --n 100000,1000000 --json OUT
JSON: {"scatter": {"100000": {...}, "1000000": {...}}, "plotly": {"100000": {...}, ...}, "machine": {...}}
"""
from __future__ import annotations

import argparse
import re
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port

KEYS = ("first_frame_s", "colour_change_s", "focus_s", "select_s", "first_frame_bytes", "colour_change_bytes",
        "focus_bytes", "select_bytes")

SCATTER_DRAWN = ("(count) => { const m = window.__embedlabMaps && window.__embedlabMaps.demo;"
                 " return !!m && m.layersDrawn >= count && !m.drawing; }")
SCATTER_SELECTED = ("(count) => { const m = window.__embedlabMaps.demo; return m.layersDrawn >= count && !m.drawing"
                    " && !!m.layer.selected && m.layer.selected.length > 0; }")
SCATTER_COUNT = "() => (window.__embedlabMaps && window.__embedlabMaps.demo && window.__embedlabMaps.demo.layersDrawn) || 0"
# A Plotly figure is drawn when its WebGL canvas exists and Plotly has laid out every point; each new figure is a new
# graph div, so "drawn" means the newest div holds the expected colour of the first point.
PLOTLY_STATE = """() => { const gds = document.querySelectorAll('.js-plotly-plot');
  const gd = gds[gds.length - 1]; if (!gd || !gd._fullData || !gd.querySelector('canvas')) return null;
  const n = gd._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0);
  return {n, sig: gd._fullData.map(t => (t.name || '') + ':' + (t.x ? t.x.length : 0) + ':'
                   + (t.selectedpoints ? t.selectedpoints.length : -1)).join('|'),
          layoutDone: !!gd._fullLayout && !gd._transitioning}; }"""


@contextlib.contextmanager
def demo_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "bench/map_demo_app.py", "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.maxMessageSize", "2000"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
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


class Probe:
    """One browser page on the demo app with the WebSocket bytes it receives counted."""

    def __init__(self, browser, url: str, timeout_s: float) -> None:
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.timeout_ms = int(timeout_s * 1000)
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        self.received = 0
        cdp.on("Network.webSocketFrameReceived", self._count)
        self.url = url

    def _count(self, event: dict) -> None:
        self.received += len(event["response"]["payloadData"])

    def bytes_since(self, mark: int) -> int:
        return self.received - mark

    def script_end_ms(self) -> float:
        text = self.page.get_by_text("script-end=").last.inner_text()
        return float(text.split("=")[1])

    def now_ms(self) -> float:
        return float(self.page.evaluate("Date.now()"))


def wait_plotly(page, timeout_ms: int, *, n: int, before: str | None) -> str:
    """Wait until the newest Plotly figure shows all `n` points and differs from `before`; return its signature."""
    deadline = time.time() + timeout_ms / 1000
    while time.time() < deadline:
        state = page.evaluate(PLOTLY_STATE)
        if state and state["n"] >= n and state["layoutDone"] and state["sig"] != before:
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            return state["sig"]
        time.sleep(0.05)
    raise TimeoutError("plotly did not draw in time")


def one_run(browser, url: str, renderer: str, n: int, timeout_s: float) -> dict:
    probe = Probe(browser, url, timeout_s)
    page = probe.page
    out: dict = {}
    try:
        page.goto(f"{url}/?n={n}&renderer={renderer}", timeout=probe.timeout_ms)
        if renderer == "scatter":
            page.wait_for_function(SCATTER_DRAWN, arg=1, timeout=probe.timeout_ms, polling=50)
            drawn = page.evaluate("performance.timeOrigin + window.__embedlabMaps.demo.lastDrawnAt")
        else:
            sig = wait_plotly(page, probe.timeout_ms, n=n, before=None)
            drawn = probe.now_ms()
        page.get_by_text("script-end=").last.wait_for(timeout=probe.timeout_ms)
        out["first_frame_s"] = max(0.0, (drawn - probe.script_end_ms()) / 1000)
        out["first_frame_bytes"] = probe.received

        def timed(action, label: str, rerun_text: str | None = None) -> None:
            nonlocal sig
            mark, count = probe.received, page.evaluate(SCATTER_COUNT) if renderer == "scatter" else 0
            t0 = probe.now_ms()
            action()
            if rerun_text is not None:       # the round trip: wait for the rerun that the action caused
                page.get_by_text(re.compile(rerun_text)).first.wait_for(timeout=probe.timeout_ms)
            if renderer == "scatter":
                page.wait_for_function(SCATTER_SELECTED if rerun_text else SCATTER_DRAWN, arg=count + 1,
                                       timeout=probe.timeout_ms, polling=50)
                done = page.evaluate("performance.timeOrigin + window.__embedlabMaps.demo.lastDrawnAt")
            else:
                sig = wait_plotly(page, probe.timeout_ms, n=n, before=sig)
                done = probe.now_ms()
            out[f"{label}_s"] = (done - t0) / 1000
            out[f"{label}_bytes"] = probe.bytes_since(mark)

        sig = None if renderer == "scatter" else sig
        timed(lambda: page.get_by_text("parity", exact=True).click(), "colour_change")
        timed(lambda: (page.get_by_label("Focus").fill("7"), page.get_by_label("Focus").press("Enter")), "focus")
        box_drag(page, renderer)
        timed(lambda: box_release(page, renderer), "select", rerun_text=r"picked=[1-9]")
    except Exception as exc:  # noqa: BLE001 - a path that does not finish is reported as null, with why
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        page.close()
    return out


def box_release(page, renderer: str) -> None:
    """Release the mouse that `box_drag` holds down: the moment the user's selection is made."""
    page.mouse.up()
    if renderer == "scatter":
        page.keyboard.up("Shift")


def box_drag(page, renderer: str) -> None:
    """Draw a box (shift + drag on the WebGL map, Plotly's box tool) and keep the mouse button down."""
    if renderer == "scatter":
        box = page.locator("canvas.embedlab-map-canvas").bounding_box()
        page.keyboard.down("Shift")
    else:
        page.locator(".js-plotly-plot").last.hover()
        page.locator("[data-val='select'][data-attr='dragmode']").last.click()
        box = page.locator(".js-plotly-plot .nsewdrag").last.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.35
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + step * box["width"] * 0.02, y0 + step * box["height"] * 0.02)
        page.wait_for_timeout(20)


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r and all(k in r for k in KEYS)]
    out = {k: (round(statistics.median(r[k] for r in ok), 3) if ok else None) for k in KEYS}
    out["runs"] = len(ok)
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        out["errors"] = errors
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="100000,1000000", help="comma-separated point counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a path counts as not finishing")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.n.split(",") if v.strip()]
    from playwright.sync_api import sync_playwright

    result: dict = {"scatter": {}, "plotly": {}}
    with demo_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for n in sizes:
                for renderer in ("scatter", "plotly"):
                    runs = []
                    for _ in range(args.runs):
                        runs.append(one_run(browser, url, renderer, n, args.timeout))
                        if "error" in runs[-1] and renderer == "plotly":
                            break                        # not finishing once is enough to say so
                    result[renderer][str(n)] = summarise(runs)
                    print(json.dumps({renderer: {str(n): result[renderer][str(n)]}}), flush=True)
        finally:
            browser.close()
    result["machine"] = {"cpus": os.cpu_count(), "chromium": CHROMIUM, "webgl": "software (no GPU)"}
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
