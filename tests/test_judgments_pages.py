"""Judging in the app (AppTest): neighbours of a focused document and search hits judged by click and by keyboard
(the bar's shortcut buttons), kept across a reload (a fresh AppTest on the same database); a judgment without a judge
name asks for one first; the judge's name travels in the URL; two judges' Cohen's kappa as the Judgments tab shows it,
checked against the formula worked by hand; "My judgments" in the Retrieval lab shows the engine's numbers."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from components.judge_buttons import CURSOR_BADGE
from components.share_link import ShareState, build_link, parse_link, to_query
from embedlab.judgments import Query
from embedlab.text_display import display_text
from embedlab.workspace import Workspace
from storage import connect
from storage.judgments import load_judgments
from tests.builders import APP, stored_corpus, use_copy_of
from tests.map_support import maps, ringed

ATLAS, RETRIEVAL = "pages/atlas.py", "pages/retrieval.py"
TOPICS = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
          "space": "rocket orbit nasa launch planet moon"}


@pytest.fixture(scope="module")
def judged_db(tmp_path_factory) -> Path:
    """Session "s": a 60-document corpus "news" (three topics), its tfidf-svd embedding and a 2-D PCA map (built
    once, copied per test)."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job

    path = tmp_path_factory.mktemp("judged") / "template.sqlite"
    db = connect(path)
    texts, labels = [], []
    for label, words in TOPICS.items():
        w = words.split()
        for i in range(20):
            texts.append(f"{w[i % 6]} {w[(i + 1) % 6]} {w[(i + 2) % 6]} story {i} about {label}")
            labels.append(label)
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(len(texts))])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    run_job(db, "project", {"corpus_id": info.id, "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "seed": 42,
                            "model": "tfidf-svd", "n_components": 2}, session_id=sid)
    db.close()
    return path


@pytest.fixture
def app_db(judged_db, tmp_path, monkeypatch) -> Path:
    return use_copy_of(judged_db, tmp_path, monkeypatch)


def open_app(page: str, *, judge: str | None = "ann"):
    """app.py under AppTest on session "s" (with `?judge=` when given), switched to `page`."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["session"] = "s"
    if judge:
        at.query_params["judge"] = judge
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def atlas(state: dict | None = None, *, judge: str | None = "ann"):
    """The Atlas of session "s" (with `?judge=` when given), then `state` put into the session."""
    at = open_app(ATLAS, judge=judge)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def stored(path: Path) -> dict[tuple[str, int, str], int]:
    """{(query key, document, judge): grade} of everything stored."""
    db = connect(path)
    try:
        sid = db.execute("SELECT id FROM sessions WHERE name = 's'").fetchone()[0]
        return {(r.query.key, r.doc_idx, r.judge): r.grade for r in load_judgments(db, sid)}
    finally:
        db.close()


def card_docs(at) -> list[int]:
    """The neighbour cards' documents, in the order listed."""
    lines = [m.value for m in at.markdown if re.match(r"\*\*\d+\.\*\* cosine", m.value)]
    return [int(re.search(r"#(\d+)$", line).group(1)) for line in lines]


def cursor_doc(at) -> int | None:
    """The document of the card (or row) that carries the keyboard cursor's badge: the last "#n" head before it."""
    last = None
    for m in at.markdown:
        found = re.search(r"#(\d+)", m.value)
        if CURSOR_BADGE in m.value:
            return last
        if found and re.match(r"\*\*\d+\.\*\*", m.value):
            last = int(found.group(1))
    return None


def primary_grades(at, prefix: str) -> dict[int, int]:
    """{document: grade} whose grade button (key `{prefix}{doc}-g{grade}`) is drawn as chosen (primary)."""
    out = {}
    for b in at.button:
        m = re.fullmatch(re.escape(prefix) + r"(\d+)-g(\d)", b.key or "")
        if m and b.proto.type == "primary":
            out[int(m.group(1))] = int(m.group(2))
    return out


# --- the neighbour panel -------------------------------------------------------------------------------------------


