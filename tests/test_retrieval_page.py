"""The retrieval job (BEIR and label queries) on tiny synthetic data, the metric table's marks, and the Retrieval
page under AppTest with and without a stored run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from embedlab.text_display import display_text

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TOPICS = ["apple banana fruit orchard", "car engine wheel garage", "ocean wave beach surf", "guitar music song chord",
          "planet star orbit telescope", "bread flour oven bakery"]


def write_beir(root: Path, n_docs: int = 30, n_queries: int = 5) -> Path:
    """A BEIR folder: documents cycle through six topics, query j asks for topic j, relevant = that topic's docs."""
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as fh:
        for i in range(n_docs):
            words = TOPICS[i % len(TOPICS)].split()
            fh.write(json.dumps({"_id": f"d{i}", "title": f"note {i}",
                                 "text": " ".join(words[(i + k) % 4] for k in range(6)) + f" item{i}"}) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for j in range(n_queries):
            fh.write(json.dumps({"_id": f"q{j}", "text": " ".join(TOPICS[j].split()[:2])}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{j}\td{i}\t1" for j in range(n_queries) for i in range(n_docs)
                                              if i % len(TOPICS) == j]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def session(db):
    from storage.sessions import ensure_session

    return ensure_session(db, "s")


@pytest.fixture
def beir_dir(tmp_path):
    return write_beir(tmp_path / "beir-tiny")


def run_job_on(db, params):
    from embedlab.jobs import run_job
    from embedlab.retrieval import job  # noqa: F401 - registers the job kind
    from storage.sessions import load_run

    ref = run_job(db, "retrieval", params, session_id=params["session_id"])
    assert ref.startswith("run:")
    return load_run(db, int(ref.split(":")[1]))


def test_beir_job_stores_a_bounded_run(db, session, beir_dir, monkeypatch):
    from embedlab.retrieval import run_details

    monkeypatch.setattr(run_details, "MAX_DETAIL_QUERIES", 3)
    run = run_job_on(db, {"session_id": session, "source": "beir", "beir_dir": str(beir_dir), "model": "tfidf-svd",
                          "methods": ["bm25", "dense"], "baseline": "bm25"})
    assert run["kind"] == "retrieval" and run["session_id"] == session
    assert run["params"]["dataset"] == "tiny" and run["params"]["split"] == "test"
    assert set(run["metrics"]) == {"bm25", "dense"}
    for entry in run["metrics"].values():
        assert set(entry) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100", "ms_per_query",
                              "index_bytes", "build_s"}
        assert 0.0 <= entry["ndcg@10"] <= 1.0 and entry["index_bytes"] > 0
    assert run["metrics"]["bm25"]["ndcg@10"] > 0.9          # the query words are in every relevant document
    d = run["details"]
    assert d["n_docs"] == 30 and d["n_queries"] == 5 and d["n_queries_shown"] == 3
    assert set(d["queries"]) == set(d["qrels"]) == {"q0", "q1", "q2"}
    for m in ("bm25", "dense"):
        assert set(d["per_query"][m]) == {"q0", "q1", "q2"}
        assert all(len(lst) == 10 for lst in d["rankings"][m].values())
    assert set(d["significance"]) == {"dense"} and "ndcg@10" in d["significance"]["dense"]
    shown = {doc for lists in d["rankings"].values() for lst in lists.values() for doc, _ in lst}
    assert set(d["docs"]) == shown and all(len(t) <= 300 for t in d["docs"].values())
    json.dumps(d, allow_nan=False)                          # strict JSON: no NaN p-values
    rows = run_details.ranked_list_rows(d, "bm25", "q0")
    assert rows[0]["relevant"] == "✓" and rows[0]["text"]
    deltas = run_details.disagreements(d, "bm25", "dense")
    assert [abs(x) for _, x in deltas] == sorted((abs(x) for _, x in deltas), reverse=True)


def test_labels_job_leaves_the_query_document_out(db, session):
    corpus = labelled_corpus(db, session)
    run = run_job_on(db, {"session_id": session, "source": "labels", "corpus_id": corpus.id, "n_queries": 6,
                          "seed": 1, "model": "tfidf-svd", "methods": ["bm25", "dense"]})
    d = run["details"]
    assert run["params"]["dataset"] == "small" and run["params"]["baseline"] == "bm25"
    assert d["n_queries"] == 6 and d["n_docs"] == 24
    for qid, judged in d["qrels"].items():
        assert qid not in judged and len(judged) == 7        # the 7 other documents of its label
        for m in ("bm25", "dense"):
            assert qid not in [doc for doc, _ in d["rankings"][m][qid]]
    assert run["metrics"]["bm25"]["ndcg@10"] > 0.9


def test_labels_job_with_a_capped_relevant_set(db, session):
    corpus = labelled_corpus(db, session)
    base = {"session_id": session, "source": "labels", "corpus_id": corpus.id, "n_queries": 6, "seed": 1,
            "model": "tfidf-svd", "methods": ["bm25", "dense"]}
    full = run_job_on(db, base)
    run = run_job_on(db, {**base, "max_relevant": 3})
    d = run["details"]
    assert run["params"]["max_relevant"] == 3 and full["params"]["max_relevant"] is None
    assert set(d["qrels"]) == set(full["details"]["qrels"])
    for qid, judged in d["qrels"].items():
        assert len(judged) == 3 and d["n_relevant"][qid] == 3                  # the cap holds
        assert set(judged) <= set(full["details"]["qrels"][qid])               # a sample of its label
        for m in ("bm25", "dense"):                                             # the rest of the label is unjudged:
            ranked = [doc for doc, _ in d["rankings"][m][qid]]                  # out of the ranking
            assert qid not in ranked
            assert not set(ranked) & (set(full["details"]["qrels"][qid]) - set(judged))
    # every query word is in its label's documents: the label comes first, so the sampled three lead
    assert run["metrics"]["bm25"]["recall@10"] == pytest.approx(1.0)
    assert full["metrics"]["bm25"]["recall@10"] == pytest.approx(1.0)           # 7 per label: all within 10
    assert run["metrics"]["bm25"]["ndcg@10"] > 0.9


def test_bad_params_are_refused_with_a_clear_message(session, beir_dir):
    from embedlab.errors import InputError
    from embedlab.retrieval.params import validate_params

    base = {"session_id": session, "source": "beir", "beir_dir": str(beir_dir), "methods": ["bm25"]}
    with pytest.raises(InputError, match="unknown retrieval method"):
        validate_params({**base, "methods": ["bm99"]})
    with pytest.raises(InputError, match="baseline"):
        validate_params({**base, "baseline": "dense"})
    with pytest.raises(InputError, match="token embeddings"):
        validate_params({**base, "methods": ["maxsim"], "model": "tfidf-svd"})
    with pytest.raises(InputError, match="k1"):
        validate_params({**base, "params": {"bm25": {"k1": "lots"}}})
    assert validate_params({**base, "max_docs": 0})["max_docs"] is None
    labels = {"session_id": session, "source": "labels", "corpus_id": 1, "methods": ["bm25"]}
    assert validate_params(labels)["max_relevant"] is None
    assert validate_params({**labels, "max_relevant": 0})["max_relevant"] is None           # 0: the whole label
    assert validate_params({**labels, "max_relevant": "10"})["max_relevant"] == 10
    with pytest.raises(InputError, match="relevant documents per query"):
        validate_params({**labels, "max_relevant": 2.5})


def test_typed_query_ranks_and_reuses_the_built_index(db, session):
    from embedlab.ingest import load_corpus_bytes
    from embedlab.retrieval import typed_query
    from storage.corpora import save_corpus

    rows = ["text"] + [TOPICS[i % 6] + f" n{i}" for i in range(18)]
    corpus = save_corpus(db, session, load_corpus_bytes("\n".join(rows).encode(), "t.csv", name="t", text_col="text"))
    typed_query.clear_index_cache()
    out = typed_query.rank_typed_query(db, corpus.id, "tfidf-svd", "ocean surf", ["bm25", "dense"], k=3)
    assert set(out) == {"bm25", "dense"} and all(len(v) == 3 for v in out.values())
    for hits in out.values():
        idx, doc_id, score = hits[0]
        assert idx % 6 == 2 and isinstance(doc_id, str)     # an "ocean wave beach surf" document
    assert len(typed_query._INDEXES) == 2
    typed_query.rank_typed_query(db, corpus.id, "tfidf-svd", "guitar", ["bm25"], k=3)
    assert len(typed_query._INDEXES) == 2                             # reused, not rebuilt


def test_metric_table_marks_the_best_of_each_column():
    from components.metric_table import metric_cells
    from embedlab.metric_directions import RETRIEVAL as RETRIEVAL_COLUMNS
    from embedlab.run_tables import best_marks

    metrics = {"bm25": {"ndcg@10": 0.6, "ms_per_query": 2.0, "index_bytes": 100},
               "dense": {"ndcg@10": 0.7, "ms_per_query": 1.0, "index_bytes": 100},
               "hnsw": {"ndcg@10": 0.7, "ms_per_query": 0.5, "index_bytes": 400}}
    marks = best_marks(metrics, RETRIEVAL_COLUMNS)
    assert marks["ndcg@10"] == {"dense", "hnsw"}           # ties share the mark
    assert marks["ms_per_query"] == {"hnsw"} and marks["index_bytes"] == {"bm25", "dense"}
    assert "recall@10" not in marks
    cells = metric_cells(metrics, higher_is_better=RETRIEVAL_COLUMNS, baseline="bm25",
                         significance={"dense": {"ndcg@10": 0.01}, "hnsw": {"ndcg@10": 0.2}})
    assert list(cells.columns) == ["method", "ndcg@10", "ms_per_query", "index_bytes"]
    by = cells.set_index("method")
    assert by.loc["dense", "ndcg@10"] == "0.7000 ▲† ★" and by.loc["hnsw", "ndcg@10"] == "0.7000 ▲ ★"
    assert by.loc["bm25 (baseline)", "ndcg@10"] == "0.6000" and by.loc["hnsw", "ms_per_query"].endswith("★")


# ten methods of a SciFact run (1,000 documents, all-MiniLM-L6-v2): five of them within 0.002 nDCG@10 and 0.04 ms
TEN = {"bm25": (0.7977, 0.108, 867_568), "dense": (0.7963, 0.0744, 1_536_000), "hnsw": (0.7963, 0.0833, 1_684_516),
       "int8-rescore": (0.7963, 0.448, 387_072), "binary-rescore": (0.7963, 0.378, 48_000),
       "matryoshka-128": (0.7535, 0.0551, 512_000), "hybrid-rrf": (0.8205, 0.387, 2_403_568),
       "maxsim": (0.8272, 97.75, 366_056_776), "muvera": (0.8279, 39.02, 407_016_776),
       "invgc": (0.7966, 0.0883, 1_536_000)}


def test_points_on_top_of_each_other_share_one_label():
    from components.metric_table import place_labels

    groups, _ = place_labels(["dense", "hnsw", "invgc", "bm25"], [0.0, 3.0, 40.0, 380.0], [200.0, 201.0, 200.0, 260.0],
                             width=380, height=326)
    assert groups == [[0, 1], [2], [3]]


def boxes_of(fig):
    """Label boxes (pixel space of the assumed plot, y up) of a trade-off figure, from its annotations."""
    from components.metric_table import ASSUMED_PLOT_WIDTH, PLOT_HEIGHT, PLOT_MARGIN, label_size

    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    h_plot = PLOT_HEIGHT - PLOT_MARGIN["t"] - PLOT_MARGIN["b"]
    out = []
    for a in fig.layout.annotations:
        px = (a.x - x0) / (x1 - x0) * ASSUMED_PLOT_WIDTH
        py = (a.y - y0) / (y1 - y0) * h_plot
        if a.showarrow:
            cx, cy = px + a.ax, py - a.ay
        else:
            cx, cy = px + (a.xshift or 0), py + (a.yshift or 0)
        names = re.sub(r"<[^>]+>", "", a.text.replace("<br>", ", ")).replace("● ", "").split(", ")
        w, h = label_size(names)
        out.append((", ".join(names), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), (px, py)))
    return out


