"""Trust, round three (issue 20), items 4-6: column guesses that never change the data, degenerate corpora that work
with a stated caveat or refuse in one line (and never print a library's warning), and the limit for one document
checked on the input before it reaches SQLite or memory."""
from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from embedlab.ingest import limits as ingest_limits   # the limits are read from here when used
from embedlab.errors import InputError
from embedlab.ingest import MAX_DOC_BYTES, guess_columns, load_corpus, load_corpus_bytes, read_table
from embedlab.text_display import display_text
from storage.corpora import list_corpora
from storage.sessions import require_session
from tests.builders import open_page
from tests.trust_support import ROOT, cli, db_state, refused

MB = 1024 * 1024


@contextmanager
def no_library_warnings():
    """Record every warning that Python's default filters would print on stderr; fail if there is one."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for hidden in (ImportWarning, DeprecationWarning, PendingDeprecationWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=hidden)   # never printed by default
        yield
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ------------------------------------------------------------------ 4. column guesses

EMPTY_TEXT = {
    # the testers' example: the labels were stored as the documents
    "labels.csv": (b"text,label\n,pos\n,neg\n,pos\n", "'text'"),
    "blank.jsonl": (b'{"text": "", "label": "a"}\n{"text": "  ", "label": "b"}\n', "'text'"),
    "body.tsv": (b"body\tcategory\tid\n\tsports\t1\n \tworld\t2\n", "'body'"),
    "notes.json": (b'[{"content": null, "topic": "x", "_id": "a"}, {"content": "", "topic": "y", "_id": "b"}]',
                   "'content'"),
    # a column named like text that is empty everywhere is refused even though another column holds strings
    "titled.csv": (b"title,text\nFirst title,\nSecond title,\n", "'text'"),
}


@pytest.mark.parametrize("name", EMPTY_TEXT)
def test_a_text_column_empty_in_every_row_is_refused_never_replaced_by_the_labels(tmp_path, capsys, name):
    data, column = EMPTY_TEXT[name]
    src = tmp_path / name
    src.write_bytes(data)
    before = files_in(tmp_path)
    line = refused(capsys, tmp_path / "db.sqlite", "ingest", src, "--session", "s",
                   contains=(name, f"column {column}", "empty in every row"))
    assert "--text-col" in line
    assert files_in(tmp_path) == before                       # no database, no stray file
    with pytest.raises(InputError, match="empty in every row"):   # the Corpora page's guess says the same
        guess_columns(read_table(data, name))


NO_TEXT = {
    "ids_and_labels.csv": b"id,label\nx-1,pos\nx-2,neg\n",
    "only_topic.jsonl": b'{"topic": "a long sentence that looks like text"}\n{"topic": "another one"}\n',
    "numbers.csv": b"doc_id,score\n1,0.5\n2,0.7\n",
}


@pytest.mark.parametrize("name", NO_TEXT)
def test_a_label_or_id_column_is_never_taken_as_the_text(tmp_path, capsys, name):
    src = tmp_path / name
    src.write_bytes(NO_TEXT[name])
    line = refused(capsys, tmp_path / "db.sqlite", "ingest", src, "--session", "s",
                   contains=(name, "no text column", "--text-col"))
    if name != "numbers.csv":
        assert "named like a label or an id, never taken as the text" in line


@pytest.mark.parametrize("data, name, column", [
    (b"text,notes,label\nhello there,,a\nworld at large,  ,b\n", "named.csv", "notes"),
    (b'{"text": "fine", "summary": ""}\n{"text": "also fine", "summary": null}\n', "named.jsonl", "summary"),
    (b"a\tb\nx y\t\nz w\t \n", "named.tsv", "b"),
])
def test_a_named_text_column_empty_in_every_row_is_refused(tmp_path, capsys, data, name, column):
    src = tmp_path / name
    src.write_bytes(data)
    line = refused(capsys, tmp_path / "db.sqlite", "ingest", src, "--session", "s", "--text-col", column,
                   contains=(name, f"column '{column}'", "empty in every row"))
    assert line == f"error: {name}, column '{column}': empty in every row (2 rows): no documents to ingest"


AG_NEWS = (b'"3","Fears for pension","Unions representing workers say they are disappointed."\n'
           b'"4","Race is on","A second team of rocketeers announced a launch date."\n'
           b'"3","Company wins grant","A company founded by a researcher won a grant."\n'
           b'"4","Space race","Another long description of space flight events here."\n')
# (file name, bytes, the expected (text, label, id) columns)
TABLES = [
    ("spaces.jsonl", (b'{"doc_id": "d1", " Label ": "pos", "text": "a fine sentence here"}\n'
                      b'{"doc_id": "d2", " Label ": "neg", "text": "another sentence there"}\n'),
     ("text", " Label ", "doc_id")),
    ("upper.csv", b"ID,LABEL,Review\n1,pos,a great film overall\n2,neg,a dull film sadly\n",
     ("Review", "LABEL", "ID")),
    ("category.csv", b"topic,category,body\nsport,a,the match went well\nnews,b,the vote was close\n",
     ("body", "category", None)),
    ("beir.jsonl", (b'{"_id": "d1", "title": "Short", "text": "a longer text about it"}\n'
                    b'{"_id": "d2", "title": "Other", "text": "another longer text here"}\n'),
     ("title + text", None, "_id")),              # a BEIR corpus is read as BEIR embeds it: title + text
    ("long_ids.csv", (b"id,text\nan-identifier-much-longer-than-the-text-0001,hi there\n"
                      b"an-identifier-much-longer-than-the-text-0002,bye now\n"), ("text", None, "id")),
    ("ag_news.csv", AG_NEWS, ("col3", "col1", None)),
]


@pytest.mark.parametrize("name, data, expected", TABLES, ids=[t[0] for t in TABLES])
def test_the_cli_ingests_the_columns_that_the_page_guesses(tmp_path, capsys, db, name, data, expected):
    src = tmp_path / name
    src.write_bytes(data)
    page = guess_columns(read_table(data, name))           # what the Corpora page preselects
    assert (page.text, page.label, page.id) == expected
    rc, lines, out, _ = cli(capsys, "--db", tmp_path / "embedlab.sqlite", "ingest", src, "--session", "s")
    assert rc == 0 and lines == [], lines
    (info,) = list_corpora(db, require_session(db, "s"))
    assert (info.text_col, info.label_col, info.id_col) == expected
    assert f"text column {expected[0]!r}" in out


def test_the_corpora_page_preselects_the_guessed_columns(app_env, db, session_id):
    at = open_page(session="s")
    for name, data, (text, label, id_) in TABLES:
        at.file_uploader[0].upload(name, data, "text/plain").run()
        assert not at.exception, (name, at.exception)
        shown = {s.label: s.value for s in at.selectbox if s.label in ("Text column", "Label column", "Id column")}
        assert shown == {"Text column": text, "Label column": label or "(none)", "Id column": id_ or "(none)"}, name
    at.file_uploader[0].upload("labels.csv", EMPTY_TEXT["labels.csv"][0], "text/csv").run()
    assert not at.exception
    assert [w.value for w in at.warning] == [display_text(
        "labels.csv, column 'text': empty in every row, so it cannot be the text ('label' is named like a label or "
        "an id, never taken as the text); name the text column (--text-col)")]
    assert list_corpora(db, session_id) == []
    # the user can still pick a column; the empty one is refused on Ingest, naming it
    at.checkbox(key="ingest_then_map").uncheck().run()
    at.button[[b.label for b in at.button].index("Ingest")].click().run()
    assert not at.exception
    assert any("empty in every row" in e.value for e in at.error)
    assert list_corpora(db, session_id) == []


# ------------------------------------------------------------------ 5. degenerate corpora

DEGENERATE = {
    "one": ["a single document about cats"],
    "two": ["cats purr softly", "stocks fell sharply"],
    "identical3": ["the same words again"] * 3,
    "identical50": ["the same words again"] * 50,
    "one_term": ["apple", "the apple", "an apple!", "apple, of course", "apple?"] * 4,
    "share_one_term": ["apple pie", "apple tart", "apple juice", "apple cake"] * 3,
    "tiny_vocabulary": [f"red green {c}" for c in ("blue", "pink", "cyan")] * 10,   # 5 terms < 256 dimensions
}
# what the map's progress says (the CLI prints it on stderr), per corpus
MAP_CAVEAT = {"one": "1 document: nothing to map", "two": "2 documents: nothing to map",
              "identical3": "all 3 documents have the same embedding",
              "identical50": "all 50 documents have the same embedding",
              "one_term": "all 20 documents have the same embedding", "share_one_term": None,
              "tiny_vocabulary": None}


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_corpora_embed_map_and_diagnose_without_a_library_warning(tmp_path, capsys, name):
    texts = DEGENERATE[name]
    src, db = tmp_path / f"{name}.txt", tmp_path / "db.sqlite"
    src.write_text("\n".join(texts) + "\n")
    base = ("--db", db)
    with no_library_warnings():
        assert cli(capsys, *base, "ingest", src, "--session", "s")[0] == 0
        rc, err, out, _ = cli(capsys, *base, "embed", "--session", "s", "--corpus", name, "--model", "tfidf-svd")
        assert rc == 0, err
        assert f"{len(texts)} x " in out
        for method in ("pca", "tsne", "umap"):
            for dims in ("2", "3"):
                rc, err, out, _ = cli(capsys, *base, "project", "--session", "s", "--corpus", name, "--model",
                                      "tfidf-svd", "--method", method, "--dims", dims)
                assert rc == 0, (method, dims, err)
                assert f"{len(texts)} x {dims}" in out
                assert not any("Warning" in line for line in err), err
                if MAP_CAVEAT[name]:
                    assert MAP_CAVEAT[name] in err[-1], err
        if len(texts) < 12:
            return             # too few to diagnose: test_diagnostics_of_too_few_documents_is_one_line
        rc, err, out, _ = cli(capsys, *base, "diagnostics", "--session", "s", "--corpus", name, "--model",
                              "tfidf-svd")
    assert rc == 0 and not any("Warning" in line for line in err), err
    result = json.loads(out)
    assert ("caveat" in result) == name.startswith(("identical", "one_term"))
    if "caveat" in result:
        assert "have the same embedding" in result["caveat"] and result["rankme"] == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("texts", [["one document"], ["two", "documents"], ["same text"] * 11])
def test_diagnostics_of_too_few_documents_is_one_line(tmp_path, capsys, texts):
    src, db = tmp_path / "few.txt", tmp_path / "db.sqlite"
    src.write_text("\n".join(texts) + "\n")
    assert cli(capsys, "--db", db, "ingest", src, "--session", "s")[0] == 0
    refused(capsys, db, "diagnostics", "--session", "s", "--corpus", "few", "--model", "tfidf-svd",
            contains=("diagnostics need at least 12 documents",))


@pytest.mark.slow
@pytest.mark.parametrize("texts", [["the of and", "!!! ...", "a an the", "is it?", ";;"] * 3,
                                   ["the same words again"] * 50])
def test_the_default_model_maps_degenerate_corpora_without_a_library_warning(tmp_path, capsys, texts):
    src, db = tmp_path / "odd.txt", tmp_path / "db.sqlite"
    src.write_text("\n".join(texts) + "\n")
    with no_library_warnings():
        assert cli(capsys, "--db", db, "ingest", src, "--session", "s")[0] == 0
        rc, err, out, _ = cli(capsys, "--db", db, "embed", "--session", "s", "--corpus", "odd", "--map")
        assert rc == 0 and f"{len(texts)} x 2" in out, err
        rc, err, out, _ = cli(capsys, "--db", db, "diagnostics", "--session", "s", "--corpus", "odd")
        assert rc == 0, err
    assert not any("Warning" in line for line in err)
    assert ("caveat" in json.loads(out)) == (len(set(texts)) == 1)


@pytest.mark.parametrize("texts", [["the of and", "!!! ...", "a an the", "is it?", ";;"] * 3,
                                   ["?!", "a b c", "I am"], ["a"]])
def test_tfidf_on_documents_without_a_usable_word_is_refused_in_one_line(tmp_path, capsys, texts):
    src, db = tmp_path / "stop.txt", tmp_path / "db.sqlite"
    src.write_text("\n".join(texts) + "\n")
    assert cli(capsys, "--db", db, "ingest", src, "--session", "s")[0] == 0
    refused(capsys, db, "embed", "--session", "s", "--corpus", "stop", "--model", "tfidf-svd",
            contains=("tfidf-svd cannot be fitted on this corpus", "stop word"))


@pytest.mark.parametrize("texts, dims, caveat", [
    (["a single document about cats"], 1, "1 dimension instead of 256: 1 document with 3 distinct terms allow no"),
    (["the same words again"] * 3, 1, "1 dimension instead of 256"),
    (["apple", "the apple", "apple!"] * 3, 1, "1 distinct term"),           # one term: no SVD at all
    ([f"topic{i % 5} word{i % 5} extra{i % 5}" for i in range(100)], 5, "5 dimensions instead of 256"),
    (["the of", "cats purr", "dogs bark", "..."], 2, "2 documents with no term of the vocabulary"),
])
def test_tfidf_keeps_no_more_dimensions_than_the_rank_and_says_why(texts, dims, caveat):
    from embedlab.embedding.embedders import TfidfSvdEmbedder

    with no_library_warnings():
        embedder = TfidfSvdEmbedder().fit(texts)
        X = embedder.encode(texts)
        queries = embedder.encode(["cats and apples", "nothing known"])
    assert X.shape == (len(texts), dims) and queries.shape == (2, dims) and embedder.dimension() == dims
    assert np.isfinite(X).all() and caveat in embedder.caveat
    assert np.allclose(np.linalg.norm(X, axis=1)[np.abs(X).sum(axis=1) > 0], 1, atol=1e-5)


def test_a_full_rank_corpus_keeps_its_dimensions_and_has_no_caveat():
    from embedlab.embedding.embedders import TfidfSvdEmbedder

    texts = [f"doc {i} " + " ".join(f"w{(i * j) % 97}" for j in range(12)) for i in range(300)]
    embedder = TfidfSvdEmbedder().fit(texts)
    assert embedder.dimension() == 256 and embedder.caveat is None


# Matrices as embeddings can be: run in a child process, whose stderr shows what a user would see (a crash, as
# t-SNE had on all-zero rows, fails the test instead of the test run).
MATRIX_SCRIPT = r"""
import json, sys
import numpy as np
from embedlab.clusters import cluster, keyword_labels
from embedlab.diagnostics import diagnose
from embedlab.map_quality import quality_verdict
from embedlab.projection import knn_overlap, project, trustworthiness_score

