"""Real-browser test of issue 21's "the URL owns the view": every change of the Atlas's view is an entry of the
browser's history, Back and Forward put the previous view back on screen (corpus, colour, tab; not only the
address), and a value that does not exist for the corpus falls back visibly (a toast), never silently."""
from __future__ import annotations

import urllib.parse

import pytest

from tests.browser_support import (browser, choose, map_layer, require_chromium, screenshot, streamlit_server,
                                  wait_for_app, wait_for_map)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_DOCS = 300
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def history_db(tmp_path_factory):
    """Session "s": corpus "news" (3 labels) and corpus "plain" (no labels), each with its tfidf-svd embedding and
    a 2-D PCA map."""
    require_chromium()
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from storage import connect
    from tests.builders import stored_corpus

    path = tmp_path_factory.mktemp("browser-history") / "history.sqlite"
    db = connect(path)
    topics = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
              "space": "rocket orbit nasa launch planet moon"}
    for name, with_labels in (("news", True), ("plain", False)):
        texts, labels = [], []
        for i in range(N_DOCS):
            label = list(topics)[i % 3]
            w = topics[label].split()
            texts.append(f"{name} {w[i % 6]} {w[(i + 1) % 6]} {w[(i * 7 + 2) % 6]} story {i} " + "more " * (i % 9))
            labels.append(label)
        sid, info = stored_corpus(db, texts, labels if with_labels else None, name=name,
                                  doc_ids=[f"{name}{i}" for i in range(N_DOCS)])
        compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
        run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2},
                session_id=sid)
    db.close()
    return path


def _input(page, label: str):
    box = page.locator("[data-testid='stSelectbox']").filter(has=page.get_by_text(label, exact=True))
    return box.locator("input")


def _query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query).items()}


def _shows(page, *, corpus: str, colour: str, tab: str) -> None:
    """Wait until the Atlas shows this view, in its widgets and in the address bar."""
    from playwright.sync_api import expect

    expect(_input(page, "Corpus")).to_have_value(corpus, timeout=WAIT_MS)
    expect(_input(page, "Colour by")).to_have_value(colour, timeout=WAIT_MS)
    expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
    page.wait_for_function("([c, k]) => { const q = new URLSearchParams(location.search);"
                           " return q.get('corpus') === c && q.get('colour') === k; }", arg=[corpus, colour],
                           timeout=WAIT_MS)
    wait_for_app(page)
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()[:500]


def test_back_and_forward_restore_the_atlas_view_and_a_missing_colour_falls_back_visibly(history_db):
    with streamlit_server(history_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/atlas?session=s&corpus=news&colour=label")
        wait_for_app(page)
        wait_for_map(page, "atlas_map", points=N_DOCS, timeout_ms=WAIT_MS)
        _shows(page, corpus="news", colour="label", tab="🔎 Search hits")
        first_map = wait_for_map(page, "atlas_map", points=N_DOCS)["revision"]

        # another corpus: it has no labels, so "label" gives way to "cluster", and a toast says so
        assert choose(page, "Corpus", "plain")
        _shows(page, corpus="plain", colour="cluster", tab="🔎 Search hits")
        toast = page.locator("[data-testid='stToast']").filter(has_text="has no colour")
        toast.first.wait_for(timeout=WAIT_MS)
        assert "“label”" in toast.first.inner_text() and "“cluster”" in toast.first.inner_text()
        screenshot(page, "history-colour-falls-back")
        assert _query(page)["colour"] == "cluster" and "focus" not in _query(page)
        page.wait_for_function("(first) => window.__embedlabMaps.atlas_map.revision !== first", arg=first_map,
                               timeout=WAIT_MS)                                 # the map is the other corpus's
        wait_for_map(page, "atlas_map", points=N_DOCS, timeout_ms=WAIT_MS)

        assert choose(page, "Colour by", "length (characters)")
        _shows(page, corpus="plain", colour="length (characters)", tab="🔎 Search hits")
        page.get_by_role("tab", name="🧩 Clusters").click()
        page.wait_for_function("() => new URLSearchParams(location.search).get('tab') === 'Clusters'",
                               timeout=WAIT_MS)
        _shows(page, corpus="plain", colour="length (characters)", tab="🧩 Clusters")

        # Back, step by step: each previous view is on screen again, not only in the address bar
        page.go_back()
        _shows(page, corpus="plain", colour="length (characters)", tab="🔎 Search hits")
        page.go_back()
        _shows(page, corpus="plain", colour="cluster", tab="🔎 Search hits")
        page.go_back()
        _shows(page, corpus="news", colour="label", tab="🔎 Search hits")
        screenshot(page, "history-back-to-the-first-view")
        news = wait_for_map(page, "atlas_map", points=N_DOCS, timeout_ms=WAIT_MS)["revision"]
        page.wait_for_function("() => window.__embedlabMaps.atlas_map.layer.header.title === 'label'",
                               timeout=WAIT_MS)
        legend = [name for name, _ in map_layer(page, "atlas_map")["legend"]]
        assert {"sport", "money", "space"} <= set(legend), legend      # coloured by label again
        assert news == first_map, "the map on screen is not the first corpus's"

        # Forward
        page.go_forward()
        _shows(page, corpus="plain", colour="cluster", tab="🔎 Search hits")
        page.go_forward()
        _shows(page, corpus="plain", colour="length (characters)", tab="🔎 Search hits")
        page.go_forward()
        _shows(page, corpus="plain", colour="length (characters)", tab="🧩 Clusters")