@pytest.mark.parametrize("x", ["ms_per_query", "index_bytes"])
def test_ten_crowded_methods_get_labels_that_do_not_overlap(x):
    import math

    from components.metric_table import MARKER_PX, tradeoff_figure

    metrics = {m: {"ndcg@10": q, "ms_per_query": ms, "index_bytes": b} for m, (q, ms, b) in TEN.items()}
    fig = tradeoff_figure(metrics, x=x, baseline="bm25")
    assert [t.name for t in fig.data] == list(TEN)                               # one point (and colour) a method
    assert len({t.marker.color for t in fig.data}) == 10
    boxes = boxes_of(fig)
    named = [n for text, _, _ in boxes for n in text.split(", ")]
    assert sorted(named) == sorted(TEN)                                          # every method is named once
    for i, (_, a, _) in enumerate(boxes):
        for _, b, _ in boxes[i + 1:]:
            overlap = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            assert overlap == 0, (boxes[i][0], a, b)
        for _, _, (px, py) in boxes:                                             # and no label covers a point
            nearest_x = min(max(px, a[0]), a[2])
            nearest_y = min(max(py, a[1]), a[3])
            assert math.hypot(px - nearest_x, py - nearest_y) >= MARKER_PX - 1, (boxes[i][0], px, py)


