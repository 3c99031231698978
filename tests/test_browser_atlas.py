"""Real-browser test of the Atlas's Map settings (issue 12, item 1): change a setting, Compute map, reload the
browser while the job runs, open ⚙️ Map settings and touch every control: no traceback, and the controls show
the settings of the map being computed (or, once done, the stored map on screen)."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import browser, require_chromium, screenshot, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_DOCS = 1500  # t-SNE of 1,500 documents runs for seconds: long enough to reload during it


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
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
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
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)  # back on the stored PCA map
        screenshot(page, "atlas-after-touching-every-setting")
        _no_exception(page, "at the end")


def _x_range(page):
    return page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot');"
                         " gd.dataset.probe = 'kept'; return gd.layout.xaxis.range.slice(); }")


def _probe(page):
    return page.evaluate("() => document.querySelector('.js-plotly-plot').dataset.probe || null")


def _drag(page, box, fx0, fy0, fx1, fy1) -> None:
    page.mouse.move(box["x"] + fx0 * box["width"], box["y"] + fy0 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"], steps=8)
    page.mouse.up()


def test_a_box_selection_keeps_the_users_zoom(atlas_browser_db):
    """Item 5: Streamlit mounts a changed figure as a new chart (the zoom goes, whatever the uirevision), so a
    selection made on the map must not change the figure; one made elsewhere (Clear selection) must."""
    with streamlit_server(atlas_browser_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/atlas?session=s")
        _settle(page)
        page.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=60_000)
        box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        full = _x_range(page)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -300)  # scroll zoom, around the middle of the map
        page.wait_for_timeout(1000)
        zoomed = _x_range(page)
        assert zoomed != full
        page.locator(".js-plotly-plot [data-title='Box Select']").first.click()
        _drag(page, box, 0.02, 0.02, 0.98, 0.98)
        _settle(page)
        screenshot(page, "atlas-box-selection-keeps-zoom")
        page.get_by_text("documents selected").first.wait_for(timeout=30_000)
        _no_exception(page, "after a box selection")
        assert _probe(page) == "kept", "the chart was mounted anew"
        assert page.evaluate("() => document.querySelector('.js-plotly-plot').layout.xaxis.range.slice()") == zoomed
        screenshot(page, "atlas-box-selection-keeps-zoom")
        page.get_by_role("button", name="Clear selection").click()
        _settle(page)
        page.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=60_000)
        assert _probe(page) is None  # redrawn without the selection
        _no_exception(page, "after Clear selection")
