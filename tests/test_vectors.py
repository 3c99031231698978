"""Bring your own vectors: the three input forms ingest (a table's column, a matrix beside a table, the TensorFlow
Projector pair), each hostile file is refused in one line with nothing written, and imported vectors are a model
kind of their own, never confused with an embedding EmbedLab computed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab.embedding.cache import cache_key, find_embedding
from embedlab.embedding.embedders import TFIDF_MODEL, ModelError, get_embedder
from embedlab.embedding.imported import find_imported, imported_models
from embedlab.embedding.space import EmbeddingSpace
from storage import connect
from storage.cache_keys import IMPORTED_PREFIX
from storage.corpora import find_corpus, list_corpora, load_documents
from storage.matrices import list_matrices, load_matrix
from storage.sessions import get_session_id
from tests.builders import planted_blobs
from tests.trust_support import cli, refused

N_PER, BLOBS, DIM = 12, 4, 16
TOPICS = ("cats", "markets", "vaccines", "football")


@pytest.fixture
def blobs() -> tuple[list[str], list[str], np.ndarray]:
    """48 documents in 4 planted clusters: (texts, labels, raw vectors, not unit length)."""
    X, truth = planted_blobs(N_PER, BLOBS, dim=DIM, seed=3)
    texts = [f"note {i} on {TOPICS[t]}" for i, t in enumerate(truth)]
    return texts, [TOPICS[t] for t in truth], X * 3.0


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)


def write_csv(path: Path, texts, labels=None) -> Path:
    rows = ["text" + (",label" if labels else "")]
    rows += [json.dumps(t) + (f",{labels[i]}" if labels else "") for i, t in enumerate(texts)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_parquet(path: Path, texts, labels, X, *, fixed: bool = True) -> Path:
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), X.shape[1]) if fixed \
        else pa.array([list(map(float, row)) for row in X], type=pa.list_(pa.float64()))
    pq.write_table(pa.table({"text": texts, "label": labels, "emb": vectors}), path)
    return path


def write_jsonl(path: Path, texts, X, field: str = "vec") -> Path:
    path.write_text("".join(json.dumps({"text": t, field: [float(v) for v in x]}) + "\n" for t, x in zip(texts, X)))
    return path


def stored_vectors(db_path: Path, corpus: str, model: str, session: str = "s") -> np.ndarray:
    db = connect(db_path)
    try:
        info = find_corpus(db, get_session_id(db, session), corpus)
        meta = find_imported(db, info.content_hash, model, info.id)
        assert meta is not None, imported_models(db, info.content_hash, info.id)
        return load_matrix(db, meta)
    finally:
        db.close()


# --- the three input forms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["parquet fixed-size list", "parquet list", "jsonl array", "npy", "npz", "projector"])
def test_each_form_ingests_the_vectors_normalised_and_in_row_order(capsys, tmp_path, db_path, blobs, form):
    texts, labels, X = blobs
    if form.startswith("parquet"):
        args = [write_parquet(tmp_path / "t.parquet", texts, labels, X, fixed="fixed" in form), "--vectors-col", "emb"]
    elif form == "jsonl array":
        args = [write_jsonl(tmp_path / "t.jsonl", texts, X), "--vectors-col", "vec"]
    elif form in ("npy", "npz"):
        vec = tmp_path / f"x.{form}"
        np.save(vec, X) if form == "npy" else np.savez(vec, anything=X)
        args = [write_csv(tmp_path / "t.csv", texts, labels), "--vectors", vec]
    else:   # the Projector pair: metadata.tsv (with a header) and vectors.tsv (no header)
        (tmp_path / "metadata.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in
                                                                        zip(texts, labels)))
        (tmp_path / "vectors.tsv").write_text("".join("\t".join(repr(float(v)) for v in x) + "\n" for x in X))
        args = [tmp_path / "metadata.tsv", "--vectors", tmp_path / "vectors.tsv"]
    rc, err, out, _ = cli(capsys, "--db", db_path, "ingest", *args, "--session", "s", "--name", "c",
                          "--vectors-model", "text-embedding-3-small")
    assert rc == 0, err
    assert "48 documents" in out and "'text-embedding-3-small (imported)'" in out
    stored = stored_vectors(db_path, "c", "text-embedding-3-small (imported)")
    assert stored.dtype == np.float32 and stored.shape == (48, DIM)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(stored, unit(X), atol=1e-6)           # row i is the file's row i
    db = connect(db_path)
    docs = load_documents(db, find_corpus(db, get_session_id(db, "s"), "c").id)
    assert all("emb" not in d["meta"] and "vec" not in d["meta"] for d in docs)   # never metadata
    if form != "jsonl array":
        assert [d["label"] for d in docs] == labels


def test_skipped_documents_drop_their_vectors_and_zero_rows_are_kept_and_reported(capsys, tmp_path, db_path, blobs):
    texts, _, X = blobs
    texts = list(texts)
    texts[2] = "   "                                # skipped: only whitespace
    X = X.copy()
    X[5] = 0.0                                      # kept: similar to nothing
    rc, err, out, _ = cli(capsys, "--db", db_path, "ingest", write_jsonl(tmp_path / "t.jsonl", texts, X),
                          "--session", "s", "--vectors-col", "vec")
    assert rc == 0, err
    assert "47 documents" in out and "skipped 1 empty (their vectors dropped)" in out
    assert "1 all-zero vector (row 6) kept, skipped for cosine work" in out
    stored = stored_vectors(db_path, "t", "imported (imported)")
    rest = np.delete(X, 2, axis=0)                 # the file's row 3 went with its document
    assert not stored[4].any() and not rest[4].any()
    keep = np.arange(47) != 4
    np.testing.assert_allclose(stored[keep], unit(rest[keep]), atol=1e-6)


# --- hostile files: exit 2, one line, nothing written -------------------------------------------------------------


class Unpickled:
    """Unpickling this makes a folder: if it ever happens, the test sees it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _hostile(tmp_path: Path, blobs, case: str) -> tuple[list, tuple[str, ...]]:
    """(ingest arguments, parts of the one line) of a hostile case."""
    texts, labels, X = blobs
    csv = write_csv(tmp_path / "t.csv", texts, labels)

    def npy(name: str, array, **kw) -> Path:
        np.save(tmp_path / name, array, **kw)
        return tmp_path / name

    if case == "fewer rows":
        return [csv, "--vectors", npy("x.npy", X[:47])], ("x.npy", "47 vectors for 48 data rows of t.csv")
    if case == "ragged rows":
        rows = [list(map(float, x)) for x in X]
        rows[6] = rows[6][:-1]
        path = tmp_path / "r.jsonl"
        path.write_text("".join(json.dumps({"text": t, "vec": v}) + "\n" for t, v in zip(texts, rows)))
        return [path, "--vectors-col", "vec"], ("r.jsonl, row 7, column 'vec'", "15 values, row 1 has 16")
    if case == "NaN":
        Y = X.copy()
        Y[9, 3] = np.nan
        return [csv, "--vectors", npy("x.npy", Y)], ("x.npy, row 10", "NaN")
    if case == "infinity":
        Y = X.astype(np.float64)
        Y[20, 0] = -np.inf
        return [csv, "--vectors", npy("x.npy", Y)], ("x.npy, row 21", "infinite")
    if case == "0 dimensions":
        return [csv, "--vectors", npy("x.npy", np.zeros((48, 0), np.float32))], ("0 dimensions",)
    if case == "too many dimensions":
        return [csv, "--vectors", npy("x.npy", np.zeros((48, 8193), np.float32))], ("8,193 dimensions", "8,192")
    if case == "text column":
        return [write_parquet(tmp_path / "p.parquet", texts, labels, X), "--vectors-col", "label"], \
            ("p.parquet, row 1, column 'label'", "holds text, not a list of numbers")
    if case == "text in a vector":
        rows = [list(map(float, x)) for x in X]
        rows[3][2] = "0.5"
        path = tmp_path / "s.jsonl"
        path.write_text("".join(json.dumps({"text": t, "vec": v}) + "\n" for t, v in zip(texts, rows)))
        return [path, "--vectors-col", "vec"], ("s.jsonl, row 4, column 'vec'", "value 3", "not a number")
    if case == "strings in an npy":
        return [csv, "--vectors", npy("x.npy", X.astype(str))], ("x.npy", "not numbers")
    if case == "object npy":
        objects = np.empty((48, 2), dtype=object)
        objects[:] = Unpickled(tmp_path / "unpickled")
        return [csv, "--vectors", npy("x.npy", objects, allow_pickle=True)], ("x.npy", "dtype object",
                                                                             "never unpickled")
    if case == "npz of several arrays":
        np.savez(tmp_path / "x.npz", a=X, b=X)
        return [csv, "--vectors", tmp_path / "x.npz"], ("x.npz", "2 arrays ('a', 'b')", "--vectors-col NAME")
    if case == "projector row of another length":
        lines = ["\t".join(repr(float(v)) for v in x) for x in X]
        lines[11] = "\t".join(lines[11].split("\t")[:-2])
        (tmp_path / "vectors.tsv").write_text("\n".join(lines) + "\n")
        return [csv, "--vectors", tmp_path / "vectors.tsv"], ("vectors.tsv, row 12", "14 values, row 1 has 16")
    if case == "a column and an npy":
        return [csv, "--vectors", npy("x.npy", X), "--vectors-col", "emb"], ("x.npy", "'emb' names an array")
    if case == "a model for no vectors":
        return [csv, "--vectors-model", "m"], ("--vectors FILE or --vectors-col NAME",)
    if case == "a query model fitted on the corpus":
        return [csv, "--vectors", npy("x.npy", X), "--query-model", TFIDF_MODEL], ("fitted on a corpus",)
    raise AssertionError(case)


