"""Real-browser tests of the Atlas: the Map settings (issue 12, item 1: change a setting, Compute map, reload the
browser while the job runs, open ⚙️ Map settings and touch every control: no traceback, and the controls show the
settings of the map being computed, or, once done, the stored map on screen), and the WebGL map keeping the user's
zoom (issue 22: zoom in, change the colour, select with a box, focus a document, switch tab: the camera view is the
same after each)."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import (browser, camera_view, choose, map_layer, require_chromium, screenshot,
                                  streamlit_server, wait_for_app, wait_for_map)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_DOCS = 1500  # t-SNE of 1,500 documents runs for seconds: long enough to reload during it
MAP = "atlas_map"  # the main map's key in window.__embedlabMaps


@pytest.fixture(scope="module")
def atlas_browser_db(tmp_path_factory):
    """Session "s": corpus "news" (1,500 short documents, 3 labels), its tfidf-svd embedding and a 2-D PCA map."""
    require_chromium()
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from storage import connect
    from tests.builders import stored_corpus

    path = tmp_path_factory.mktemp("browser-atlas") / "atlas.sqlite"
    db = connect(path)
    topics = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
              "space": "rocket orbit nasa launch planet moon"}
    texts, labels = [], []
    for i in range(N_DOCS):
        label = list(topics)[i % 3]
        w = topics[label].split()
        texts.append(f"{w[i % 6]} {w[(i + 1) % 6]} {w[(i * 7 + 2) % 6]} story {i} about {label} "
                     + "more words " * (i % 20))
        labels.append(label)
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(N_DOCS)])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2},
            session_id=sid)
    db.close()
    return path


def _popover(page):
    return page.locator("[data-testid='stPopoverBody']")


def _open_map_settings(page) -> None:
    if not _popover(page).is_visible():
        page.get_by_role("button", name="Map settings").click()
    _popover(page).wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(300)


def _settings_shown(page) -> dict:
    body = _popover(page)
    pressed = [b.inner_text().strip() for b in body.locator("[role='radio'][aria-checked='true']").all()]
    sliders = [i.get_attribute("aria-valuetext") for i in body.locator("input[type='range']").all()]
    seed = body.locator("input[type='number']").first.input_value()
    return {"pressed": pressed, "sliders": sliders, "seed": seed}


def _no_exception(page, where: str) -> None:
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, f"traceback {where}: {errors.first.inner_text()[:500]}"


def _settle(page) -> None:
    wait_for_app(page)
    page.wait_for_timeout(500)


@contextlib.contextmanager
def _write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's view of a busy database: a write lock held until the block ends (readers go on)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _map_job_statuses(conn: sqlite3.Connection, method: str) -> list[str]:
    """The statuses of the map jobs of `method`, oldest first."""
    return [r[0] for r in conn.execute("SELECT status FROM jobs WHERE kind = 'project' AND "
                                       "json_extract(params_json, '$.method') = ? ORDER BY id", [method])]


def test_reload_during_a_map_job_then_touching_every_map_setting(atlas_browser_db):
    with streamlit_server(atlas_browser_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/atlas?session=s")
        _settle(page)
        pca_revision = wait_for_map(page, MAP, points=N_DOCS)["revision"]
        _open_map_settings(page)
        assert _settings_shown(page)["pressed"] == ["pca", "2-D"]  # the stored map's

        # change a setting, Compute map
        _popover(page).get_by_role("radio", name="tsne", exact=True).click()
        _settle(page)
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Compute map").click()
        page.get_by_text("Computing the map").first.wait_for(timeout=60_000)

        # reload while the job runs: a write lock held here keeps it from storing its map until the page is back
        with _write_lock(atlas_browser_db) as lock:
            assert _map_job_statuses(lock, "tsne") == ["running"]
            page.reload()
            _settle(page)
            assert page.get_by_text("Computing the map").count() == 1       # the reloaded page follows the job
            screenshot(page, "atlas-reload-during-job")
            _no_exception(page, "after the reload")
            _open_map_settings(page)
            screenshot(page, "atlas-reload-map-settings")
            shown = _settings_shown(page)
            assert _map_job_statuses(lock, "tsne") == ["running"]
        # the map being computed: t-SNE 2-D, seed 42
        assert shown == {"pressed": ["tsne", "2-D"], "sliders": ["15", "0.10"], "seed": "42"}, shown

        # touch every control
        body = _popover(page)
        for name in ("3-D", "2-D"):
            body.get_by_role("radio", name=name, exact=True).click()
            _settle(page)
            _no_exception(page, f"after Dimensions {name}")
            _open_map_settings(page)
            body = _popover(page)
        body.get_by_role("radio", name="umap", exact=True).click()
        _settle(page)
        _no_exception(page, "after Method umap")
        _open_map_settings(page)
        body = _popover(page)
        for i in range(2):  # n_neighbors, then min_dist: one step right each
            body.locator("input[type='range']").nth(i).focus()
            page.keyboard.press("ArrowRight")
            _settle(page)
            _no_exception(page, f"after slider {i}")
            _open_map_settings(page)
            body = _popover(page)
        body.locator("input[type='number']").first.fill("7")
        body.locator("input[type='number']").first.press("Enter")
        _settle(page)
        _no_exception(page, "after Seed")
        _open_map_settings(page)
        shown = _settings_shown(page)
        assert shown == {"pressed": ["umap", "2-D"], "sliders": ["16", "0.11"], "seed": "7"}, shown
        _popover(page).get_by_role("radio", name="pca", exact=True).click()
        _settle(page)
        _no_exception(page, "after Method pca")
        page.keyboard.press("Escape")
        assert wait_for_map(page, MAP, points=N_DOCS)["revision"] == pca_revision   # back on the stored PCA map
        screenshot(page, "atlas-after-touching-every-setting")
        _no_exception(page, "at the end")


def _map_box(page) -> dict:
    """The main map's canvas, scrolled into view: where it is in the viewport (CSS pixels). Read it again before
    each use of the mouse: a rerun may scroll the page."""
    return page.evaluate(f"""() => {{ const canvas = window.__embedlabMaps.{MAP}.canvas;
        canvas.scrollIntoView({{block: 'nearest', behavior: 'instant'}});
        const r = canvas.getBoundingClientRect();
        return {{x: r.x, y: r.y, width: r.width, height: r.height}}; }}""")


def _steady_view(page) -> list[float]:
    """The main map's camera view once it has stopped moving (a wheel zoom arrives as several events)."""
    page.wait_for_function(f"""() => new Promise(done => {{ const sp = window.__embedlabMaps.{MAP}.sp;
        const before = Array.from(sp.get('cameraView')).join();
        setTimeout(() => done(Array.from(sp.get('cameraView')).join() === before), 400); }})""", timeout=30_000)
    return camera_view(page, MAP)