rng = np.random.default_rng(0)
zero_some = rng.normal(size=(30, 8)).astype(np.float32); zero_some[:5] = 0
matrices = {
    "all_zero": np.zeros((20, 4), np.float32),
    "identical": np.tile(rng.normal(size=(1, 384)).astype(np.float32), (50, 1)),
    "near_identical": (np.tile(rng.normal(size=(1, 16)), (20, 1)) + 1e-9 * rng.normal(size=(20, 16))).astype(np.float32),
    "one_column": np.ones((12, 1), np.float32),
    "zero_some": zero_some,
    "three_points": np.repeat(rng.normal(size=(3, 8)).astype(np.float32), 10, axis=0),
}
out = {}
for name, X in matrices.items():
    r = out[name] = {"maps": {}}
    for method in ("pca", "tsne", "umap"):
        for dims in (2, 3):
            info = {}
            Y = project(X, method=method, n_components=dims, info=info)
            r["maps"][f"{method}{dims}"] = [bool(np.isfinite(Y).all()), float(np.ptp(Y)), info["caveat"]]
    Y = project(X, method="pca")
    t, o = trustworthiness_score(X, Y), knn_overlap(X, Y)
    r["quality"] = [None if t != t else t, None if o != o else o, quality_verdict(t, o)]
    r["kmeans"] = sorted(set(cluster(X, method="kmeans", n_clusters=10).tolist()))
    r["hdbscan"] = sorted(set(cluster(X, coords=Y).tolist()))
    r["diagnostics"] = json.loads(json.dumps(diagnose(X), allow_nan=False))