# --- the page -------------------------------------------------------------------------------------------------------


def open_page(session: str = "s") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["session"] = session
    at.run()
    at.switch_page("pages/retrieval.py")
    at.run()
    return at


def store_run(db, sid: int) -> int:
    from storage.sessions import save_run

    metrics = {"bm25": {"ndcg@10": 0.61, "recall@10": 0.7, "recall@100": 0.9, "mrr@10": 0.55, "map@100": 0.5,
                        "ms_per_query": 0.8, "index_bytes": 12_000, "build_s": 0.1},
               "dense": {"ndcg@10": 0.66, "recall@10": 0.75, "recall@100": 0.95, "mrr@10": 0.6, "map@100": 0.56,
                         "ms_per_query": 0.2, "index_bytes": 48_000, "build_s": 0.0}}
    details = {"dataset": "tiny", "n_docs": 3, "n_queries": 2, "n_queries_shown": 2, "baseline": "bm25",
               "per_query": {"bm25": {"q1": 1.0, "q2": 0.0}, "dense": {"q1": 0.5, "q2": 1.0}},
               "rankings": {"bm25": {"q1": [["a", 3.2], ["b", 1.0]], "q2": [["c", 2.0], ["b", 1.5]]},
                            "dense": {"q1": [["b", 0.9], ["a", 0.8]], "q2": [["b", 0.7], ["c", 0.1]]}},
               "qrels": {"q1": {"a": 1}, "q2": {"b": 1}}, "n_relevant": {"q1": 1, "q2": 1},
               "queries": {"q1": "first <b>query</b>", "q2": "second query"},
               "docs": {"a": "<script>alert(1)</script> doc a", "b": "doc b", "c": "doc c"},
               "significance": {"dense": {"ndcg@10": 0.03, "recall@100": 0.4}}, "warnings": []}
    params = {"session_id": sid, "source": "beir", "beir_dir": "/x/beir-tiny", "split": "test", "model": "tfidf-svd",
              "methods": ["bm25", "dense"], "params": {}, "baseline": "bm25", "dataset": "tiny"}
    return save_run(db, sid, "retrieval", params, metrics, details)


