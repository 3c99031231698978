"""Hostile content in real Chromium: injected markup is shown literally and never runs; ten users at once."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser_support import browser, require_chromium, screenshot, streamlit_server, wait_for_app, wait_for_map

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOADS = [
    "<script>window.__xss = 1</script> a script tag",
    '<img src="x" onerror="window.__xss = 2"> an image with onerror',
    '<svg onload="window.__xss = 3"></svg> an svg with onload',
    "[click me](javascript:window.__xss=4) a markdown javascript link",
    '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe> an iframe',
    "**bold** _markdown_ # heading ``` code fence",
    "مرحبا بالعالم right-to-left text \u202e reversed",
    "emoji 🧭🚀 and zero\u200bwidth\u200djoiners",
]
WATCH = "window.__xss = 0; window.addEventListener('error', () => {});"


def _hostile_db(path: Path) -> None:
    import embedlab.tasks  # noqa: F401
    from embedlab.corpus import Corpus
    from embedlab.jobs import run_job
    from storage import connect
    from storage.corpora import save_corpus
    from storage.sessions import ensure_session, set_notes

    texts = [f"{p} xss document {i}" for i, p in enumerate(PAYLOADS)]
    texts += [f"plain neighbour document about topic {i % 5} and xss {i}" for i in range(40)]
    texts.append("xss huge " + "A" * 1_000_000)
    db = connect(path)
    sid = ensure_session(db, "hostile <b>'\"; DROP TABLE sessions; --")
    corpus = save_corpus(db, sid, Corpus(name="<img src=x onerror=window.__xss=9>", source="t", texts=texts,
                                         doc_ids=[str(i) for i in range(len(texts))],
                                         labels=["<script>window.__xss=7</script>"] * 4 + ["ok"] * (len(texts) - 4)))
    set_notes(db, "hostile <b>'\"; DROP TABLE sessions; --",
              "<script>window.__xss=8</script> [x](javascript:window.__xss=8) <img src=x onerror=window.__xss=8>")
    run_job(db, "project", {"corpus_id": corpus.id, "model": "tfidf-svd", "method": "pca"})
    db.close()


def test_injected_markup_never_runs(tmp_path):
    require_chromium()
    import urllib.parse

    path = tmp_path / "hostile.sqlite"
    _hostile_db(path)
    session = urllib.parse.quote("hostile <b>'\"; DROP TABLE sessions; --", safe="")
    dialogs: list[str] = []
    with streamlit_server(path) as url, browser() as b:
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        page.add_init_script(WATCH)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for name in ["corpora", "sessions", "atlas"]:
            page.goto(f"{url}/{name}?session={session}")
            wait_for_app(page)
            assert page.locator("[data-testid='stException']").count() == 0, name
        # Atlas: wait for the map, hover every hostile point, search for the payloads
        wait_for_map(page, "atlas_map", points=len(PAYLOADS) + 41)
        tips = _hover(page, [*range(len(PAYLOADS)), len(PAYLOADS) + 40])     # the payloads and the huge document
        assert tips and all(markup == 0 for _, markup in tips), tips        # the tooltip is text, never markup
        assert any("<script>window.__xss=7</script>" in text for text, _ in tips), tips   # a label, shown literally
        page.get_by_placeholder("Search the corpus, then press Enter").fill("script")
        page.get_by_placeholder("Search the corpus, then press Enter").press("Enter")
        wait_for_app(page)
        page.get_by_role("radio", name="Keyword").click()
        wait_for_app(page)
        screenshot(page, "hostile-atlas")
        body = page.inner_text("body")
        assert page.evaluate("window.__xss") == 0
        assert dialogs == []
        assert "window.__xss" in body  # the payloads are shown as text
        assert page.evaluate("document.querySelectorAll('iframe[srcdoc], img[onerror], svg[onload]').length") == 0


def _hover(page, indices: list[int]) -> list[tuple[str, int]]:
    """Move the mouse onto each of these documents on the Atlas's map; (the tooltip's text, its count of child
    elements) for each hover that showed one."""
    out = []
    for i in indices:
        box = page.evaluate("""() => { const canvas = window.__embedlabMaps.atlas_map.canvas;
            canvas.scrollIntoView({block: 'nearest', behavior: 'instant'}); const r = canvas.getBoundingClientRect();
            return {x: r.x, y: r.y, width: r.width, height: r.height}; }""")
        x, y = page.evaluate(f"window.__embedlabMaps.atlas_map.sp.getScreenPosition({i})")
        if not (0 <= x < box["width"] and 0 <= y < box["height"]):
            continue
        tip = page.locator(".embedlab-map-tip").first
        tip.evaluate("el => { el.style.display = 'none'; }")       # shown again only by this hover
        page.mouse.move(box["x"] + x, box["y"] + y, steps=3)
        try:
            tip.wait_for(state="visible", timeout=5_000)
        except Exception as e:          # playwright's TimeoutError: no point under the cursor
            if type(e).__name__ != "TimeoutError":
                raise
            continue
        out.append((tip.text_content(), tip.evaluate("el => el.childElementCount")))
    return out


def _big_db(path: Path, n: int) -> None:
    """A 20k-document corpus with its default-model embedding and UMAP map stored (synthetic vectors)."""
    from bench.synthetic import build_db, clustered

    X, labels = clustered(n)
    rng = np.random.default_rng(0)
    coords = (rng.normal(size=(n, 2)) + labels[:, None] % 7).astype(np.float32)
    build_db(path, X, labels, coords)


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_ten_simultaneous_users_on_a_20k_atlas(tmp_path, capsys):
    require_chromium()
    path = tmp_path / "big.sqlite"
    _big_db(path, 20_000)
    with streamlit_server(path) as url, browser() as b:
        server_pid = int(os.popen(f"pgrep -f 'streamlit run app.py.*{url.rsplit(':', 1)[1]}'").read().split()[0])
        idle = _rss_mb(server_pid)
        first = b.new_context(viewport={"width": 1400, "height": 900}).new_page()
        first.goto(f"{url}/atlas?session=scale")
        wait_for_map(first, "atlas_map", points=20_000, timeout_ms=180_000)
        wait_for_app(first, timeout_ms=180_000)
        one_user = _rss_mb(server_pid)
        pages = [b.new_context(viewport={"width": 1400, "height": 900}).new_page() for _ in range(10)]
        t0 = time.perf_counter()
        for p in pages:
            p.goto(f"{url}/atlas?session=scale", wait_until="commit")
        for p in pages:
            p.bring_to_front()
            wait_for_map(p, "atlas_map", points=20_000, timeout_ms=300_000)      # every map holds every point
            wait_for_app(p, timeout_ms=300_000)
        all_drawn = time.perf_counter() - t0
        ten_users = _rss_mb(server_pid)
        for p in pages:
            assert p.locator("[data-testid='stException']").count() == 0
            assert p.evaluate("window.__embedlabMaps.atlas_map.sp.get('points').length") == 20_000
        screenshot(pages[-1], "ten-users-atlas")
    per_user = (ten_users - one_user) / 10
    with capsys.disabled():
        print(f"\n[ten users] server RSS idle {idle:.0f} MB, one user {one_user:.0f} MB, ten more {ten_users:.0f} MB "
              f"({per_user:.1f} MB per extra user); all ten maps drawn in {all_drawn:.1f} s")
    # the 20k x 384 float32 matrix is 29 MB: shared, not copied per user
    assert per_user < 29, f"{per_user:.1f} MB per user: matrices seem copied per session"