out["keywords"] = keyword_labels(["the of", "and the", "a an"] * 20, np.repeat([0, 1, 2], 20))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def matrix_results():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": ""}
    return subprocess.run([sys.executable, "-c", MATRIX_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_degenerate_matrices_print_no_warning_and_never_crash(matrix_results):
    assert matrix_results.returncode == 0, matrix_results.stderr[-2000:]
    assert matrix_results.stderr == ""


@pytest.mark.parametrize("name", ["all_zero", "identical", "near_identical", "one_column"])
def test_one_point_maps_to_the_origin_with_a_caveat_and_one_cluster(matrix_results, name):
    r = json.loads(matrix_results.stdout)[name]
    n = {"all_zero": 20, "identical": 50, "near_identical": 20, "one_column": 12}[name]
    for key, (finite, spread, caveat) in r["maps"].items():
        assert finite and spread == 0.0, key
        assert caveat.startswith(f"all {n} documents have the same embedding"), key
    trust, overlap, verdict = r["quality"]
    assert trust is None and overlap is None and verdict.startswith("Too few distinct documents")
    assert r["kmeans"] == [0] and r["hdbscan"] == [-1]
    assert r["diagnostics"]["caveat"]
    assert r["diagnostics"]["hubness_skew@10"] == r["diagnostics"]["hubness_skew@10"]     # never NaN
    if name == "all_zero":
        assert r["diagnostics"]["rankme"] == 0.0 and "zero vector" in r["diagnostics"]["caveat"]


def test_partly_degenerate_matrices_still_map_and_cluster(matrix_results):
    results = json.loads(matrix_results.stdout)
    three = results["three_points"]
    assert three["kmeans"] == [0, 1, 2]                          # 10 asked, 3 distinct points: 3 clusters
    assert all(finite and spread > 0 and caveat is None for finite, spread, caveat in three["maps"].values())
    zero_some = results["zero_some"]
    assert all(finite and spread > 0 for finite, spread, _ in zero_some["maps"].values())
    assert "5 of 30 documents have a zero vector" in zero_some["diagnostics"]["caveat"]
    assert results["keywords"] == {"0": "", "1": "", "2": ""}        # only stop words: empty labels, no error


def test_constant_k_occurrence_has_zero_skew_without_a_warning():
    from embedlab.diagnostics import hubness_skew

    with no_library_warnings():
        assert hubness_skew(np.full(12, 10)) == 0.0
        assert hubness_skew(np.array([0, 0, 0, 30])) > 1


# ------------------------------------------------------------------ 6. the limit for one document

def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


BIG = b"word " * (2 * MB // 5 + 1)          # 2 MB of text on one line: over a limit lowered to 1 MB
OVER_THE_LIMIT = {
    # file name: (bytes, what the line must also name)
    "one_line.txt": (BIG + b"\n", ("row 1",)),
    "middle.txt": (b"short\r\nshort\r\n" + BIG + b"\r\nshort\r\n", ("row 3",)),
    "packed.txt.gz": (gzip.compress(b"short\n" + BIG + b"\n"), ("row 2",)),
    "field.csv": (b"text,label\nhello,a\n\"" + BIG + b"\",b\n", ("row 2",)),
    "field.tsv": (b"text\tlabel\nhello\ta\n" + BIG + b"\tb\n", ("row 2",)),
    "record.jsonl": (b'{"text": "hello"}\n{"text": "' + BIG + b'"}\n', ("row 2", "column 'text'")),
    "meta.json": (b'[{"text": "hello", "note": "' + BIG + b'"}]', ("row 1", "column 'note'")),
    "label.csv": (b"text,label\nhello there," + BIG.replace(b" ", b"_") + b"\n", ("row 1",)),
    "docs.zip": (_zip({"a.txt": b"fine", "b.txt": BIG}), ("row 2",)),
}


@pytest.mark.parametrize("name", OVER_THE_LIMIT)
def test_a_document_over_the_limit_is_refused_before_anything_is_stored(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr(ingest_limits, "MAX_DOC_BYTES", MB)
    data, where = OVER_THE_LIMIT[name]
    src, db = tmp_path / name, tmp_path / "db.sqlite"
    src.write_bytes(data)
    (tmp_path / "ok.txt").write_text("one\ntwo\n")      # a database holding something: unchanged by the refusal
    assert cli(capsys, "--db", db, "ingest", tmp_path / "ok.txt", "--session", "keep")[0] == 0
    before = files_in(tmp_path)
    line = refused(capsys, db, "ingest", src, "--session", "s", "--max-mb", "50",
                   contains=(name, "over the 1 MB limit", *where))
    assert "database error" not in line and files_in(tmp_path) == before


def test_the_limit_is_inclusive_and_read_from_the_module(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_limits, "MAX_DOC_BYTES", 1000)
    src = tmp_path / "edge.txt"
    src.write_bytes(b"x" * 1000 + b"\n" + "é".encode() * 500 + b"\n")       # 1,000 bytes each: kept
    assert [len(t) for t in load_corpus(src).texts] == [1000, 500]
    src.write_bytes(b"y\n" + "é".encode() * 501 + b"\n")                    # 501 characters, 1,002 bytes
    with pytest.raises(InputError, match=r"edge.txt, row 2: the line is over the 1000 bytes limit"):
        load_corpus(src)
    csv_src = tmp_path / "edge.csv"                     # under the csv module's 1,000 characters, over 1,000 bytes
    csv_src.write_bytes(b"text\n" + "é".encode() * 501 + b"\n")
    with pytest.raises(InputError, match=r"edge.csv, row 1, column 'text': the text is over the 1000 bytes limit"):
        load_corpus(csv_src)
    with pytest.raises(InputError, match="over the 100 bytes limit"):
        load_corpus_bytes(b"text\n" + b"z" * 101 + b"\n", "given.csv", max_doc_bytes=100)


def test_the_default_limit_applies_to_a_single_line(tmp_path, capsys):
    assert MAX_DOC_BYTES == 10 * MB
    src = tmp_path / "book.txt"
    src.write_bytes(b"a" * MAX_DOC_BYTES + b"\nshort\n")
    assert [len(t) for t in load_corpus(src).texts] == [MAX_DOC_BYTES, 5]
    src.write_bytes(b"short\n" + b"a" * (MAX_DOC_BYTES + 1) + b"\n")
    refused(capsys, tmp_path / "db.sqlite", "ingest", src, "--session", "s",
            contains=("book.txt, row 2: the line is over the 10 MB limit for one document",))


def test_a_huge_single_line_file_is_refused_without_reading_it(tmp_path, capsys):
    """The testers' case: a 1 GB single-line text file with --max-mb 1100 was read whole (5.4 GB of memory) and
    failed in SQLite. Now the line is refused after the first steps of the scan, naming the file and the limit."""
    src = tmp_path / "huge.txt"
    with src.open("wb") as fh:
        fh.write(b"a" * (12 * MB))
        fh.truncate(1024 * MB)                   # sparse: the rest of the gigabyte takes no disk
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="huge.txt, row 1: the line is over the 10 MB limit"):
            load_corpus(src, max_bytes=1100 * MB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * MB, peak                 # read in steps, never the whole gigabyte
    refused(capsys, tmp_path / "db.sqlite", "ingest", src, "--session", "s", "--max-mb", "1100",
            contains=("huge.txt, row 1", "10 MB limit for one document"))
    assert not db_state(tmp_path / "db.sqlite")["exists"]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1 << 20])
def test_the_line_scan_names_the_right_row_whatever_its_steps(tmp_path, monkeypatch, step):
    """Line breaks CRLF, CR and LF, a CRLF cut between two steps, a UTF-8 BOM: the row is the line as ingest counts
    it, whether the file is scanned on disk (read_file) or in memory (an upload)."""
    monkeypatch.setattr(ingest_limits, "SCAN_BYTES", step)
    long = b"x" * 11
    cases = [(b"ab\r\ncd\r\n" + long + b"\r\nef\n", 3), (b"a\rb\rc\r\r" + long, 5), (b"\n\n\n" + long + b"\n", 4),
             (long, 1), (b"\xef\xbb\xbf" + b"y" * 10 + b"\n" + long, 2), (b"0123456789\r\n" * 3 + long, 4)]
    for data, row in cases:
        src = tmp_path / "lines.txt"
        src.write_bytes(data)
        for load in (lambda: load_corpus(src, max_doc_bytes=10),
                     lambda: load_corpus_bytes(data, "lines.txt", max_doc_bytes=10)):
            with pytest.raises(InputError, match=f"lines.txt, row {row}: the line is over the 10 bytes limit"):
                load()
        assert len(load_corpus(src, max_doc_bytes=11).texts) >= 1          # at the limit: kept