def test_page_renders_for_a_session_without_runs(app_env):
    from storage import connect
    from storage.sessions import ensure_session

    ensure_session(connect(app_env), "s")
    at = open_page()
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Retrieval")
    assert [m.value for m in at.multiselect if m.label == "Methods"] == [["bm25", "dense"]]
    for label in ("BEIR ZIP upload", "Labels of a corpus", "A typed query"):
        at.radio(key="retr_source").set_value(next(k for k, v in
                                                  {"zip": "BEIR ZIP upload", "labels": "Labels of a corpus",
                                                   "typed": "A typed query"}.items() if v == label)).run()
        assert not at.exception, (label, at.exception)


def test_page_shows_table_plots_and_drill_down_of_a_stored_run(app_env):
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(app_env)
    sid = ensure_session(db, "s")
    store_run(db, sid)
    at = open_page()
    assert not at.exception, at.exception
    tables = [df.value for df in at.dataframe]
    metric = next(t for t in tables if "ndcg@10" in t.columns)
    assert list(metric["method"]) == ["bm25 (baseline)", "dense"]
    assert metric.set_index("method").loc["dense", "ndcg@10"] == "0.6600 ▲† ★"
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    lists = [t for t in tables if "relevant" in t.columns]
    assert len(lists) == 2                                      # A and B side by side
    # the query picker lists the biggest disagreement first: q2 (|Δ| = 1.0) before q1 (0.5)
    picker = next(s for s in at.selectbox if s.label == "Query")
    assert [o.split(" ·")[0] for o in picker.options] == ["q2", "q1"]
    a_list, b_list = lists
    assert list(a_list["doc_id"]) == ["c", "b"] and list(a_list["relevant"]) == ["", "✓"]
    assert list(b_list["doc_id"]) == ["b", "c"] and list(b_list["relevant"]) == ["✓", ""]
    picker.set_value("q1").run()
    assert not at.exception, at.exception
    assert any(t.value == "first <b>query</b>" for t in at.text)       # query text shown literally
    texts = {x for df in at.dataframe if "relevant" in df.value.columns for x in df.value["text"]}
    assert "<script>alert(1)</script> doc a" in texts                   # document text shown as data


