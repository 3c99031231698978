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


# --- a capped relevant set for queries from labels ---------------------------------------------------------------

def condensed(ids, exclude, k: int):
    """Each query's ranked rows without its excluded ones (the query document, the unjudged rows of its label),
    the first k kept: what the evaluation of a comparison does with `LabelQueries.exclude`."""
    import numpy as np

    exclude = np.asarray(exclude).reshape(len(ids), -1)
    return [[int(d) for d in row if d not in set(exclude[i].tolist())][:k] for i, row in enumerate(ids)]


def test_capped_relevant_set_is_a_seeded_sample_of_the_label():
    import numpy as np

    labels = ["a"] * 40 + ["b"] * 3 + ["c"] * 30
    ids = [f"d{i}" for i in range(len(labels))]
    lq = queries_from_labels(labels, 12, seed=3, doc_ids=ids, max_relevant=5)
    assert lq.max_relevant == 5
    exclude = lq.exclude
    assert exclude.shape == (12, 1 + 39 - 5) and exclude[:, 0].tolist() == lq.rows.tolist()
    for i, (r, qid) in enumerate(zip(lq.rows, lq.query_ids)):
        others = {j for j, lab in enumerate(labels) if lab == labels[r] and j != r}
        relevant = {int(d[1:]) for d in lq.qrels[qid]}
        assert len(relevant) == min(5, len(others)) and relevant <= others      # the cap holds, within the label
        unjudged = {int(j) for j in exclude[i, 1:] if j >= 0}
        assert unjudged == others - relevant                                      # the rest of the label: unjudged
    # the same sample for a query whatever the number of queries; another seed, another sample
    more = queries_from_labels(labels, 30, seed=3, doc_ids=ids, max_relevant=5)
    for qid in lq.query_ids:
        if qid in more.qrels:
            assert more.qrels[qid] == lq.qrels[qid]
    other_seed = queries_from_labels(labels, 73, seed=4, doc_ids=ids, max_relevant=5)
    assert any(other_seed.qrels[q] != more.qrels[q] for q in more.qrels if q in other_seed.qrels)
    # a cap above every label's size changes nothing: the uncapped sets, one excluded row per query
    wide = queries_from_labels(labels, 12, seed=3, doc_ids=ids, max_relevant=100)
    plain = queries_from_labels(labels, 12, seed=3, doc_ids=ids)
    assert wide.qrels == plain.qrels and np.array_equal(wide.exclude, plain.exclude) and plain.exclude.ndim == 1
    for bad in (0, -2, 2.5, "many", True):
        with pytest.raises(InputError, match="relevant documents per query"):
            queries_from_labels(labels, 4, max_relevant=bad)


def test_ndcg_and_recall_use_the_capped_set():
    import numpy as np

    from embedlab.retrieval.evaluate import evaluate_run

    labels = ["a"] * 50 + ["b"] * 50
    ids = [f"d{i}" for i in range(100)]
    lq = queries_from_labels(labels, 6, seed=0, doc_ids=ids, max_relevant=5)
    uncapped = queries_from_labels(labels, 6, seed=0, doc_ids=ids)

    def run_of(rows):
        return {q: {ids[d]: 1.0 - 0.001 * rank for rank, d in enumerate(row)} for q, row in zip(lq.query_ids, rows)}

    # a ranking that puts its label first, the unjudged documents of the label before the sampled ones: condensed,
    # the five sampled documents lead, so every metric is 1; uncapped, recall@10 is 10 of 49
    perfect = []
    for r, q in zip(lq.rows, lq.query_ids):
        relevant = [int(d[1:]) for d in lq.qrels[q]]
        same = [j for j in range(100) if labels[j] == labels[r] and j != r and j not in relevant]
        perfect.append([r, *same, *relevant, *(j for j in range(100) if labels[j] != labels[r])])
    capped = evaluate_run(lq.qrels, run_of(condensed(perfect, lq.exclude, 100)), ["ndcg@10", "recall@10"])
    assert capped.mean == {"ndcg@10": pytest.approx(1.0), "recall@10": pytest.approx(1.0)}
    full = evaluate_run(uncapped.qrels, run_of(condensed(perfect, uncapped.exclude, 100)), ["recall@10"])
    assert full.mean["recall@10"] == pytest.approx(10 / 49)

    # two of the five sampled documents in the top 10, the rest other-label documents: recall@10 = 2 / 5, and
    # nDCG@10 is computed against five relevant documents (ideal DCG over five ranks)
    mixed = []
    for r, q in zip(lq.rows, lq.query_ids):
        relevant = [int(d[1:]) for d in lq.qrels[q]]
        other = [j for j in range(100) if labels[j] != labels[r]]
        mixed.append([other[0], relevant[0], *other[1:5], relevant[1], *other[5:]])
    got = evaluate_run(lq.qrels, run_of(condensed(mixed, lq.exclude, 100)), ["ndcg@10", "recall@10"])
    ideal = sum(1 / np.log2(i + 2) for i in range(5))
    assert got.mean["recall@10"] == pytest.approx(2 / 5)
    assert got.mean["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(8)) / ideal)
