"""Judging in Chromium: a focused document's neighbours judged by click and by keyboard (Streamlit's button
shortcuts: J moves the cursor, 2/1/0 grade), then two semantic-search hits (a click hands the keyboard to the hits),
the grades stored under the judge's name from the URL, and still shown after a reload; a new tab of the same browser
judges under the same name (local storage)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from embedlab.judgments import Query
from storage import connect
from storage.judgments import load_judgments
from tests.browser_support import require_chromium, streamlit_server, wait_for_app
from tests.builders import stored_corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TOPICS = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
          "space": "rocket orbit nasa launch planet moon"}
FOCUS = 0


def build(path: Path) -> None:
    """Session "s": a 60-document corpus "news", its tfidf-svd embedding and a 2-D PCA map."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job

    db = connect(path)
    texts = [f"{w.split()[i % 6]} {w.split()[(i + 1) % 6]} story {i} about {label}"
             for label, w in TOPICS.items() for i in range(20)]
    sid, info = stored_corpus(db, texts, [label for label in TOPICS for _ in range(20)], name="news")
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    run_job(db, "project", {"corpus_id": info.id, "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "seed": 42,
                            "model": "tfidf-svd", "n_components": 2}, session_id=sid)
    db.close()


def stored(path: Path) -> dict[tuple[str, int, str], int]:
    db = connect(path)
    try:
        return {(r.query.key, r.doc_idx, r.judge): r.grade for r in load_judgments(db, 1)}
    finally:
        db.close()


def card_docs(page) -> list[int]:
    """The neighbour cards' documents, in the order shown."""
    classes = page.eval_on_selector_all(f"[class*='st-key-atlas-nb-{FOCUS}-card-']", "els => els.map(e => e.className)")
    return [int(re.search(rf"st-key-atlas-nb-{FOCUS}-card-(\d+)", c).group(1)) for c in classes]


def hit_docs(page) -> list[int]:
    """The search hits' documents, in the order listed."""
    classes = page.eval_on_selector_all("[class*='st-key-atlas-hits-']", "els => els.map(e => e.className)")
    rows = [re.search(r"st-key-atlas-hits-(\d+)-(\d+)(?:\s|$)", c) for c in classes]
    return [int(m.group(2)) for m in sorted((m for m in rows if m), key=lambda m: int(m.group(1)))]


def chosen(doc: int, grade: int) -> str:
    """The selector of document `doc`'s grade button drawn as chosen (primary)."""
    return f".st-key-atlas-nb-{FOCUS}-judge-{doc}-g{grade} [data-testid='stBaseButton-primary']:visible"


def hit_chosen(n: int, doc: int, grade: int) -> str:
    """The selector of the `n`-th hit's grade button drawn as chosen."""
    return f".st-key-atlas-hits-{n}-{doc}-g{grade} [data-testid='stBaseButton-primary']:visible"


def test_neighbours_judged_by_click_and_keyboard_are_kept_after_a_reload(tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

    db = tmp_path / "judged.sqlite"
    build(db)
    with streamlit_server(db) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            page = context.new_page()
            page.goto(f"{url}/atlas?session=s&corpus=news&focus={FOCUS}&judge=ann")
            page.wait_for_selector(f"[class*='st-key-atlas-nb-{FOCUS}-card-']", timeout=120_000)
            wait_for_app(page)
            docs = card_docs(page)
            assert len(docs) == 10
            # by click: the first neighbour relevant, the second not relevant
            for doc, grade in ((docs[0], 2), (docs[1], 0)):
                page.locator(f".st-key-atlas-nb-{FOCUS}-judge-{doc}-g{grade} button:visible").click()
                page.wait_for_selector(chosen(doc, grade), timeout=60_000)
                wait_for_app(page)
            # by keyboard: the cursor is on the card clicked last; J moves to the third, 1 grades it partly
            page.keyboard.press("j")
            page.wait_for_function("""() => { const bar = document.querySelector('.st-key-atlas-nb-keys');
                return bar && bar.innerText.includes('Neighbour 3 of 10'); }""", timeout=60_000)
            wait_for_app(page)
            page.keyboard.press("1")
            page.wait_for_selector(chosen(docs[2], 1), timeout=60_000)
            wait_for_app(page)
            q = Query.document(FOCUS).key
            want = {(q, docs[0], "ann"): 2, (q, docs[1], "ann"): 0, (q, docs[2], "ann"): 1}
            assert stored(db) == want
            # two search hits (semantic, the default): the first by click (the hits take the keyboard), J then 0 for the second
            box = page.locator(".st-key-atlas_query input")
            box.fill("rocket orbit")
            box.press("Enter")
            page.get_by_role("tab", name="🔎 Search hits").click()
            page.wait_for_selector("[class*='st-key-atlas-hits-0-']", timeout=60_000)
            wait_for_app(page)
            hits = hit_docs(page)
            assert len(hits) >= 3
            page.locator(f".st-key-atlas-hits-0-{hits[0]}-g2 button:visible").click()
            page.wait_for_selector(hit_chosen(0, hits[0], 2), timeout=60_000)
            wait_for_app(page)
            page.evaluate("() => document.activeElement && document.activeElement.blur()")   # keys to the page
            page.keyboard.press("j")
            page.wait_for_function("""() => { const bar = document.querySelector('.st-key-atlas-hits-keys');
                return bar && bar.innerText.includes('Hit 2 of'); }""", timeout=60_000)
            wait_for_app(page)
            page.keyboard.press("0")
            page.wait_for_selector(hit_chosen(1, hits[1], 0), timeout=60_000)
            wait_for_app(page)
            typed = Query.typed("rocket orbit").key
            want |= {(typed, hits[0], "ann"): 2, (typed, hits[1], "ann"): 0}
            assert stored(db) == want
            # a reload: the grades are drawn again from the database, the judge's name from the URL
            page.reload()
            page.wait_for_selector(chosen(docs[2], 1), timeout=120_000)
            for doc, grade in ((docs[0], 2), (docs[1], 0)):
                assert page.locator(chosen(doc, grade)).count() == 1
            assert page.locator(".st-key-judge_input input").input_value() == "ann"
            assert stored(db) == want
            # a new tab of the same browser, without ?judge=: the name comes back from the browser's local storage
            tab = context.new_page()
            tab.goto(f"{url}/atlas?session=s&corpus=news&focus={FOCUS}")
            tab.wait_for_selector(chosen(docs[2], 1), timeout=120_000)
            assert tab.locator(".st-key-judge_input input").input_value() == "ann"
            assert "judge=ann" in tab.url
        finally:
            browser.close()