def test_neighbours_judged_by_click_and_by_keyboard_are_kept_across_a_reload(app_db):
    at = atlas({"atlas_focus": 0})
    docs = card_docs(at)
    assert len(docs) == 10
    prefix = "atlas-nb-0-judge-"
    # by click: the first neighbour relevant, the second not relevant
    at.button(key=f"{prefix}{docs[0]}-g2").click().run()
    at.button(key=f"{prefix}{docs[1]}-g0").click().run()
    assert not at.exception, at.exception
    # by keyboard: the bar's buttons carry the shortcuts; its cursor sits on the card clicked last (the second)
    bar = {k: at.button(key=f"atlas-nb-key-{k}") for k in ("next", "prev", "2", "1", "0", "clear")}
    assert {k: b.proto.shortcut for k, b in bar.items()} == {"next": "j", "prev": "k", "2": "2", "1": "1", "0": "0",
                                                            "clear": "x"}
    at.button(key="atlas-nb-key-next").click().run()           # J: the cursor moves to the third neighbour
    at.button(key="atlas-nb-key-1").click().run()              # 1: partly relevant, and the cursor moves on
    assert not at.exception, at.exception
    want = {docs[0]: 2, docs[1]: 0, docs[2]: 1}
    q = Query.document(0).key
    assert stored(app_db) == {(q, d, "ann"): g for d, g in want.items()}
    assert primary_grades(at, prefix) == want
    assert cursor_doc(at) == docs[3]                                   # the cursor is on the fourth card
    # a click on the chosen grade un-marks it
    at.button(key=f"{prefix}{docs[1]}-g0").click().run()
    assert stored(app_db) == {(q, docs[0], "ann"): 2, (q, docs[2], "ann"): 1}
    at.button(key=f"{prefix}{docs[1]}-g0").click().run()
    # a reload: a fresh browser session on the same database shows the grades and who gave them
    again = atlas({"atlas_focus": 0})
    assert primary_grades(again, prefix) == want
    said = [c.value for c in again.caption if c.value.startswith("Judged:")]
    assert sorted(said) == sorted("Judged: " + display_text(f"{mark} (you)")
                                  for mark in ("✓ relevant", "✗ not relevant", "½ partly"))
    other = atlas({"atlas_focus": 0}, judge="bob")                     # another judge sees ann's grades, not as his
    assert primary_grades(other, prefix) == {}
    assert "Judged: " + display_text("✓ relevant (ann)") in [c.value for c in other.caption]


def test_a_judgment_without_a_judge_name_asks_for_one_first(app_db):
    at = atlas({"atlas_focus": 5}, judge=None)
    docs = card_docs(at)
    at.button(key=f"atlas-nb-5-judge-{docs[0]}-g2").click().run()
    assert not at.exception, at.exception
    assert stored(app_db) == {}                                        # nothing stored without a name
    at.text_input(key="judge_dialog_name").input("  carol ")
    at.button(key="FormSubmitter:judge_dialog_form-Judge").click().run()
    assert not at.exception, at.exception
    assert stored(app_db) == {(Query.document(5).key, docs[0], "carol"): 2}
    assert at.session_state["judge_name"] == "carol" and at.query_params["judge"] == "carol"
    assert at.text_input(key="judge_input").value == "carol"           # the sidebar shows the name


def memory_element(at):
    """The sidebar's local-storage element (`components.judge_name`)."""
    return next(e for e in at.get("bidi_component") if e.proto.component_name == "embedlab_judge_memory")


def remembered(at, name: str):
    """Run the app once more as after the browser's local storage answered with `name` (the element's trigger, sent
    with the widget states on screen, as tests/map_support.py does for the map's click)."""
    element = memory_element(at)
    states = element.root.get_widget_states()
    states.widgets.append(WidgetState(id=_make_trigger_id(element.proto.id, "events"),
                                      json_trigger_value=json.dumps([{"event": "remembered", "value": name}])))
    return at._run(states)


def test_a_name_remembered_by_the_browser_becomes_the_judge_unless_one_is_given(app_db):
    at = atlas({"atlas_focus": 5}, judge=None)
    assert json.loads(memory_element(at).proto.json) == {"name": None}      # asks the browser for its name
    remembered(at, "dana")
    assert not at.exception, at.exception
    assert at.session_state["judge_name"] == "dana" and at.query_params["judge"] == "dana"
    assert json.loads(memory_element(at).proto.json) == {"name": "dana"}    # and keeps it there
    at.text_input(key="judge_input").input("eve").run()                     # a name typed wins ...
    remembered(at, "dana")                                                  # ... over the stored one
    assert at.session_state["judge_name"] == "eve" and at.query_params["judge"] == "eve"
    at.text_input(key="judge_input").input("").run()                        # cleared: the browser forgets it
    assert json.loads(memory_element(at).proto.json) == {"name": ""} and "judge" not in at.query_params