def _layers(page) -> int:
    return page.evaluate(f"window.__embedlabMaps.{MAP}.layersDrawn || 0")


def _point_to_click(page) -> tuple[float, float]:
    """Where to click a document: the one drawn farthest from any other point (the least ambiguous click), 60 px or
    more inside the canvas and 12 px or more from the focused document. (x, y in the canvas)."""
    found = page.evaluate(f"""() => {{ const m = window.__embedlabMaps.{MAP};
        const w = m.canvas.clientWidth, h = m.canvas.clientHeight, focus = m.layer.header.focus;
        const xy = Array.from({{length: m.points.header.n}}, (_, i) => m.sp.getScreenPosition(i));
        const [fx, fy] = focus === null || focus === undefined ? [-1e9, -1e9] : xy[focus];
        let best = null, bestGap = -1;
        for (let i = 0; i < xy.length; i++) {{
            const [x, y] = xy[i];
            if (x < 60 || y < 60 || x > w - 60 || y > h - 60 || (x - fx) ** 2 + (y - fy) ** 2 < 144) continue;
            let gap = Infinity;
            for (let j = 0; j < xy.length && gap > bestGap; j++)
                if (j !== i) gap = Math.min(gap, (xy[j][0] - x) ** 2 + (xy[j][1] - y) ** 2);
            if (gap > bestGap) {{ best = [x, y]; bestGap = gap; }} }}
        return best; }}""")
    assert found is not None, "no document on screen to click"
    return float(found[0]), float(found[1])


