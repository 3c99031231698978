"""A Streamlit server on a free loopback port and a headless Debian chromium driven by Playwright: what the browser
benches and the browser tests share (one owner). A bench run as `.venv/bin/python bench/NAME.py` has bench/ on its
path (`from browser_helpers import ...`); the tests import it as `bench.browser_helpers` (the repository root is on
pytest's path), through tests/browser_support.py."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 # many tabs at once: keep background tabs rendering (the maps draw on animation frames)
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(db_path: Path, *, env: dict | None = None, timeout: float = 90) -> Iterator[str]:
    """Run `streamlit run app.py` against `db_path`; yield its base URL; stop it afterwards."""
    port = free_port()
    full_env = {**os.environ, "EMBEDLAB_DB": str(db_path), "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("EMBEDLAB_DEMO", None)
    log = open(db_path.with_suffix(".server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"streamlit did not answer in {timeout} s: {db_path.with_suffix('.server.log')}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright  # third-party, heavy: only the browser benches and tests need it

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] *').length > 5",
        timeout=timeout_ms)
    page.wait_for_timeout(500)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def server_pid(url: str) -> int:
    """The pid of the process listening on `url`'s port (the Streamlit server started by `streamlit_server`),
    found through /proc (Linux): the listening socket's inode, then the process holding it."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":   # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on port {port}")


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) and of its live child processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()   # after "(comm)": fields[11], [12] are utime, stime
        total += int(fields[11]) + int(fields[12])
    return total / ticks


# Every map on the page: the WebGL maps (window.__embedlabMaps, one per key; an entry outlives its element, so a map
# counts only while its canvas is in the document) and the Plotly graphs (3-D maps, the report's charts).
# `points` is what regl-scatterplot holds after its last draw finished; `visible`: the canvas takes up space.
MAPS_STATE = """() => { const out = [];
    const maps = window.__embedlabMaps || {};
    for (const [key, m] of Object.entries(maps)) {
        if (key.startsWith('__') || !m || !m.sp || !m.canvas || !m.canvas.isConnected) continue;
        const drawn = !m.drawing && m.lastDrawnAt !== undefined;
        out.push({key, kind: 'webgl', points: drawn ? m.sp.get('points').length : 0, drawn,
                  layers: m.layersDrawn || 0, revision: m.revision || null,
                  visible: m.canvas.getClientRects().length > 0 && m.canvas.clientWidth > 0}); }
    document.querySelectorAll('.js-plotly-plot').forEach((gd, i) => {
        if (!gd._fullData || !gd.querySelector('canvas')) return;
        const points = gd._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0);
        out.push({key: gd.id || `plotly-${i}`, kind: 'plotly', points, drawn: points > 0, layers: 0,
                  revision: null, visible: gd.getClientRects().length > 0}); });
    return out; }"""


def maps_state(page) -> list[dict]:
    """Each map of the page in the document: key, kind ('webgl' or 'plotly'), points drawn, whether its last draw
    has finished, the WebGL map's count of layer draws and its revision, and whether it takes up space."""
    return page.evaluate(MAPS_STATE)


def wait_for_points(page, n: int, timeout_ms: int = 600_000) -> int:
    """Wait until some map of the page (a WebGL map, or a Plotly graph with its WebGL canvas, for 3-D) has drawn at
    least `n` points; return the largest count drawn."""
    script = f"() => Math.max(0, ...({MAPS_STATE})().filter(m => m.drawn).map(m => m.points))"
    page.wait_for_function(f"() => ({script})() >= {int(n)}", timeout=timeout_ms, polling=200)
    return int(page.evaluate(script))


def wait_for_map(page, key: str, *, points: int | None = None, layers: int = 1, visible: bool = True,
                 timeout_ms: int = 120_000) -> dict:
    """Wait until the WebGL map `key` is in the document (and on screen, with `visible`), its last draw has
    finished, it has drawn its layer (colours, marks) at least `layers` times and, given `points`, exactly that
    many points; return its state (see `maps_state`)."""
    page.wait_for_function(
        f"""([key, points, layers, visible]) => {{ const m = ({MAPS_STATE})().find(s => s.key === key);
            return !!m && m.drawn && m.layers >= layers && (points === null || m.points === points)
                   && (!visible || m.visible); }}""",
        arg=[key, points, layers, visible], timeout=timeout_ms, polling=100)
    return next(m for m in maps_state(page) if m["key"] == key)


def map_layer(page, key: str) -> dict:
    """The layer the WebGL map `key` shows: its header (legend, focus, marks, zoom_to, …) and the selected
    indices."""
    return page.evaluate("""(key) => { const l = window.__embedlabMaps[key].layer;
        return {...l.header, selected: l.selected ? Array.from(l.selected) : []}; }""", key)


def camera_view(page, key: str) -> list[float]:
    """The WebGL map `key`'s camera view (regl-scatterplot's 4 x 4 view matrix, flattened)."""
    return page.evaluate("(key) => Array.from(window.__embedlabMaps[key].sp.get('cameraView'))", key)


def page_urls(page) -> dict[str, str]:
    """Page title (lower case) -> URL, as the app's sidebar navigation serves them (the default page is the root)."""
    page.wait_for_selector("[data-testid='stSidebarNavLink']", timeout=60_000)
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll(
        "[data-testid='stSidebarNavLink']")).map(a => [a.innerText.trim().split('\\n').pop().trim().toLowerCase(),
                                                      a.href.split('?')[0]]))""")


def choose(page, label: str, option: str) -> bool:
    """Choose `option` in the Streamlit selectbox labelled `label` and wait for the rerun; False if it was chosen
    already (nothing clicked)."""
    box = page.locator("[data-testid='stSelectbox']").filter(has=page.get_by_text(label, exact=True))
    box.wait_for(timeout=30_000)
    if box.locator("input").input_value() == option:
        return False
    choice = page.get_by_role("option", name=option, exact=True)
    for attempt in range(3):
        box.locator("input").click()
        try:
            choice.click(timeout=5_000)
            break
        except Exception as e:        # playwright's TimeoutError (playwright is imported only where it is needed)
            # the list closes when the page scrolls under it (react-aria), as it may right after the click: again
            if type(e).__name__ != "TimeoutError" or attempt == 2:
                raise
            page.keyboard.press("Escape")
    wait_for_app(page)
    return True


def emit(result: dict, out: str | None) -> None:
    """Print a bench's JSON, and write it to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