HOSTILE = ["fewer rows", "ragged rows", "NaN", "infinity", "0 dimensions", "too many dimensions", "text column",
           "text in a vector", "strings in an npy", "object npy", "npz of several arrays",
           "projector row of another length", "a column and an npy", "a model for no vectors",
           "a query model fitted on the corpus"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_vectors_are_refused_in_one_line_and_nothing_is_written(capsys, tmp_path, db_path, blobs, case):
    texts, _, _ = blobs
    cli(capsys, "--db", db_path, "ingest", write_csv(tmp_path / "before.csv", texts[:5]), "--session", "s")
    args, parts = _hostile(tmp_path, blobs, case)
    refused(capsys, db_path, "ingest", *args, "--session", "s", "--name", "new", contains=parts)
    assert not (tmp_path / "unpickled").exists()


def test_other_vectors_under_a_taken_name_are_refused_unless_they_replace_their_corpus(capsys, tmp_path, db_path,
                                                                                         blobs):
    texts, labels, X = blobs
    csv = write_csv(tmp_path / "t.csv", texts, labels)
    np.save(tmp_path / "a.npy", X)
    np.save(tmp_path / "b.npy", X[::-1].copy())
    ingest = ("ingest", csv, "--session", "s", "--name", "c", "--vectors-model", "m")
    assert cli(capsys, "--db", db_path, *ingest, "--vectors", tmp_path / "a.npy")[0] == 0
    refused(capsys, db_path, "ingest", csv, "--session", "other", "--vectors", tmp_path / "b.npy",
            "--vectors-model", "m", contains=("other vectors named 'm (imported)'", "corpus 'c' of session 's'",
                                              "--vectors-model"))
    # the same vectors again (another session) share the stored matrix; other ones replace the only corpus's
    assert cli(capsys, "--db", db_path, *ingest[:3], "other", "--vectors-model", "m",
               "--vectors", tmp_path / "a.npy")[0] == 0
    db = connect(db_path)
    info = find_corpus(db, get_session_id(db, "s"), "c")
    assert len([m for m in list_matrices(db, info.content_hash, "embedding")]) == 1
    cli(capsys, "--db", db_path, "sessions", "delete", "other")
    rc, err, _, _ = cli(capsys, "--db", db_path, *ingest, "--vectors", tmp_path / "b.npy", "--replace")
    assert rc == 0, err
    np.testing.assert_allclose(stored_vectors(db_path, "c", "m (imported)"), unit(X[::-1]), atol=1e-6)


def test_imported_vectors_are_never_taken_for_an_embedding_embedlab_computed(capsys, tmp_path, db_path, blobs):
    texts, labels, X = blobs
    np.save(tmp_path / "x.npy", X)
    rc, err, _, _ = cli(capsys, "--db", db_path, "ingest", write_csv(tmp_path / "t.csv", texts, labels),
                        "--session", "s", "--vectors", tmp_path / "x.npy", "--vectors-model", TFIDF_MODEL)
    assert rc == 0, err
    db = connect(db_path)
    info = list_corpora(db, get_session_id(db, "s"))[0]
    assert find_embedding(db, info.content_hash, TFIDF_MODEL, info.id) is None      # not computed yet
    computed = EmbeddingSpace.for_corpus(db, info.id, TFIDF_MODEL).ensure()
    imported = find_embedding(db, info.content_hash, f"{TFIDF_MODEL} (imported)", info.id)
    assert imported.cache_key.startswith(IMPORTED_PREFIX) and not computed.cache_key.startswith(IMPORTED_PREFIX)
    assert computed.cache_key == cache_key(get_embedder(TFIDF_MODEL), info.content_hash)
    assert imported.cols == DIM and computed.cols != DIM
    assert sorted(m.model for m in list_matrices(db, info.content_hash, "embedding", corpus_id=info.id)) == \
        [TFIDF_MODEL, f"{TFIDF_MODEL} (imported)"]
    with pytest.raises(ModelError, match="imported with a corpus"):
        get_embedder(f"{TFIDF_MODEL} (imported)")


def test_outputs_and_inputs_that_are_the_database_are_refused(capsys, tmp_path, db_path, blobs):
    texts, labels, X = blobs
    csv = write_csv(tmp_path / "t.csv", texts, labels)
    np.save(tmp_path / "x.npy", X)
    assert cli(capsys, "--db", db_path, "ingest", csv, "--session", "s", "--vectors", tmp_path / "x.npy")[0] == 0
    refused(capsys, db_path, "export-vectors", "--session", "s", "--corpus", "t", "--out", db_path,
            contains=("--out", "that is the database"))
    refused(capsys, db_path, "ingest", csv, "--session", "s", "--vectors", db_path, contains=("that is the database",))
    refused(capsys, db_path, "export-vectors", "--session", "s", "--corpus", "t", "--model", "nope (imported)",
            "--out", tmp_path / "v.parquet", contains=("no vectors imported as 'nope (imported)'",))
    assert not (tmp_path / "v.parquet").exists()