def test_the_judge_name_travels_in_the_url_but_not_in_the_link_given_to_others(app_db):
    state = ShareState(session="s", page="atlas", focus=3, judge="ann lee")
    assert to_query(state)["judge"] == "ann lee"
    assert parse_link(build_link("http://x", state))[1] == state
    at = atlas({"atlas_focus": 3}, judge="ann lee")
    assert at.query_params["judge"] == "ann lee" and at.query_params["focus"] == "3"       # the address bar
    (link,) = [c.value for c in at.code if c.value.startswith("http")]                     # the link for others
    assert "focus=3" in link and "judge" not in link


# --- search hits ---------------------------------------------------------------------------------------------------


def hit_docs(at) -> list[int]:
    lines = [m.value for m in at.markdown if re.match(r"\*\*\d+\.\*\* #\d+ · (cosine|bm25)", m.value)]
    return [int(re.search(r"#(\d+)", line).group(1)) for line in lines]


def hit_grades(at) -> dict[int, int]:
    """{document: grade} of the hits whose grade button is drawn as chosen."""
    out = {}
    for b in at.button:
        m = re.fullmatch(r"atlas-hits-\d+-(\d+)-g(\d)", b.key or "")
        if m and b.proto.type == "primary":
            out[int(m.group(1))] = int(m.group(2))
    return out


def test_search_hits_judged_by_click_and_by_keyboard_are_kept_across_a_reload(app_db):
    at = atlas({"atlas_search_mode": "Keyword", "atlas_focus": 2})
    at.text_input(key="atlas_query").input("rocket orbit").run()
    assert not at.exception, at.exception
    hits = hit_docs(at)
    assert len(hits) >= 3 and ringed(maps(at)["atlas_map"])["search hits"][:len(hits)] == hits
    # the neighbour panel has the keyboard; the hits offer to take it
    assert at.button(key="atlas-nb-key-2") and not [b for b in at.button if b.key == "atlas-hits-key-2"]
    at.button(key=f"atlas-hits-0-{hits[0]}-g2").click().run()     # by click: the first hit relevant ...
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "atlas-nb-key-2"]  # ... and the hits list took the keyboard
    at.button(key="atlas-hits-key-next").click().run()               # J
    at.button(key="atlas-hits-key-0").click().run()                  # 0: the second hit not relevant
    assert not at.exception, at.exception
    q = Query.typed("rocket orbit").key
    assert stored(app_db) == {(q, hits[0], "ann"): 2, (q, hits[1], "ann"): 0}
    # the same typed query in the other mode, after a reload: the grades are the query's, whatever the mode
    again = atlas({"atlas_search_mode": "Semantic"})
    again.text_input(key="atlas_query").input("rocket orbit").run()
    marked = hit_grades(again)
    assert marked == {d: g for d, g in {hits[0]: 2, hits[1]: 0}.items() if d in hit_docs(again)}
    assert marked                                                     # the semantic hits include a judged one


# --- two judges ----------------------------------------------------------------------------------------------------


def judge_by_keys(at, grades: list[int]) -> None:
    """Press each grade's key in turn on the neighbour panel's bar (the cursor moves on after each)."""
    for grade in grades:
        at.button(key=f"atlas-nb-key-{grade}").click().run()
        assert not at.exception, at.exception


