"""BEIR loading (folders and ZIPs), its error messages, max-docs subsets and queries from labels."""
from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from embedlab.errors import InputError
from embedlab.retrieval.beir import load_beir, queries_from_labels

DOCS = [{"_id": f"d{i}", "title": f"Title {i}", "text": f"text of document {i}"} for i in range(6)]
QUERIES = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(4)]
QRELS = "query-id\tcorpus-id\tscore\nq0\td1\t1\nq1\td2\t1\nq1\td3\t2\nq2\td5\t1\n"


def write_beir(root: Path, *, docs=DOCS, queries=QUERIES, qrels=QRELS, split="test", gz=False,
               extra_splits=()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(d) + "\n" for d in docs)
    if gz:
        (root / "corpus.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    else:
        (root / "corpus.jsonl").write_text(body)
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels)
    for s in extra_splits:
        (root / "qrels" / f"{s}.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td0\t1\n")
    return root


def zip_of(root: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, prefix + str(p.relative_to(root)))
    return buf.getvalue()


def test_load_folder(tmp_path):
    ds = load_beir(write_beir(tmp_path / "beir-toy", gz=True, extra_splits=["train"]), "test")
    assert ds.name == "toy" and ds.n_docs == 6 and ds.query_ids == ["q0", "q1", "q2"]
    assert ds.queries[1] == "query 1"
    assert ds.qrels["q1"] == {"d2": 1, "d3": 2}
    assert ds.corpus_texts[0] == "Title 0 text of document 0"
    assert ds.splits == ["test", "train"] and ds.reference_query_ids == ["q3"] and not ds.warnings


@pytest.mark.parametrize("prefix", ["", "scifact/"])
def test_load_zip_bytes_flat_or_nested(tmp_path, prefix):
    data = zip_of(write_beir(tmp_path / "toy"), prefix)
    ds = load_beir(data, "test", name="toy.zip")
    assert ds.n_docs == 6 and ds.n_queries == 3 and ds.name == "toy"
    path = tmp_path / "toy.zip"
    path.write_bytes(data)
    assert load_beir(path).n_docs == 6


def test_missing_qrels_lists_splits(tmp_path):
    root = write_beir(tmp_path / "toy", split="dev", extra_splits=["train"])
    with pytest.raises(InputError) as err:
        load_beir(root, "test")
    msg = str(err.value)
    assert "qrels/test.tsv" in msg and "splits found: dev, train" in msg


