"""Real-browser test of the Atlas's evaluation views (issue 14): retrieval on the map, failure regions, how
compression moves neighbours, why a document is OOD, and the space diagnostics. Each tab opens in headless Chromium
with a focused document, draws its map, shows its numbers and no traceback; a screenshot of each is kept."""
from __future__ import annotations

import pytest

from tests.browser_support import (SCREENSHOTS, browser, map_layer, require_chromium, streamlit_server, wait_for_app,
                                  wait_for_map)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_DOCS = 600
TOPICS = {"sport": "match team goal player season coach league score",
          "money": "bank market stock price trade profit loan bond",
          "space": "rocket orbit nasa launch planet moon comet probe"}


@pytest.fixture(scope="module")
def evaluation_db(tmp_path_factory):
    """Session "s", corpus "news" (600 short documents of 3 topics), tfidf-svd with a 2-D PCA map, a retrieval run
    with queries from the labels (bm25, dense, binary-rescore) and an OOD run with "space" held out as OOD."""
    require_chromium()
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from storage import connect
    from tests.builders import stored_corpus

    path = tmp_path_factory.mktemp("browser-evaluation") / "evaluation.sqlite"
    db = connect(path)
    texts, labels = [], []
    for i in range(N_DOCS):
        label = list(TOPICS)[i % 3]
        w = TOPICS[label].split()
        other = TOPICS[list(TOPICS)[(i + 1) % 3]].split()
        texts.append(f"{w[i % 8]} {w[(i + 3) % 8]} {w[(i * 7 + 2) % 8]} {other[i % 8]} note {i} on {label}")
        labels.append(label)
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(N_DOCS)])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2},
            session_id=sid)
    run_job(db, "retrieval", {"session_id": sid, "source": "labels", "corpus_id": info.id, "n_queries": 40,
                              "seed": 0, "max_relevant": 30, "model": "tfidf-svd",
                              "methods": ["bm25", "dense", "binary-rescore"]}, session_id=sid)
    run_job(db, "ood", {"session_id": sid, "id_corpus_id": info.id, "model": "tfidf-svd", "ood_labels": ["space"],
                        "test": "holdout"}, session_id=sid)
    db.close()
    return path


def _no_exception(page, where: str) -> None:
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, f"traceback {where}: {errors.first.inner_text()[:800]}"


def _open_tab(page, name: str):
    page.get_by_role("tab", name=name).click()
    wait_for_app(page)
    page.wait_for_timeout(800)
    panel = page.locator("[role='tabpanel']:visible")
    return panel


# (tab, texts that show the view drew its content for the focused document, its map's key, screenshot name)
VIEWS = [
    ("🎯 Retrieval", ("nDCG@10 · bm25", "Top 10 per method"), "atlas_rmap_map", "atlas-eval-retrieval-on-the-map"),
    ("🗺️ Failure regions", ("Queries counted", "Worst clusters first"), "atlas_fail_map", "atlas-eval-failure-regions"),
    ("🗜️ Compression", ("The focused document", "overlap@10 with exact dense", "Across the corpus"),
     "atlas_comp_map", "atlas-eval-compression"),
    ("🚨 Why OOD", ("ID flagged (FPR)", "Why is this OOD?", "Every detector of the run"), "atlas_oodx_map",
     "atlas-eval-why-ood"),
    ("🩺 Diagnostics", ("RankMe", "Hubs of tfidf-svd"), "atlas_diag_map", "atlas-eval-diagnostics"),
]


def test_every_evaluation_view_opens_with_its_numbers_and_no_traceback(evaluation_db):
    # document 2 is a "space" document: tested as OOD by the run, a neighbour list for compression
    with streamlit_server(evaluation_db) as url, browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 2400})   # tall: a tab's whole view is on screen
        page.goto(f"{url}/atlas?session=s&corpus=news&model=tfidf-svd&focus=2")
        wait_for_app(page)
        wait_for_map(page, "atlas_map", points=N_DOCS)
        _no_exception(page, "on opening the Atlas")
        for tab, markers, key, shot in VIEWS:
            panel = _open_tab(page, tab)
            for marker in markers:
                panel.get_by_text(marker).first.wait_for(timeout=120_000)
            wait_for_map(page, key, points=N_DOCS)               # the view's own map, on screen, every document
            assert panel.locator("canvas.embedlab-map-canvas").count() == 1, f"{tab}: its map is not in its tab"
            assert map_layer(page, key)["legend"], f"{tab}: the map has no legend"
            _no_exception(page, f"in {tab}")
            SCREENSHOTS.mkdir(exist_ok=True)
            panel.screenshot(path=str(SCREENSHOTS / f"{shot}.png"))
        # a row of a view's table focuses its document (here: the top hub, the lowest row among the largest N_10)
        from embedlab.diagnostics import hub_order, k_occurrence
        from embedlab.embedding.cache import find_embedding
        from storage import connect
        from storage.corpora import list_corpora
        from storage.matrices import load_matrix

        db = connect(evaluation_db)
        info = list_corpora(db, db.execute("SELECT id FROM sessions WHERE name = 's'").fetchone()[0])[0]
        top_hub = int(hub_order(k_occurrence(load_matrix(db, find_embedding(db, info.content_hash, "tfidf-svd").id)))[0])
        db.close()
        assert top_hub != 2
        hubs = panel.locator("[data-testid='stDataFrame']").last
        hubs.scroll_into_view_if_needed()
        box = hubs.bounding_box()
        page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)       # the first row's selection cell
        page.wait_for_function(f"() => location.search.includes('focus={top_hub}&')", timeout=60_000)
        wait_for_app(page)
        _no_exception(page, "after picking a hub")
        page.wait_for_function("(hub) => window.__embedlabMaps.atlas_map.layer.header.focus === hub", arg=top_hub,
                               timeout=60_000)                                 # the main map shows the new focus