def kappa_by_hand(a: list[int], b: list[int]) -> float:
    """Cohen's kappa: (observed - expected agreement) / (1 - expected), expected from each judge's grade shares."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(g) / n) * (b.count(g) / n) for g in set(a) | set(b))
    return (observed - expected) / (1 - expected)


def test_two_judges_agreement_is_cohens_kappa_and_lists_their_disagreements(app_db):
    ann, bob = [2, 2, 1, 0, 0, 2], [2, 1, 1, 0, 2, 2]
    at = atlas({"atlas_focus": 0}, judge="ann")
    judge_by_keys(at, ann)
    docs = card_docs(at)
    at = atlas({"atlas_focus": 0}, judge="bob")
    judge_by_keys(at, bob + [1])                                    # bob judges a seventh neighbour too
    at.session_state["atlas_tab"] = "✍️ Judgments"
    at.session_state["atlas_focus"] = 30
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    want = kappa_by_hand(ann, bob)
    assert want == pytest.approx(11 / 23)                           # (4/6 - 13/36) / (1 - 13/36)
    assert metrics["Cohen's kappa"] == f"{want:.3f}"
    assert metrics["Pairs both judged"] == "6" and metrics["Raw agreement"] == f"{4 / 6:.0%}"
    assert at.selectbox(key="atlas_agree_a").value == "bob" and at.selectbox(key="atlas_agree_b").value == "ann"
    listed = [m.value for m in at.markdown if m.value.startswith("Query #0")]
    assert [int(re.search(r"document #(\d+)", line).group(1)) for line in listed] == sorted([docs[1], docs[4]])
    at.button(key="atlas-disagree-open-0").click().run()            # open the query: the focus is its document,
    assert not at.exception, at.exception
    assert at.session_state["atlas_focus"] == 0 and maps(at)["atlas_map"].layer["focus"] == 0
    assert cursor_doc(at) == min(docs[1], docs[4])                  # the keys on the pair they disagree on


# --- what to judge next --------------------------------------------------------------------------------------------


def test_the_pool_offers_unjudged_pairs_where_systems_disagree_and_counts_judged_at_10(app_db):
    from embedlab.judgment_pool import build_pool, rank_systems

    at = atlas({"atlas_tab": "✍️ Judgments"})
    at.radio(key="atlas_pool_src").set_value("typed")
    at.text_area(key="atlas_pool_typed").input("rocket launch\nbank profit")
    at.button(key="FormSubmitter:atlas_pool_form-Pool").click().run()
    assert not at.exception, at.exception
    db = connect(app_db)
    cid = db.execute("SELECT id FROM corpora WHERE name = 'news'").fetchone()[0]
    queries = [Query.typed("rocket launch"), Query.typed("bank profit")]
    pool = build_pool(queries, rank_systems(db, cid, queries, ["bm25", "dense"], ["tfidf-svd"], 10), {}, depth=10)
    db.close()
    listed = [m.value for m in at.markdown if m.value.startswith("Query typed")]
    first = pool.unjudged[:10]
    assert [int(re.search(r"→ \*\*#(\d+)\*\*", line).group(1)) for line in listed] == [c.doc_idx for c in first]
    coverage = next(d.value for d in at.dataframe if "system" in d.value.columns)
    assert coverage["judged@10"].tolist() == [0.0, 0.0]
    # judged in place: the pair leaves the list of unjudged ones and the systems' coverage grows
    at.button(key=f"atlas-pool-0-{first[0].doc_idx}-g2").click().run()
    assert not at.exception, at.exception
    assert stored(app_db) == {(first[0].query.key, first[0].doc_idx, "ann"): 2}
    listed = [m.value for m in at.markdown if m.value.startswith("Query typed")]
    assert int(re.search(r"→ \*\*#(\d+)\*\*", listed[0]).group(1)) == first[1].doc_idx
    coverage = next(d.value for d in at.dataframe if "system" in d.value.columns)
    held = [first[0].ranks[i] <= 10 for i in range(2)]
    assert coverage["judged@10"].tolist() == [0.05 if h else 0.0 for h in held]   # 1 of 10, one of two queries


# --- "My judgments" in the Retrieval lab ---------------------------------------------------------------------------


def judge_some(path: Path) -> tuple[int, int]:
    """ann's and bob's judgments of three document queries and one typed query of corpus "news" (stored through the
    engine, as the Atlas stores them); returns (session id, corpus id)."""
    from embedlab.judgments import record

    db = connect(path)
    sid, cid = db.execute("SELECT session_id, id FROM corpora WHERE name = 'news'").fetchone()
    for q, grades in ((Query.document(0), {1: 2, 2: 2, 25: 0, 3: 1}), (Query.document(21), {22: 2, 40: 0, 23: 1}),
                      (Query.document(45), {46: 2, 47: 2, 5: 0}), (Query.typed("bank stock"), {21: 2, 44: 0})):
        for doc, grade in grades.items():
            record(db, sid, cid, q, doc, grade, "ann")
    record(db, sid, cid, Query.document(45), 48, 1, "bob")
    db.close()
    return sid, cid


def cell_number(cell: str) -> float:
    """The number a metric table's cell shows ("0.6600 ▲† ★" -> 0.66)."""
    return float(str(cell).split()[0])


