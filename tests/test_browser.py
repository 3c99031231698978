"""Real-browser tests: Playwright drives Debian's headless chromium against `streamlit run app.py`."""
from __future__ import annotations

import pytest

import embedlab.tasks  # noqa: F401 - registers the job kinds
from embedlab.datasets import load_sample
from embedlab.jobs import run_job
from storage import connect
from storage.corpora import find_corpus
from storage.sessions import ensure_session
from tests.browser_support import (browser, require_chromium, screenshot, streamlit_server, wait_for_app,
                                  wait_for_map)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_SAMPLE = 1100    # documents of the CLINC sample
PAGES = {"corpora": "Corpora", "atlas": "Atlas", "retrieval": "Retrieval", "ood": "OOD", "sessions": "Sessions"}


@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory):
    """A session with the CLINC sample embedded by the TF-IDF baseline and projected with PCA."""
    require_chromium()
    path = tmp_path_factory.mktemp("browser") / "b.sqlite"
    db = connect(path)
    sid = ensure_session(db, "demo")
    corpus = load_sample(db, sid, "clinc150-sample")
    run_job(db, "embed", {"corpus_id": corpus.id, "model": "tfidf-svd"})
    db.close()
    return path


def test_every_page_renders_without_exception(prepared_db):
    with streamlit_server(prepared_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 900})
        for name in ["retrieval", *PAGES]:  # the first visit is a deep link on a fresh server
            page.goto(f"{url}/{name}?session=demo")
            wait_for_app(page)
            assert page.locator("[data-testid='stException']").count() == 0, f"exception on {name}"
            assert page.locator("h1").first.inner_text().strip() == PAGES[name], f"the title of {name}"
            # a deep link on a fresh server still runs app.py: the sidebar's session picker is there
            assert page.locator("[data-testid='stSidebar']").get_by_text("Session", exact=True).count() >= 1, \
                f"{name} ran without app.py"
            screenshot(page, f"page-{name}")


ATLAS_TAB_NAMES = ["🔎 Search hits", "☑️ Selection", "🧩 Clusters", "🔖 Bookmarks", "✍️ Judgments", "📏 Quality",
                   "⚖️ Compare", "🎯 Retrieval", "🗺️ Failure regions", "🗜️ Compression", "🚨 Why OOD",
                   "🩺 Diagnostics"]


def test_every_atlas_tab_and_popover_opens_without_exception(prepared_db):
    """The demo path on the Atlas: with a map on screen, open every tab and every popover in turn; the main map
    (WebGL) holds every document throughout."""
    db = connect(prepared_db)
    corpus = find_corpus(db, ensure_session(db, "demo"), "clinc150-sample")
    run_job(db, "project", {"corpus_id": corpus.id, "model": "tfidf-svd", "method": "pca"})
    db.close()
    with streamlit_server(prepared_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/atlas?session=demo")
        wait_for_app(page)
        wait_for_map(page, "atlas_map", points=N_SAMPLE)
        tabs = page.locator("[role='tab']")
        assert [t.strip() for t in tabs.all_inner_texts()] == ATLAS_TAB_NAMES
        n_tabs = tabs.count()
        opened = set()
        for i in range(n_tabs):
            tabs.nth(i).click()
            wait_for_app(page)
            assert page.locator("[data-testid='stException']").count() == 0, f"exception on tab {i}"
            wait_for_map(page, "atlas_map", points=N_SAMPLE)      # the map survives each tab's rerun
            popovers = page.locator("[data-testid='stPopover'] button")
            for j in range(popovers.count()):
                button = popovers.nth(j)
                if not button.is_visible():
                    continue        # a popover of another tab
                label = button.inner_text()
                button.click()
                wait_for_app(page)
                assert page.locator("[data-testid='stException']").count() == 0, f"exception in popover {label!r}"
                if label not in opened:
                    screenshot(page, f"atlas-popover-{len(opened)}")
                opened.add(label)
                page.keyboard.press("Escape")
        assert len(opened) >= 3, f"popovers opened: {sorted(opened)}"  # map settings, label names, share link
