"""Real-browser checks of a demo's path through sessions: the first visit paints the real navigation, "New
session" switches to it, an import shows up at once, a share link opened in a fresh browser context restores the
view, and the HTML report opens from disk with the network blocked."""
from __future__ import annotations

import time

import pytest

from tests.browser_support import (browser, map_layer, maps_state, require_chromium, screenshot, streamlit_server,
                                  wait_for_app, wait_for_map)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
VIEWPORT = {"width": 1440, "height": 900}
N_SAMPLE = 1100    # documents of the CLINC sample


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """Session "demo" (the CLINC sample, TF-IDF embedding, a PCA map, a bookmark, a retrieval and an OOD run) and
    session "a-first", which sorts first: a restored session is never the default one."""
    require_chromium()
    import embedlab.tasks  # noqa: F401
    from embedlab.datasets import load_sample
    from embedlab.jobs import run_job
    from storage import connect
    from storage.bookmarks import add_bookmarks
    from storage.sessions import ensure_session, save_run

    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    db = connect(path)
    ensure_session(db, "a-first")
    sid = ensure_session(db, "demo")
    corpus = load_sample(db, sid, "clinc150-sample")
    run_job(db, "project", {"corpus_id": corpus.id, "model": "tfidf-svd", "method": "pca"})
    add_bookmarks(db, sid, corpus.id, [5], note="a <b>note</b>")
    save_run(db, sid, "retrieval", {"source": "labels", "baseline": "bm25"},
             {m: {"ndcg@10": v, "recall@100": v, "mrr@10": v, "ms_per_query": 1 + v, "index_bytes": 1000 * (1 + v)}
              for m, v in (("bm25", 0.3), ("dense", 0.4))})
    save_run(db, sid, "ood", {"corpus": corpus.name}, {"knn": {"auroc": 0.9, "fpr95": 0.3}},
             {"roc": {"knn": {"fpr": [0, 0.2, 1], "tpr": [0, 0.9, 1]}}})
    db.close()
    return path