def test_my_judgments_in_the_lab_show_the_engines_numbers_and_open_on_the_atlas(app_db):
    from embedlab.jobs import list_jobs, wait_for
    from embedlab.retrieval.comparison import compare_methods
    from embedlab.retrieval.params import validate_params

    sid, cid = judge_some(app_db)
    at = open_app(RETRIEVAL, judge="ann")
    at.radio(key="retr_source").set_value("judgments").run()
    assert not at.exception, at.exception
    assert any("4 judged queries with a relevant document" in c.value for c in at.caption)
    at.selectbox(key="retr_model").set_value("tfidf-svd")
    at.button(key="retr_run").click().run()
    assert not at.exception, at.exception
    db = connect(app_db)
    (job,) = list_jobs(db, session_id=sid, kind="retrieval")
    assert job.params["source"] == "judgments" and job.params["corpus_id"] == cid and job.params["judges"] is None
    assert wait_for(db, job.id, timeout=120).status == "done"
    at.run()
    assert not at.exception, at.exception
    engine = compare_methods(db, validate_params(job.params))
    db.close()
    tables = [d.value for d in at.dataframe if "ndcg@10" in d.value.columns]
    assert len(tables) == 2                                       # the run's table and the condensed lists beside
    for table, want in zip(tables, (engine.metrics, engine.condensed)):
        shown = table.set_index("method")
        for method, values in want.items():
            row = shown.loc[method if method != "bm25" else "bm25 (baseline)"]
            for metric in ("ndcg@10", "recall@100", "mrr@10"):
                assert cell_number(row[metric]) == pytest.approx(values[metric], abs=5e-5), (method, metric)
    # the drill-down's two lists are judged in place: one row per document of their top 10s
    drill = [b.key for b in at.button if re.fullmatch(r"retr-judge-\d+-\d+-g2", b.key or "")]
    assert 1 <= len(drill) <= 10
    # the run on the Atlas, its worst query first (lowest mean nDCG@10 of the two methods shown)
    per_query = {m: r.per_query["ndcg@10"] for m, r in engine.results.items()}
    qids = list(per_query["bm25"])
    worst = min(qids, key=lambda q: (per_query["bm25"][q] + per_query["dense"][q], qids.index(q)))
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("retr-worst-"))).click().run()
    assert not at.exception, at.exception
    assert at.session_state["atlas_tab"] == "🎯 Retrieval" and at.session_state["atlas_rmap_order"] == "worst first"
    run_id = at.session_state["atlas_rmap_run"]
    assert at.session_state[f"atlas_rmap_query_{run_id}"] == worst
    assert any(m.value.startswith(f"**Query {worst}** (1 of 4, worst first)") for m in at.markdown)
    # its results are judged in place, for the query as what it is (a document, or the typed text)
    first = next(b for b in at.button if re.fullmatch(r"atlas-rmap-judge-0-\d+-g2", b.key or ""))
    doc = int(first.key.split("-")[-2])
    first.click().run()
    assert not at.exception, at.exception
    query = engine.comparison.document_queries.get(worst)
    query = Query.document(query) if query is not None else Query.typed("bank stock")
    assert stored(app_db)[(query.key, doc, "ann")] == 2


def test_the_sessions_page_counts_judgments_and_offers_them_as_qrels(app_db):
    sid, cid = judge_some(app_db)
    at = open_app("pages/sessions.py")
    table = next(d.value for d in at.dataframe if "judge" in d.value.columns)
    assert table[["corpus", "judge", "judgments", "queries", "relevant"]].values.tolist() == [
        ["news", "ann", 12, 4, 8], ["news", "bob", 1, 1, 1]]
    with Workspace.open(app_db) as ws:
        files = ws.judgment_files(sid, cid)
    assert set(files) == {"qrels.tsv", "queries.jsonl"} and files["qrels.tsv"].count("\n") >= 13
    assert {b.label for b in at.get("download_button")} >= set(files)


def test_a_hostile_judge_name_is_shown_as_text(app_db):
    name = "<img src=x onerror=alert(1)> **bold** [a](javascript:1)"
    at = atlas({"atlas_focus": 0}, judge=name)
    doc = card_docs(at)[0]
    at.button(key=f"atlas-nb-0-judge-{doc}-g2").click().run()
    other = atlas({"atlas_focus": 0, "atlas_tab": "✍️ Judgments"}, judge="bob")
    shown = "Judged: " + display_text(f"✓ relevant ({name})")
    assert shown in [c.value for c in other.caption]
    table = next(d.value for d in other.dataframe if "judge" in d.value.columns)
    assert table["judge"].tolist() == [name]                           # a table cell: plain text