def _densest_spot(page) -> tuple[float, float]:
    """Where the main map is densest (the point with the most others within 60 px), 8 % of the canvas or more
    from its edges: zooming there keeps many documents on screen."""
    return tuple(page.evaluate(f"""() => {{ const m = window.__embedlabMaps.{MAP};
        const w = m.canvas.clientWidth, h = m.canvas.clientHeight;
        const xy = Array.from({{length: m.points.header.n}}, (_, i) => m.sp.getScreenPosition(i));
        let best = [w / 2, h / 2], most = -1;
        for (let i = 0; i < xy.length; i += 7) {{ const [x, y] = xy[i];
            if (x < 0.08 * w || y < 0.08 * h || x > 0.92 * w || y > 0.92 * h) continue;
            const near = xy.filter(([u, v]) => (u - x) ** 2 + (v - y) ** 2 < 3600).length;
            if (near > most) {{ most = near; best = [x, y]; }} }}
        return best; }}"""))


def _click_point(page) -> int:
    """Click a document on the main map; wait until the map shows a new focus; check it is the document under the
    cursor (drawn within 8 px of the click, before any "Zoom to focus" moved the view); return its index."""
    wait_for_map(page, MAP, points=N_DOCS)      # regl-scatterplot ignores clicks while it draws
    x, y = _point_to_click(page)
    before = map_layer(page, MAP)["focus"]
    page.evaluate(f"""() => {{ const m = window.__embedlabMaps.{MAP};
        window.__beforeClick = Array.from({{length: m.points.header.n}}, (_, i) => m.sp.getScreenPosition(i)); }}""")
    box = _map_box(page)
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"""(before) => {{ const m = window.__embedlabMaps.{MAP}, f = m.layer.header.focus;
        return f !== null && f !== undefined && f !== before && !m.drawing; }}""", arg=before, timeout=60_000)
    _settle(page)
    focus = map_layer(page, MAP)["focus"]
    fx, fy = page.evaluate(f"window.__beforeClick[{focus}]")
    assert (fx - x) ** 2 + (fy - y) ** 2 <= 8 ** 2, ("not the clicked document", focus, (x, y), (fx, fy))
    return int(focus)


def _box_select(page, fx0: float, fy0: float, fx1: float, fy1: float) -> tuple[list[int], list[int]]:
    """Shift + drag a box over the main map (regl-scatterplot's lasso in rectangle mode). Returns the documents
    drawn clearly inside the box and those clearly outside it (4 px from its edges), read before the drag."""
    wait_for_map(page, MAP, points=N_DOCS)      # regl-scatterplot ignores the mouse while it draws
    box = _map_box(page)
    x0, y0, x1, y1 = fx0 * box["width"], fy0 * box["height"], fx1 * box["width"], fy1 * box["height"]
    inside, outside = page.evaluate(f"""([x0, y0, x1, y1]) => {{ const m = window.__embedlabMaps.{MAP};
        const inside = [], outside = [];
        for (let i = 0; i < m.points.header.n; i++) {{ const [x, y] = m.sp.getScreenPosition(i);
            if (x > x0 + 4 && x < x1 - 4 && y > y0 + 4 && y < y1 - 4) inside.push(i);
            else if (x < x0 - 4 || x > x1 + 4 || y < y0 - 4 || y > y1 + 4) outside.push(i); }}
        return [inside, outside]; }}""", [x0, y0, x1, y1])
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + x0 + 1, box["y"] + y0 + 1)      # the lasso's box starts where the mouse first moves
    page.wait_for_timeout(30)
    for step in range(1, 11):
        page.mouse.move(box["x"] + x0 + step * (x1 - x0) / 10, box["y"] + y0 + step * (y1 - y0) / 10)
        page.wait_for_timeout(30)
    page.mouse.up()
    page.keyboard.up("Shift")
    return inside, outside