def nav_links(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stSidebarNav"] a')]
                                  .map(a => a.innerText.trim().split('\\n').pop())""")


def test_first_visit_paints_the_real_navigation_at_once(demo_db, tmp_path):
    """A fresh server used to show the raw pages folder ("app", "atlas", … in lowercase) over a blank page until
    app.py's imports were done; now `st.navigation` comes first."""
    import shutil

    fresh = tmp_path / "fresh.sqlite"
    shutil.copy(demo_db, fresh)
    with streamlit_server(fresh) as url, browser() as b:
        page = b.new_page(viewport=VIEWPORT)
        t0 = time.monotonic()
        page.goto(f"{url}/?session=demo", wait_until="commit")
        raw_since, raw_for, real_at, title_at = None, 0.0, None, None
        while time.monotonic() - t0 < 90 and title_at is None:
            links = nav_links(page)
            now = time.monotonic() - t0
            if "app" in links:
                raw_since = now if raw_since is None else raw_since
                raw_for = now - raw_since
            if "Corpora" in links and real_at is None:
                real_at = now
            if real_at is not None and page.locator("h1").count():
                title_at = now
            page.wait_for_timeout(25)
        screenshot(page, "first-visit")
    assert real_at is not None and title_at is not None, "the app never painted"
    assert raw_for < 0.5, f"the raw pages-folder navigation showed for {raw_for:.2f} s"


def pick(page, label: str, option: str, *, where=None) -> None:
    """Choose `option` in the selectbox labelled `label`."""
    scope = where or page
    box = scope.locator("[data-testid='stSelectbox']").filter(has=page.get_by_text(label, exact=True)).first
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def selected(scope, label: str) -> str:
    """The value a selectbox labelled `label` shows."""
    box = scope.locator(f"[data-testid='stSelectbox'] input[aria-label='{label}']").first
    box.wait_for(state="attached")
    return box.input_value().strip()


def sidebar_session(page) -> str:
    return selected(page.locator("[data-testid='stSidebar']"), "Session")


def test_share_link_opened_in_a_fresh_context_restores_the_view(demo_db):
    from components.share_link import parse_link

    with streamlit_server(demo_db) as url, browser() as b:
        a = b.new_context(viewport=VIEWPORT).new_page()
        a.goto(f"{url}/atlas?session=demo")
        wait_for_app(a)
        pick(a, "Colour by", "length (characters)")
        a.locator("[data-testid='stSidebar']").get_by_text("Share link").click()
        code = a.locator("[data-testid='stPopoverBody'] code").first
        code.wait_for()
        link = code.inner_text().strip()
        base, state = parse_link(link)
        assert base == url and state.page == "atlas" and state.session == "demo"
        assert state.corpus == "clinc150-sample" and state.colour == "length (characters)"
        screenshot(a, "share-link-popover")

        # a fresh context: no cookies, no session state, only the link
        fresh = b.new_context(viewport=VIEWPORT).new_page()
        fresh.goto(link)
        wait_for_app(fresh)
        wait_for_map(fresh, "atlas_map", points=N_SAMPLE)
        screenshot(fresh, "share-link-restored")
        assert fresh.locator("[data-testid='stException']").count() == 0
        assert fresh.locator("h1").first.inner_text().strip() == "Atlas"
        assert sidebar_session(fresh) == "demo"
        main = fresh.locator("[data-testid='stMain']")
        assert selected(main, "Corpus") == "clinc150-sample"
        assert selected(main, "Colour by") == "length (characters)"
        assert map_layer(fresh, "atlas_map")["title"] == "length (characters)"     # the map is coloured so too
        screenshot(fresh, "share-link-restored")

        # focus and selection travel too
        fresh2 = b.new_context(viewport=VIEWPORT).new_page()
        fresh2.goto(link + "&focus=5&sel=5-9")
        wait_for_app(fresh2)
        wait_for_map(fresh2, "atlas_map", points=N_SAMPLE)
        assert fresh2.locator("[data-testid='stException']").count() == 0
        assert fresh2.get_by_text("Document #5").count() >= 1
        shown = map_layer(fresh2, "atlas_map")                                      # and the map shows them
        assert shown["focus"] == 5 and shown["selected"] == [5, 6, 7, 8, 9], (shown["focus"], shown["selected"])
        screenshot(fresh2, "share-link-focus")


def test_new_session_and_import_show_up_at_once(demo_db, tmp_path):
    from storage import connect
    from storage.export_options import export_session_with_options

    db = connect(demo_db)
    exported = export_session_with_options(db, "demo", tmp_path / "demo-export.sqlite", without=["tokens"])
    db.close()
    with streamlit_server(demo_db) as url, browser() as b:
        page = b.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/?session=demo")
        wait_for_app(page)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("New session").click()
        page.locator("[data-testid='stPopoverBody'] input").first.fill("fresh start")
        page.locator("[data-testid='stPopoverBody']").get_by_role("button", name="Create").click()
        wait_for_app(page)
        assert sidebar_session(page) == "fresh start"
        assert page.get_by_text("Corpora of session “fresh start”").count() == 1
        screenshot(page, "new-session")

        page.goto(f"{url}/sessions?session=demo")
        wait_for_app(page)
        page.get_by_text("Import a session").click()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(exported))
        page.get_by_role("button", name="Import", exact=True).wait_for()
        page.get_by_role("button", name="Import", exact=True).click()
        page.locator("[data-testid='stAlertContentSuccess']").first.wait_for(timeout=120_000)  # checked, verified
        wait_for_app(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert sidebar_session(page) == "demo (2)"
        success = page.locator("[data-testid='stAlertContentSuccess']").first.inner_text()
        assert "as session 'demo (2)'" in success and "#1 → #3, #2 → #4" in success
        table = page.locator("[data-testid='stDataFrame']").first
        table.wait_for()
        assert page.locator("h3").filter(has_text="“demo (2)”").count() == 1
        screenshot(page, "import-done")


def test_upload_takes_the_first_file_and_drops_its_error_when_removed(demo_db, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("text,label\nhello world,a\nsecond document,b\n")
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    with streamlit_server(demo_db) as url, browser() as b:
        page = b.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/?session=demo", wait_until="commit")
        drop = page.locator("[data-testid='stFileUploaderDropzoneInput']")
        drop.wait_for(state="attached", timeout=60_000)
        drop.set_input_files(str(good))                       # as soon as the uploader exists
        page.get_by_text("2 rows · 2 columns").wait_for(timeout=60_000)
        remove = page.locator("[data-testid='stFileChipDeleteBtn']").first
        remove.click()
        wait_for_app(page)
        drop.set_input_files(str(bad))
        error = page.locator("[data-testid='stAlertContentError']")
        error.first.wait_for(timeout=60_000)
        remove.click()
        error.first.wait_for(state="detached", timeout=10_000)
        wait_for_app(page)
        assert error.count() == 0 and page.get_by_text("2 rows").count() == 0
        assert page.locator("[data-testid='stException']").count() == 0


def test_report_opens_offline_with_the_map_and_the_tables(demo_db, tmp_path):
    """The report's map is the app's WebGL map, drawn from the base64 payloads inlined in the page: with every
    request that leaves the file blocked, it draws every document of the corpus and shows its legend."""
    from embedlab.report import write_report
    from storage import connect
    from storage.corpora import find_corpus
    from storage.sessions import ensure_session

    db = connect(demo_db)
    out = write_report(db, "demo", tmp_path / "report.html")
    corpus = find_corpus(db, ensure_session(db, "demo"), "clinc150-sample")
    db.close()
    key = f"report-{corpus.id}-tfidf-svd"
    blocked: list[str] = []

    def only_files(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with browser() as b:
        context = b.new_context(viewport=VIEWPORT)
        context.route("**/*", only_files)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        drawn = wait_for_map(page, key, points=N_SAMPLE, timeout_ms=60_000)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        maps = maps_state(page)
        legend = page.evaluate("""(key) => { const host = window.__embedlabMaps[key].canvas
            .closest('.embedlab-map-host'); return Array.from(host.querySelectorAll('.embedlab-legend-item'))
            .map(item => item.textContent); }""", key)
        layer = map_layer(page, key)
        n_plots = page.locator(".js-plotly-plot").count()
        metric_tables = page.locator("table.metrics").count()
        neighbour_rows = page.locator("table.neighbours tbody tr").count()
        screenshot(page, "report-offline")
    assert blocked == [], f"the report asked the network for {blocked[:3]}"
    assert errors == []
    assert drawn["points"] == N_SAMPLE and drawn["layers"] >= 1        # every document of the map, coloured
    assert [m["key"] for m in maps if m["kind"] == "webgl"] == [key]  # the one map, WebGL
    assert legend and legend == [label for label, _ in layer["legend"]]   # its legend, as the layer names it
    assert n_plots == 2 + 1                   # Plotly draws the two retrieval trade-offs and the ROC curves
    assert metric_tables == 2 and neighbour_rows == 5
