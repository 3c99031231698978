"""What works with imported vectors: the map job, neighbours, clusters, Compare against a computed model,
diagnostics, OOD on label-defined and corpus-defined sets, label-based retrieval, the report; new texts need the
declared query encoder (disabled with a one-line reason without one); and the export round trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedlab.embedding.imported as imported_module
from embedlab.compare import linear_cka, mean_neighbour_overlap
from embedlab.diagnostics import diagnose
from embedlab.embedding.imported import NeedsQueryEncoder, save_with_vectors
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import UserError
from embedlab.jobs import run_job
from embedlab.nearest_documents import neighbour_rows
from embedlab.ood.comparison import compare_detectors
from embedlab.ood.corpus_task import task_from_corpora
from embedlab.projection import project
from embedlab.report import build_report
from embedlab.retrieval.comparison import compare_methods
from embedlab.retrieval.typed_query import clear_index_cache, rank_typed_query
from embedlab.tasks import find_projection
from embedlab.workspace import Workspace
from storage import connect
from storage.corpora import find_corpus, save_corpus
from storage.matrices import get_matrix, list_matrices, load_matrix
from storage.sessions import ensure_session, get_session_id
from tests.builders import make_corpus, planted_blobs
from tests.fakes import FakeEmbedder
from tests.trust_support import cli

MODEL = "m (imported)"
TOPICS = ("cats", "markets", "vaccines", "football")


def write_blobs(tmp_path: Path, name: str = "t", *, seed: int = 3, n_per: int = 15, offset: int = 0
                ) -> tuple[Path, Path, np.ndarray, list[str]]:
    """A CSV of 4 labelled planted clusters and its vectors (.npy): (csv, npy, vectors, labels)."""
    X, truth = planted_blobs(n_per, 4, dim=16, spread=0.5, seed=seed)
    labels = [TOPICS[t] for t in truth]
    csv = tmp_path / f"{name}.csv"
    csv.write_text("text,label\n" + "".join(f"{json.dumps(f'{name} note {offset + i}')},{lab}\n"
                                            for i, lab in enumerate(labels)))
    np.save(tmp_path / f"{name}.npy", X)
    return csv, tmp_path / f"{name}.npy", X, labels


@pytest.fixture
def corpus(capsys, tmp_path, db_path):
    """Corpus "t" of session "s" with 60 imported vectors named "m" (no query encoder): (db, info, vectors, labels)."""
    csv, npy, X, labels = write_blobs(tmp_path)
    rc, err, _, _ = cli(capsys, "--db", db_path, "ingest", csv, "--session", "s", "--vectors", npy,
                        "--vectors-model", "m")
    assert rc == 0, err
    db = connect(db_path)
    yield db, find_corpus(db, get_session_id(db, "s"), "t"), X, labels
    db.close()


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)


def test_the_map_job_neighbours_and_clusters(corpus):
    db, info, X, labels = corpus
    ref = run_job(db, "project", {"corpus_id": info.id, "model": MODEL, "method": "pca"}, session_id=info.session_id)
    coords = load_matrix(db, int(ref.split(":")[1]))
    np.testing.assert_allclose(coords, project(unit(X), method="pca"), atol=1e-4)
    assert find_projection(db, info.id, MODEL, method="pca").id == int(ref.split(":")[1])
    stored = EmbeddingSpace.for_corpus(db, info.id, MODEL).documents()
    rows = neighbour_rows(stored, coords, 0, k=5, labels=labels)
    assert [r["label"] for r in rows] == [labels[0]] * 5
    np.testing.assert_allclose([r["cosine"] for r in rows],
                               np.sort(unit(X)[1:] @ unit(X)[0])[::-1][:5], atol=1e-4)


def test_diagnostics_of_imported_vectors(capsys, corpus, db_path):
    _, _, X, _ = corpus
    rc, err, out, _ = cli(capsys, "--db", db_path, "diagnostics", "--session", "s", "--corpus", "t", "--model", MODEL)
    assert rc == 0, err
    got = json.loads(out)
    want = diagnose(unit(X), model=MODEL)
    assert (got["model"], got["n_docs"], got["dim"]) == (MODEL, 60, 16)
    assert got["rankme"] == pytest.approx(want["rankme"], abs=1e-3)
    assert got["max_k_occurrence@10"] == want["max_k_occurrence@10"]


def test_compare_with_a_model_embedlab_computes_on_the_same_corpus(corpus, db_path):
    db, info, _, _ = corpus
    ours = EmbeddingSpace.for_corpus(db, info.id, MODEL).documents()
    computed = EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").documents()
    assert ours.shape == (60, 16) and computed.shape[0] == 60
    assert linear_cka(ours, ours) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= linear_cka(ours, computed) < 0.99
    assert 0.0 <= mean_neighbour_overlap(ours, computed, k=5) < 1.0
    ws = Workspace(db_path, db=db)
    assert ws.embedded_models(info)[-1] == MODEL and "tfidf-svd" in ws.embedded_models(info)


def test_ood_on_label_defined_sets_and_mcm_needs_the_query_encoder(corpus):
    db, info, _, _ = corpus
    params = {"session_id": info.session_id, "model": MODEL, "id_corpus_id": info.id, "ood_labels": ["football"],
              "test": "holdout", "fraction": 0.3, "seed": 0}
    result = compare_detectors(task_from_corpora(db, params).task, None)
    assert result.methods["knn"]["auroc"] > 0.95 and result.methods["mahalanobis"]["auroc"] > 0.95
    assert "mcm" in result.skipped and "embed label prompts" in result.skipped["mcm"]


def test_ood_on_a_corpus_defined_set_takes_that_corpus_s_vectors_of_the_same_name(capsys, corpus, tmp_path,
                                                                                      db_path):
    db, info, X, _ = corpus
    far = planted_blobs(10, 1, dim=16, spread=0.3, seed=99)[0] - unit(X).mean(axis=0) * 4
    np.save(tmp_path / "far.npy", far)
    for name, model in (("far", "m"), ("other", "n")):     # other texts: the vectors of "far" are not theirs
        csv = tmp_path / f"{name}.csv"
        csv.write_text("text\n" + "".join(f"{name} text {i}\n" for i in range(10)))
        assert cli(capsys, "--db", db_path, "ingest", csv, "--session", "s", "--name", name, "--vectors",
                   tmp_path / "far.npy", "--vectors-model", model)[0] == 0
    far_id = find_corpus(db, info.session_id, "far").id
    params = {"session_id": info.session_id, "model": MODEL, "id_corpus_id": info.id, "test": "corpus",
              "test_corpus_id": far_id, "fraction": 0.3, "seed": 0, "methods": ["knn"]}
    result = compare_detectors(task_from_corpora(db, params).task, ["knn"])
    assert result.n_ood == 10 and result.methods["knn"]["auroc"] > 0.95
    params["test_corpus_id"] = find_corpus(db, info.session_id, "other").id   # vectors of another name only
    with pytest.raises(NeedsQueryEncoder, match="needs a query encoder.*--query-model"):
        compare_detectors(task_from_corpora(db, params).task, ["knn"])


def test_label_based_retrieval(corpus):
    db, info, _, _ = corpus
    result = compare_methods(db, {"source": "labels", "corpus_id": info.id, "model": MODEL,
                                  "methods": ["bm25", "dense", "int8-rescore", "matryoshka-8"], "n_queries": 20})
    metrics = result.metrics
    assert metrics["dense"]["ndcg@10"] > 0.9 > metrics["bm25"]["ndcg@10"]
    assert metrics["int8-rescore"]["ndcg@10"] == pytest.approx(metrics["dense"]["ndcg@10"], abs=0.02)
    with pytest.raises(UserError, match="token embeddings"):
        compare_methods(db, {"source": "labels", "corpus_id": info.id, "model": MODEL, "methods": ["maxsim"]})


def test_the_report_lists_imported_vectors_with_their_map(corpus):
    db, info, _, _ = corpus
    run_job(db, "project", {"corpus_id": info.id, "model": MODEL, "method": "umap"}, session_id=info.session_id)
    html = build_report(db, "s")
    assert "m (imported)" in html and "no map stored yet" not in html


# --- new texts: the query encoder ---------------------------------------------------------------------------------


def test_search_is_off_without_a_query_encoder_with_a_reason_and_keyword_methods_still_work(corpus, db_path):
    db, info, _, _ = corpus
    clear_index_cache()
    space = EmbeddingSpace.for_corpus(db, info.id, MODEL)
    line = ("m (imported) needs a query encoder to embed new texts (queries, test texts): re-ingest the corpus with "
            "--query-model NAME")
    assert space.query_problem.startswith(line)
    assert Workspace(db_path, db=db).query_problem(info, MODEL).startswith(line)
    assert Workspace(db_path, db=db).query_problem(info, "tfidf-svd") is None
    with pytest.raises(NeedsQueryEncoder, match="--query-model"):
        space.encode(["a question"])
    with pytest.raises(UserError, match="needs a query encoder"):
        rank_typed_query(db, info.id, MODEL, "note 3", ["dense"])
    assert rank_typed_query(db, info.id, MODEL, "note 33", ["bm25"], k=1)["bm25"][0][1] == "33"


def test_search_works_with_the_declared_query_encoder(db, db_path, session_id, monkeypatch):
    """Vectors a (fake, deterministic) model made, declared as their query encoder: a document's own text finds it
    first, at cosine 1, and the stored query model is what encodes it."""
    fake = FakeEmbedder(dim=16)
    real = imported_module.get_embedder
    monkeypatch.setattr(imported_module, "get_embedder", lambda m: fake if m == "fake-query" else real(m))
    texts = [f"document number {i} about {TOPICS[i % 4]}" for i in range(40)]
    corpus = make_corpus(texts, name="f")
    info, meta = save_with_vectors(db, lambda: save_corpus(db, session_id, corpus), fake.encode(texts),
                                   name="fake", query_model="fake-query")
    assert meta.params["query_model"] == "fake-query" and meta.model == "fake (imported)"
    fake.encoded = 0
    clear_index_cache()
    hits = rank_typed_query(db, info.id, "fake (imported)", texts[7], ["dense"], k=3)["dense"]
    assert hits[0][0] == 7 and hits[0][2] == pytest.approx(1.0, abs=1e-5)
    assert fake.encoded == 1                       # the query only: the documents are the stored rows
    assert Workspace(db_path, db=db).query_problem(info, "fake (imported)") is None


# --- export -------------------------------------------------------------------------------------------------------


def test_export_vectors_round_trip(capsys, corpus, tmp_path, db_path):
    db, info, _, labels = corpus
    run_job(db, "project", {"corpus_id": info.id, "model": MODEL, "method": "pca"}, session_id=info.session_id)
    out = tmp_path / "out.parquet"
    rc, err, printed, _ = cli(capsys, "--db", db_path, "export-vectors", "--session", "s", "--corpus", "t",
                              "--out", out)
    assert rc == 0, err and "with map coordinates" in printed
    table = pq.read_table(out)
    assert table.column_names == ["doc_id", "text", "label", "vector", "x", "y"]
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 16)
    assert table.schema.metadata[b"embedlab.model"] == MODEL.encode()
    stored = EmbeddingSpace.for_corpus(db, info.id, MODEL).documents()
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    assert np.array_equal(vectors, stored)
    pca = load_matrix(db, find_projection(db, info.id, MODEL, method="pca"))
    assert np.array_equal(np.c_[table.column("x").to_numpy(), table.column("y").to_numpy()], pca)
    assert table.column("label").to_pylist() == labels and table.column("doc_id").to_pylist()[:2] == ["0", "1"]
    # ingested again (another session, same name): the very same bytes, so the very same stored matrix
    n_before = len(list_matrices(db, info.content_hash, "embedding"))
    rc, err, _, _ = cli(capsys, "--db", db_path, "ingest", out, "--session", "copy", "--vectors-col", "vector",
                        "--vectors-model", "m")
    assert rc == 0, err
    copy = find_corpus(db, get_session_id(db, "copy"), "out")
    assert copy.content_hash == info.content_hash and len(list_matrices(db, info.content_hash, "embedding")) == \
        n_before
    again = EmbeddingSpace.for_corpus(db, copy.id, MODEL)
    assert np.array_equal(again.documents(), stored) and again.stored().id == get_matrix(db, again.stored().id).id
    docs = Workspace(db_path, db=db).documents(copy.id)
    assert [d["label"] for d in docs] == labels and set(docs[0]["meta"]) == {"x", "y"}


def test_export_of_a_corpus_without_a_map_or_an_embedding(capsys, corpus, tmp_path, db_path):
    db, _, _, _ = corpus
    out = tmp_path / "nomap.parquet"
    assert cli(capsys, "--db", db_path, "export-vectors", "--session", "s", "--corpus", "t", "--out", out)[0] == 0
    table = pq.read_table(out)
    assert table.column("x").null_count == table.num_rows == 60
    ensure_session(db, "s")
    cli(capsys, "--db", db_path, "ingest", tmp_path / "t.csv", "--session", "bare")
    rc, lines, _, _ = cli(capsys, "--db", db_path, "export-vectors", "--session", "bare", "--corpus", "t", "--model",
                          "tfidf-svd", "--out", tmp_path / "no.parquet")
    assert rc == 2 and "not embedded with tfidf-svd" in lines[0] and not (tmp_path / "no.parquet").exists()


def test_a_session_file_carries_imported_vectors_and_their_map_private_to_their_corpus(capsys, corpus, tmp_path,
                                                                                       db_path):
    db, info, _, _ = corpus
    run_job(db, "project", {"corpus_id": info.id, "model": MODEL, "method": "pca"}, session_id=info.session_id)
    assert cli(capsys, "--db", db_path, "sessions", "export", "s", tmp_path / "s.sqlite")[0] == 0
    other = tmp_path / "other.sqlite"
    rc, err, out, _ = cli(capsys, "--db", other, "sessions", "import", tmp_path / "s.sqlite")
    assert rc == 0, err
    assert "'m (imported)' for corpus 't' is kept private to it (imported, not verified)" in out
    there = connect(other)
    copy = find_corpus(there, get_session_id(there, "s"), "t")
    space = EmbeddingSpace.for_corpus(there, copy.id, MODEL)
    assert space.stored().cache_key.startswith("private:")
    assert np.array_equal(space.documents(), EmbeddingSpace.for_corpus(db, info.id, MODEL).documents())
    pca = find_projection(there, copy.id, MODEL, method="pca")
    assert pca is not None and np.array_equal(load_matrix(there, pca),
                                              load_matrix(db, find_projection(db, info.id, MODEL, method="pca")))