def test_the_users_zoom_survives_colour_selection_focus_and_tab_switch(atlas_browser_db):
    """Issue 22, done when: on the Atlas's WebGL map, zoom in, then change "Colour by", select with a box (the
    selection reaches the Selection tab), focus a document by clicking it (with "Zoom to focus" off) and switch
    tab: the camera view is the same after each. With "Zoom to focus" on, a focus moves the view to it by design,
    and the next change keeps that view."""
    with streamlit_server(atlas_browser_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 1400})
        page.goto(f"{url}/atlas?session=s")
        _settle(page)
        wait_for_map(page, MAP, points=N_DOCS)
        zoom_toggle = page.locator("[data-testid='stCheckbox']").filter(has_text="Zoom to focus")
        zoom_toggle.locator("label").click()
        _settle(page)
        assert not zoom_toggle.locator("input").is_checked()
        full = _steady_view(page)
        box = _map_box(page)

        ax, ay = _densest_spot(page)
        page.mouse.move(box["x"] + ax, box["y"] + ay)
        page.mouse.wheel(0, -500)                                                    # zoom in, there
        zoomed = _steady_view(page)
        assert zoomed != full, "the wheel did not zoom"
        assert zoomed[0] > full[0] * 1.2, (full, zoomed)                             # the scale grew

        before = map_layer(page, MAP)
        drawn = _layers(page)
        assert choose(page, "Colour by", "length (characters)")                     # a colour change
        wait_for_map(page, MAP, points=N_DOCS, layers=drawn + 1)
        after = map_layer(page, MAP)
        assert after["legend"] != before["legend"] or after["title"] != before["title"], "the colours did not change"
        assert camera_view(page, MAP) == zoomed, "a colour change moved the view"
        _no_exception(page, "after a colour change")

        fx, fy = ax / box["width"], ay / box["height"]                              # a box selection around it
        inside, outside = _box_select(page, max(0.02, fx - 0.15), max(0.08, fy - 0.15), min(0.98, fx + 0.15),
                                      min(0.98, fy + 0.15))
        assert len(inside) >= 5, "too few documents in the box to test a selection"
        page.get_by_text("documents selected").first.wait_for(timeout=60_000)
        page.wait_for_function(f"""() => {{ const m = window.__embedlabMaps.{MAP};
            return !!m.layer.selected && m.layer.selected.length > 0 && !m.drawing; }}""", timeout=60_000)
        _settle(page)
        selected = map_layer(page, MAP)["selected"]
        assert set(inside) <= set(selected) and not set(outside) & set(selected), (len(inside), len(selected))
        assert page.get_by_text(f"{len(selected):,} documents selected").count() == 1
        assert camera_view(page, MAP) == zoomed, "a box selection moved the view"
        screenshot(page, "atlas-box-selection-keeps-zoom")
        _no_exception(page, "after a box selection")

        focus = _click_point(page)                                                  # focus a document
        assert page.get_by_text(f"Document #{focus}").count() >= 1                  # its neighbour panel
        assert map_layer(page, MAP)["selected"] == selected                         # the selection stays
        assert camera_view(page, MAP) == zoomed, "a focus moved the view with Zoom to focus off"
        _no_exception(page, "after a focus")

        drawn = _layers(page)
        page.get_by_role("tab", name="☑️ Selection").click()                          # a tab switch (a rerun)
        page.wait_for_function("() => new URLSearchParams(location.search).get('tab') === 'Selection'",
                               timeout=60_000)
        _settle(page)
        wait_for_map(page, MAP, points=N_DOCS, layers=drawn)
        panel = page.locator("[role='tabpanel']:visible")                           # the selection reached it
        panel.get_by_role("button", name=f"🔖 Bookmark {len(selected):,} documents").wait_for(timeout=60_000)
        assert camera_view(page, MAP) == zoomed, "a tab switch moved the view"
        _no_exception(page, "after a tab switch")

        drawn = _layers(page)
        page.get_by_role("button", name="Clear selection").click()                  # a selection made elsewhere
        page.get_by_text("documents selected").first.wait_for(state="detached", timeout=60_000)
        wait_for_map(page, MAP, points=N_DOCS, layers=drawn + 1)
        assert map_layer(page, MAP)["selected"] == []
        assert camera_view(page, MAP) == zoomed, "clearing the selection moved the view"

        zoom_toggle.locator("label").click()                                         # Zoom to focus on
        _settle(page)
        assert zoom_toggle.locator("input").is_checked()
        before_focus = _steady_view(page)             # (turning it on may move the view to the focused document)
        second = _click_point(page)
        assert second != focus
        moved = _steady_view(page)
        assert moved != before_focus, "Zoom to focus did not move the view"
        x, y = page.evaluate(f"window.__embedlabMaps.{MAP}.sp.getScreenPosition({second})")
        assert 0 < x < box["width"] and 0 < y < box["height"], "the focus is off the map after Zoom to focus"
        drawn = _layers(page)
        assert choose(page, "Colour by", "cluster")                                 # the moved view stays
        wait_for_map(page, MAP, points=N_DOCS, layers=drawn + 1)
        assert camera_view(page, MAP) == moved, "a colour change undid Zoom to focus"
        _no_exception(page, "at the end")