def labelled_corpus(db, sid: int):
    from embedlab.ingest import load_corpus_bytes
    from storage.corpora import save_corpus

    rows = ["text,label"] + [f"{TOPICS[i % 3]} number{i},{['fruit', 'car', 'sea'][i % 3]}" for i in range(24)]
    return save_corpus(db, sid, load_corpus_bytes("\n".join(rows).encode(), "small.csv", name="small",
                                                  text_col="text", label_col="label"))


def test_run_button_submits_a_job_whose_run_the_page_then_shows(app_env):
    from embedlab.jobs import list_jobs, wait_for
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(app_env)
    sid = ensure_session(db, "s")
    corpus = labelled_corpus(db, sid)
    at = open_page()
    at.radio(key="retr_source").set_value("labels").run()
    at.selectbox(key="retr_model").set_value("tfidf-svd")
    at.number_input(key="retr_nq").set_value(5)
    at.button(key="retr_run").click().run()
    assert not at.exception, at.exception
    (job,) = list_jobs(db, session_id=sid, kind="retrieval")
    assert job.params["corpus_id"] == corpus.id and job.params["methods"] == ["bm25", "dense"]
    assert job.params["n_queries"] == 5 and job.params["model"] == "tfidf-svd" and job.params["dataset"] == "small"
    assert wait_for(db, job.id, timeout=60).status == "done"
    at.run()
    assert not at.exception, at.exception
    assert any("Run #" in m.value and "small" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 2


def test_typed_query_shows_each_methods_ranked_list(app_env):
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(app_env)
    labelled_corpus(db, ensure_session(db, "s"))
    at = open_page()
    at.radio(key="retr_source").set_value("typed").run()
    at.selectbox(key="retr_model").set_value("tfidf-svd").run()
    at.text_input(key="retr_query").input("ocean surf")
    at.button[[b.label for b in at.button].index("Search")].click().run()
    assert not at.exception, at.exception
    lists = [df.value for df in at.dataframe if "score" in df.value.columns and "label" in df.value.columns]
    assert len(lists) == 2 and all(len(t) == 10 for t in lists)
    assert all(t["label"].iloc[0] == "sea" for t in lists)


def test_zip_upload_is_stored_checked_and_explained(app_env, tmp_path):
    import io
    import zipfile

    from storage import connect
    from storage.sessions import ensure_session

    ensure_session(connect(app_env), "s")
    folder = write_beir(tmp_path / "beir-zipped")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in folder.rglob("*"):
            if f.is_file():
                zf.write(f, f"beir-zipped/{f.relative_to(folder)}")
    at = open_page()
    at.radio(key="retr_source").set_value("zip").run()
    assert at.button(key="retr_run").disabled
    at.file_uploader[0].upload("not-a-zip.zip", b"hello", "application/zip").run()
    assert not at.exception and any(display_text("not-a-zip.zip") in e.value and "ZIP" in e.value for e in at.error)
    at.file_uploader[0].upload("my beir.zip", buf.getvalue(), "application/zip").run()
    assert not at.exception, at.exception
    assert not at.error and any("30 documents · 5 judged queries" in c.value for c in at.caption)
    assert not at.button(key="retr_run").disabled
    stored = list((app_env.parent / "uploads").glob("*/*.zip"))
    assert [p.name for p in stored if p.stat().st_size == len(buf.getvalue())] == ["my_beir.zip"]


def store_router_run(db, sid: int) -> int:
    from storage.sessions import save_run

    base = {"recall@10": 0.7, "recall@100": 0.9, "mrr@10": 0.6, "map@100": 0.55, "build_s": 0.1}
    metrics = {"router": {**base, "ndcg@10": 0.70, "ms_per_query": 3.0, "index_bytes": 90_000,
                          "oracle_ndcg@10": 0.78, "routed": {"bm25": 120, "dense": 150, "maxsim": 30}},
               "bm25": {**base, "ndcg@10": 0.66, "ms_per_query": 0.8, "index_bytes": 12_000},
               "dense": {**base, "ndcg@10": 0.68, "ms_per_query": 0.2, "index_bytes": 48_000}}
    details = {"dataset": "tiny", "n_docs": 3, "n_queries": 300, "n_queries_shown": 0, "baseline": "bm25",
               "per_query": {}, "rankings": {}, "qrels": {}, "n_relevant": {}, "queries": {}, "docs": {},
               "significance": {}, "warnings": []}
    params = {"session_id": sid, "source": "beir", "beir_dir": "/x/beir-tiny", "split": "test", "model": "m",
              "methods": ["router", "bm25", "dense"], "params": {"dense": {"normalise": True}}, "baseline": "bm25",
              "dataset": "tiny"}
    return save_run(db, sid, "retrieval", params, metrics, details)


def test_page_shows_how_the_router_routed_against_its_experts_and_the_oracle(app_env):
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(app_env)
    store_router_run(db, ensure_session(db, "s"))
    at = open_page()
    assert not at.exception, at.exception
    assert any(m.value == "##### Routing · router" for m in at.markdown)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 4                                       # two trade-offs, then the router's two
    routed, quality = charts[2]["data"][0], charts[3]["data"][0]
    assert routed["y"] == ["bm25", "dense", "maxsim"] and routed["x"] == [120, 150, 30]
    assert routed["text"] == ["120 (40%)", "150 (50%)", "30 (10%)"]
    assert quality["x"] == ["bm25", "dense", "router", "oracle"]   # maxsim is not in the run: no bar
    assert quality["y"] == [0.66, 0.68, 0.70, 0.78]
    captions = " ".join(c.value for c in at.caption)
    assert "router 0.700 against the best expert in this run, dense 0.680 (+0.020)" in captions
    assert "closes 20% of the gap" in captions                  # (0.70 - 0.68) / (0.78 - 0.68)
    assert "Not in this run, so not drawn: maxsim" in captions
    assert "dense ran in this comparison with changed parameters" in captions
    table = next(df.value for df in at.dataframe if "ndcg@10" in df.value.columns)
    assert "routed" not in table.columns and len(table) == 3


def test_runs_from_labels_say_what_their_numbers_mean(app_env):
    from storage import connect
    from storage.sessions import ensure_session, save_run

    db = connect(app_env)
    sid = ensure_session(db, "s")
    metrics = {"bm25": {"ndcg@10": 0.8, "recall@10": 0.03, "ms_per_query": 1.0, "index_bytes": 10}}
    details = {"n_docs": 1000, "n_queries": 3, "n_relevant": {"a": 249, "b": 249, "c": 249}}
    params = {"source": "labels", "corpus_id": 1, "n_queries": 3, "seed": 0, "dataset": "ag", "baseline": "bm25"}
    save_run(db, sid, "retrieval", params, metrics, details)
    at = open_page()
    assert not at.exception, at.exception
    (note,) = [i.value for i in at.info if "Queries from labels" in i.value]
    assert "249 per query on average" in note and "reach only 0.040" in note and "Relevant per query" in note
    save_run(db, sid, "retrieval", {**params, "max_relevant": 10}, metrics, {**details, "n_relevant": {"a": 10}})
    at = open_page()
    (note,) = [i.value for i in at.info if "Queries from labels" in i.value]
    assert "at most 10 other documents of its label" in note and "unjudged" in note
    assert "Recall@10 is the share of those found before the 10th document of another label" in note


def test_labels_source_offers_a_capped_relevant_set(app_env):
    from embedlab.jobs import list_jobs, wait_for
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(app_env)
    sid = ensure_session(db, "s")
    labelled_corpus(db, sid)
    at = open_page()
    at.radio(key="retr_source").set_value("labels").run()
    at.selectbox(key="retr_model").set_value("tfidf-svd")
    at.number_input(key="retr_max_rel").set_value(3)
    at.button(key="retr_run").click().run()
    assert not at.exception, at.exception
    (job,) = list_jobs(db, session_id=sid, kind="retrieval")
    assert job.params["max_relevant"] == 3
    assert wait_for(db, job.id, timeout=60).status == "done"
