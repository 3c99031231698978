"""The HTML report of a session (embedlab.report, CLI `report`) and the export options (storage.export_options,
CLI `sessions export --without`)."""
from __future__ import annotations

import base64
import re
import sqlite3
from pathlib import Path

import numpy as np

from embedlab.cli import main
from embedlab.scatter_payload import decode_map
from storage.bookmarks import add_bookmarks
from storage.matrices import save_matrix
from storage.sessions import save_run
from tests.builders import stored_corpus

HOSTILE = "<script>alert('x')</script> & <b>bold</b>"
N_DOCS = 40


def small_session(db, name: str = "s") -> tuple[int, object]:
    """A corpus of 40 documents (one hostile text) with an embedding, token embeddings and a 2-D map, two bookmarks,
    a retrieval run and an OOD run."""
    rng = np.random.default_rng(0)
    texts = [HOSTILE if i == 3 else f"document number {i} about topic {i % 4}" for i in range(N_DOCS)]
    labels = [f"topic-{i % 4}" for i in range(N_DOCS)]
    sid, corpus = stored_corpus(db, texts, labels, session=name)
    X = rng.normal(size=(N_DOCS, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    h = corpus.content_hash
    save_matrix(db, X, cache_key=f"emb-{h}", kind="embedding", model="fake", corpus_id=corpus.id, content_hash=h)
    save_matrix(db, rng.normal(size=(N_DOCS * 20, 16)), cache_key=f"tok-{h}", kind="tokens", dtype="float16",
                model="fake", corpus_id=corpus.id, content_hash=h)
    save_matrix(db, (np.arange(N_DOCS + 1) * 20).reshape(-1, 1), cache_key=f"tok-{h}:offsets", kind="token_offsets",
                dtype="int64", model="fake", corpus_id=corpus.id, content_hash=h)
    save_matrix(db, rng.normal(size=(N_DOCS, 2)), cache_key=f"proj-{h}", kind="projection", model="fake",
                params={"method": "pca", "n_components": 2}, corpus_id=corpus.id, content_hash=h)
    add_bookmarks(db, sid, corpus.id, [3], tag="odd", note="see <this>")
    add_bookmarks(db, sid, corpus.id, [10])
    save_run(db, sid, "retrieval", {"source": "labels", "corpus": corpus.name},
             {"bm25": {"ndcg@10": 0.41, "recall@100": 0.7, "ms_per_query": 0.8, "index_bytes": 12_000},
              "dense": {"ndcg@10": 0.52, "recall@100": 0.8, "ms_per_query": 0.3, "index_bytes": 2_560}})
    is_ood = [0] * 20 + [1] * 10
    save_run(db, sid, "ood", {"corpus": corpus.name, "model": "fake"},
             {"knn": {"auroc": 0.9, "fpr95": 0.3, "auroc_ci": [0.85, 0.95]}, "msp": {"auroc": 0.7, "fpr95": 0.6}},
             {"roc": {"knn": {"fpr": [0, 0.1, 1], "tpr": [0, 0.8, 1]}, "msp": {"fpr": [0, 0.4, 1], "tpr": [0, 0.6, 1]}},
              "scores": {"knn": rng.normal(size=30).tolist(), "msp": rng.normal(size=30).tolist()},
              "is_ood": is_ood})
    return sid, corpus


# --------------------------------------------------------------------------------------------- report

def report_maps(text: str) -> list:
    """The WebGL maps of a report, decoded from the base64 payloads the page carries."""
    found = re.findall(r'<script type="application/octet-stream" class="points">([^<]*)</script>'
                       r'<script type="application/octet-stream" class="layer">([^<]*)</script>', text)
    return [decode_map(base64.b64decode(p), base64.b64decode(lay)) for p, lay in found]


def test_report_holds_maps_bookmarks_and_runs_with_the_libraries_inlined_once(db):
    from embedlab.report import build_report

    small_session(db)
    text = build_report(db, "s")
    assert text.count("<script") == text.count("</script>")
    assert len(re.findall(r"plotly\.js v\d", text)) == 1                       # Plotly, inlined once
    assert text.count("var ReglScatterplot=") == 1                             # the WebGL map's library, once
    assert not re.search(r"<script[^>]+src=", text)                            # nothing fetched from anywhere
    assert text.count('class="embedlab-map-host"') == 1                        # the corpus's 2-D map
    assert text.count('class="plotly-graph-div"') == 4                         # 2 trade-off plots, ROC, histogram
    assert "Run #1 · retrieval" in text and "Run #2 · ood" in text
    assert "0.5200 ★" in text and "0.850–0.950" in text
    assert HOSTILE not in text and "see <this>" not in text                   # every session text escaped
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert text.count("<table class='neighbours'>") == 2


def test_report_map_has_every_point_and_its_texts_as_data(db):
    from embedlab.report import build_report

    small_session(db)
    text = build_report(db, "s")
    (shown,) = report_maps(text)
    assert shown.coords.shape == (N_DOCS, 2)
    assert shown.texts[3] == HOSTILE[:90]         # carried as data (base64), set as text by the page, never markup
    assert "<script>alert" not in text
    assert [name for name, _ in shown.layer["legend"]] == [f"topic-{i}" for i in range(4)]   # one per label


def test_report_shows_label_names_in_the_atlas_colours(db):
    from embedlab.map_colours import label_palette
    from embedlab.report import build_report
    from storage.label_names import set_label_names

    _, corpus = small_session(db)
    set_label_names(db, corpus.id, {"topic-1": "Sports & <more>"})
    text = build_report(db, "s")
    assert "Sports & <more>" not in text
    colour = label_palette([f"topic-{i % 4}" for i in range(N_DOCS)])["topic-1"]
    (shown,) = report_maps(text)
    assert ["Sports & <more>", colour] in shown.layer["legend"]
    assert all(shown.colour_of(i) == colour for i in range(1, N_DOCS, 4))


def test_report_of_missing_session_and_folder_output_exit_2_and_write_nothing(db_path, db, tmp_path, capsys):
    small_session(db)
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(db_path), "--session", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no session named 'nope'" in err
    assert not out.exists()
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["report", "--db", str(db_path), "--session", "s", "--out", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err and list(folder.iterdir()) == []
    assert main(["report", "--db", str(db_path), "--session", "s", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left


def test_report_of_an_empty_session_has_no_plotly(db):
    from embedlab.report import build_report
    from storage.sessions import ensure_session

    ensure_session(db, "empty")
    text = build_report(db, "empty")
    assert "plotly" not in text.lower() and "This session has no corpus" in text


# --------------------------------------------------------------------------------------------- export options

def test_export_contents_names_each_kind_with_its_size(db):
    from storage.export_options import export_contents

    small_session(db)
    parts = {p.key: p for p in export_contents(db, "s")}
    assert parts["documents"].items == N_DOCS
    assert parts["embeddings"].bytes == N_DOCS * 16 * 4
    assert parts["tokens"].bytes == N_DOCS * 20 * 16 * 2 + (N_DOCS + 1) * 8 and parts["tokens"].omittable
    assert parts["tokens"].items == 1 and "other" not in parts
    assert parts["projections"].bytes == N_DOCS * 2 * 4 and parts["projections"].omittable
    assert parts["runs"].items == 2 and not parts["embeddings"].omittable


def _kinds(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute("SELECT kind FROM matrices"))


def test_cli_export_without_tokens_and_projections_is_smaller_and_imports(db_path, db, tmp_path, capsys):
    from storage import connect
    from storage.sessions import list_runs
    from embedlab.session_files import import_session_file as import_session

    small_session(db)
    full, slim = tmp_path / "full.sqlite", tmp_path / "slim.sqlite"
    assert main(["sessions", "export", "s", str(full), "--db", str(db_path)]) == 0
    assert "token embeddings" in capsys.readouterr().out
    assert main(["sessions", "export", "s", str(slim), "--db", str(db_path), "--without", "tokens,projections"]) == 0
    assert "(left out)" in capsys.readouterr().out
    assert _kinds(full) == ["embedding", "projection", "token_offsets", "tokens"] and _kinds(slim) == ["embedding"]
    assert slim.stat().st_size < full.stat().st_size
    other = connect(tmp_path / "other.sqlite")
    name = import_session(other, slim)
    assert len(list_runs(other, other.execute("SELECT id FROM sessions WHERE name = ?", [name]).fetchone()[0])) == 2


def test_cli_export_with_an_unknown_part_exits_2_and_writes_nothing(db_path, db, tmp_path, capsys):
    small_session(db)
    out = tmp_path / "x.sqlite"
    assert main(["sessions", "export", "s", str(out), "--db", str(db_path), "--without", "documents"]) == 2
    assert "cannot leave out 'documents'" in capsys.readouterr().err and not out.exists()
    size = db_path.stat().st_size
    assert main(["sessions", "export", "s", str(db_path), "--db", str(db_path), "--force", "--without", "tokens"]) == 2
    assert "that is the database" in capsys.readouterr().err and db_path.stat().st_size == size


def test_export_keeps_run_numbers_and_import_reports_the_new_ones(db, tmp_path):
    from storage import connect
    from storage.export_options import describe_run_numbers, export_session_with_options, imported_run_numbers
    from storage.sessions import ensure_session
    from embedlab.session_files import import_session_file as import_session

    other = ensure_session(db, "other")
    save_run(db, other, "ood", {}, {})                 # run 1 belongs to another session
    small_session(db)                                  # runs 2 and 3
    out = export_session_with_options(db, "s", tmp_path / "s.sqlite")
    with sqlite3.connect(out) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")] == [2, 3]
    target = connect(tmp_path / "t.sqlite")
    first = ensure_session(target, "t")
    for _ in range(4):
        save_run(target, first, "retrieval", {}, {})   # runs 1-4 taken here
    name = import_session(target, out)
    mapping = imported_run_numbers(target, out, name)
    assert mapping == {2: 5, 3: 6}
    assert describe_run_numbers(mapping) == "Runs renumbered (file → here): #2 → #5, #3 → #6."
    assert describe_run_numbers({1: 1}) == ""


def test_export_bytes_is_rebuilt_after_a_change(db_path, db):
    from storage.export_options import export_bytes
    from storage.sessions import session_fingerprint

    sid, corpus = small_session(db)
    before = session_fingerprint(db, "s")
    first = export_bytes(db_path, "s")
    assert export_bytes(db_path, "s") is first                     # unchanged session: the same file
    save_run(db, sid, "retrieval", {"late": True}, {"bm25": {"ndcg@10": 0.1}})
    assert session_fingerprint(db, "s") != before
    second = export_bytes(db_path, "s")
    assert second != first
    path = Path(db_path).with_name("second.sqlite")
    path.write_bytes(second)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
    with_run = session_fingerprint(db, "s")
    add_bookmarks(db, sid, corpus.id, [20])
    assert session_fingerprint(db, "s") != with_run
    with_bookmark = session_fingerprint(db, "s")
    from storage.label_names import set_label_names

    set_label_names(db, corpus.id, {"topic-0": "Zero"})
    assert session_fingerprint(db, "s") != with_bookmark
    assert export_bytes(db_path, "s", without=["tokens"]) != export_bytes(db_path, "s")


# --------------------------------------------------------------------------------------------- one table, page and report

def _report_tables(text: str) -> list[list[list[str]]]:
    """Every metric table of a report as rows of cell texts (header first), bold marks dropped."""
    import html

    tables = []
    for body in re.findall(r"<table class='metrics'>(.*?)</table>", text, flags=re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
        tables.append([[html.unescape(re.sub(r"</?b>", "", c)) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", r)]
                       for r in rows])
    return tables


def test_a_runs_table_in_the_report_is_the_pages_table(db):
    """The report shows a run's table as its page does: the same columns in the same order, recall@k starred, sizes
    at 1,000 bytes a kB (4,200,000 bytes read 4.2 MB on both, not 4.0 MB on one), build_s never starred and never
    printed as 8e-06, the embedding time beside it."""
    from components.metric_table import metric_cells
    from components.ood_plots import results_frame
    from embedlab.report import build_report
    from embedlab.runs import save_run as store_run
    from storage.sessions import ensure_session

    sid = ensure_session(db, "s")
    metrics = {"bm25": {"ndcg@10": 0.41, "recall@100": 0.7, "mrr@10": 0.4, "ms_per_query": 0.8,
                        "index_bytes": 4_200_000, "recall@10": 0.5, "map@100": 0.3, "build_s": 8e-06},
               "dense": {"ndcg@10": 0.52, "recall@100": 0.8, "mrr@10": 0.5, "ms_per_query": 12.5,
                         "index_bytes": 2_560, "recall@10": 0.6, "map@100": 0.35, "build_s": 0.004}}
    significance = {"dense": {"ndcg@10": 0.01, "recall@100": 0.2}}
    store_run(db, sid, "retrieval", {"source": "beir", "dataset": "toy", "model": "m", "methods": ["bm25", "dense"],
                                     "params": {}, "baseline": "bm25"},
              metrics, {"significance": significance, "embed_s": 370.24})
    ood = {"knn": {"auroc": 0.9, "auroc_ci": [0.85, 0.95], "fpr95": 0.3, "fpr95_openood": 0.2, "aupr_in": 0.8,
                   "aupr_out": 0.7},
           "msp": {"auroc": 0.95, "auroc_ci": [0.9, 0.97], "fpr95": 0.4, "fpr95_openood": 0.1, "aupr_in": 0.9,
                   "aupr_out": 0.6}}
    store_run(db, sid, "ood", {"source": "session", "model": "m", "methods": ["knn", "msp"], "params": {},
                               "dataset": "c"}, ood, {})
    text = build_report(db, "s")
    retrieval, ood_table = _report_tables(text)
    page = metric_cells(metrics, significance=significance, baseline="bm25")
    assert retrieval == [list(page.columns), *page.values.tolist()]
    assert retrieval[0] == ["method", "ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100", "ms_per_query",
                            "index_bytes", "build_s"]
    assert retrieval[1] == ["bm25 (baseline)", "0.4100", "0.5000", "0.7000", "0.4000", "0.3000", "0.800 ★",
                            "4.2 MB", "<0.01"]
    assert retrieval[2] == ["dense", "0.5200 ▲† ★", "0.6000 ★", "0.8000 ▲ ★", "0.5000 ★", "0.3500 ★", "12.5",
                            "2.6 kB ★", "<0.01"]
    frame = results_frame(ood)
    assert ood_table == [list(frame.columns), *frame.values.tolist()]
    assert ood_table[1][:3] == ["msp", "0.9500 ★", "0.900–0.970"]
    assert "8e-06" not in text and "370.24" not in text and "took 370.2 s" in text