def test_missing_corpus_or_queries(tmp_path):
    root = write_beir(tmp_path / "toy")
    (root / "queries.jsonl").unlink()
    with pytest.raises(InputError, match="no queries.jsonl"):
        load_beir(root)
    (root / "corpus.jsonl").unlink()
    with pytest.raises(InputError, match="no corpus.jsonl"):
        load_beir(root)
    with pytest.raises(InputError, match="no such folder"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a ZIP"):
        load_beir(b"not a zip")


def test_broken_json_line_names_file_and_line(tmp_path):
    root = write_beir(tmp_path / "toy")
    lines = (root / "corpus.jsonl").read_text().splitlines()
    lines[3] = lines[3][:-5]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_beir(root)
    assert str(err.value).startswith("corpus.jsonl, row 4: not valid JSON")
    (root / "corpus.jsonl").write_text(json.dumps({"title": "no id"}) + "\n")
    with pytest.raises(InputError, match='corpus.jsonl, row 1: expected a JSON object with an "_id"'):
        load_beir(root)


def test_broken_qrels_line(tmp_path):
    root = write_beir(tmp_path / "toy", qrels="query-id\tcorpus-id\tscore\nq0\td1\t1\nq1\td2\n")
    with pytest.raises(InputError, match=r"qrels/test.tsv, row 3: expected 3 tab-separated columns"):
        load_beir(root)
    write_beir(root, qrels="q0\td1\t1\nq1\td2\thigh\n")
    with pytest.raises(InputError, match=r"qrels/test.tsv, row 2: score 'high' is not a number"):
        load_beir(root)


def test_unknown_ids_are_dropped_with_a_counted_warning(tmp_path):
    qrels = QRELS + "q9\td1\t1\nq8\td1\t1\nq0\tdX\t1\n"
    ds = load_beir(write_beir(tmp_path / "toy", qrels=qrels))
    assert ds.query_ids == ["q0", "q1", "q2"] and ds.qrels["q0"] == {"d1": 1}
    text = " ".join(ds.warnings)
    assert "2 query id(s) not in queries.jsonl dropped ('q9', 'q8'; first at line 6)" in text
    assert "1 corpus id(s) not in the corpus dropped ('dX'; first at line 8)" in text


def test_qrels_matching_nothing_is_refused(tmp_path):
    with pytest.raises(InputError, match="none of the 2 query ids matches queries.jsonl"):
        load_beir(write_beir(tmp_path / "a", qrels="x1\td1\t1\nx2\td2\t1\n"))
    with pytest.raises(InputError, match="none of the 2 corpus ids matches the corpus"):
        load_beir(write_beir(tmp_path / "b", qrels="q0\tz1\t1\nq1\tz2\t1\n"))


def test_limit_docs_keeps_relevant_then_first_others(tmp_path):
    ds = load_beir(write_beir(tmp_path / "toy"))
    small = ds.limit_docs(5)
    assert small.doc_ids == ["d0", "d1", "d2", "d3", "d5"]
    tiny = ds.limit_docs(2)                       # only q0's d1 and q1's d2 fit
    assert tiny.doc_ids == ["d1", "d2"] and tiny.query_ids == ["q0", "q1"]
    assert tiny.qrels["q1"] == {"d2": 1}
    assert ds.limit_docs(2).doc_ids == tiny.doc_ids
    assert ds.limit_docs(100) is ds


def test_queries_from_labels():
    labels = ["a", "a", "b", "b", "b", "c", None, "a"]
    lq = queries_from_labels(labels, 4, seed=1, doc_ids=[f"d{i}" for i in range(8)])
    assert len(lq.rows) == 4 and len(set(lq.rows.tolist())) == 4
    for r, qid in zip(lq.rows, lq.query_ids):
        assert labels[r] in ("a", "b")                # "c" has one document, None has no label
        rel = set(lq.qrels[qid])
        assert f"d{r}" not in rel
        assert rel == {f"d{j}" for j, lab in enumerate(labels) if lab == labels[r] and j != r}
    assert queries_from_labels(labels, 4, seed=1).rows.tolist() == lq.rows.tolist()
    assert len(queries_from_labels(labels, 100, seed=0).rows) == 6
    with pytest.raises(InputError, match="two or more documents"):
        queries_from_labels(["x", "y", None], 2)


def test_infinite_score_and_unreadable_zip_member_are_input_errors(tmp_path):
    root = write_beir(tmp_path / "toy", qrels="q0\td1\t1\nq1\td2\tinf\n")
    with pytest.raises(InputError, match=r"qrels/test.tsv, row 2: score 'inf' is not a number"):
        load_beir(root)
    data = bytearray(zip_of(write_beir(tmp_path / "ok")))
    at = data.find(b"text of document")              # corrupt the stored corpus bytes: the CRC check fails
    data[at:at + 4] = b"XXXX"
    with pytest.raises(InputError, match="corpus.jsonl"):
        load_beir(bytes(data), "test", name="broken.zip")


def test_dataset_label_splits_and_stored_uploads(tmp_path):
    from embedlab.retrieval.beir import beir_splits, dataset_label, store_beir_upload

    assert dataset_label("/x/beir-scifact/") == "scifact" and dataset_label("beir_nq.zip") == "nq"
    assert dataset_label("my.zip") == "my"
    folder = write_beir(tmp_path / "toy", extra_splits=["train"])
    assert beir_splits(folder) == ["test", "train"]
    data = zip_of(folder, "toy/")
    path = store_beir_upload(data, "../my beir.zip", uploads_dir=tmp_path / "up")
    assert path.name == "my_beir.zip" and path.read_bytes() == data and path.parent.parent == tmp_path / "up"
    assert store_beir_upload(data, "../my beir.zip", uploads_dir=tmp_path / "up") == path    # stored once
    assert beir_splits(path) == ["test", "train"]
    assert beir_splits(tmp_path / "missing.zip") == [] and beir_splits(tmp_path / "nothing") == []
