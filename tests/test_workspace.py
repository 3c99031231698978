"""The UI's one door (`embedlab.workspace.Workspace`): its connection's lifetime, its cache keys, and that each
method reads and writes what the storage and engine functions behind it do."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from embedlab import jobs
from embedlab.embedding.space import embed_corpus
from embedlab.errors import UserError
from embedlab.projection import projection_params
from embedlab.tasks import map_params, projection_key
from embedlab.workspace import Workspace, embed_params
from storage import connect
from storage.matrices import save_matrix
from storage.sessions import save_run
from tests.builders import stored_corpus

MODEL = "tfidf-svd"   # no weights to load
TEXTS = [f"note {i} on {('cats', 'dogs', 'birds', 'fish')[i % 4]} and {('rain', 'sun')[i % 2]}" for i in range(24)]


@pytest.fixture
def ws(db_path):
    with Workspace.open(db_path) as workspace:
        yield workspace


def _closed(db) -> bool:
    try:
        db.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - sqlite3.ProgrammingError on a closed connection
        return True
    return False


def _umap_map(db, corpus_id: int, content_hash: str, model: str = MODEL) -> int:
    """A stored stand-in for a corpus's default (UMAP 2-D) map: only its key matters here."""
    params = projection_params(method="umap")
    return save_matrix(db, np.zeros((len(TEXTS), 2), np.float32), cache_key=projection_key(db, corpus_id, model, params),
                       kind="projection", model=model, params=params, corpus_id=corpus_id,
                       content_hash=content_hash).id


# --- connection ---------------------------------------------------------------------------------------------


def test_open_connects_at_once_and_close_and_with_release_the_connection(db_path, tmp_path):
    ws = Workspace.open(db_path)
    db = ws.db
    assert ws.db is db and not _closed(db)          # one connection, kept
    ws.close()
    assert _closed(db) and ws._db is None
    with Workspace.open(db_path) as again:
        inner = again.db
    assert _closed(inner)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(UserError, match="not a database file"):
        Workspace.open(folder)                       # refused on open, not on first use


def test_default_path_is_the_clis(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDLAB_DB", str(tmp_path / "x.sqlite"))
    assert Workspace.default_path() == str(tmp_path / "x.sqlite")
    monkeypatch.delenv("EMBEDLAB_DB")
    assert Workspace.default_path() == "data/embedlab.sqlite"


# --- sessions -----------------------------------------------------------------------------------------------


def test_session_lifecycle_returns_names_as_stored(ws):
    assert ws.create_session("  alpha ") == "alpha"
    with pytest.raises(UserError):
        ws.create_session("alpha")
    sid = ws.session_id("alpha")
    assert isinstance(sid, int) and ws.session_id("nope") is None
    assert ws.rename_session("alpha", " beta  ") == "beta"
    ws.set_notes("beta", "first line\nsecond")
    assert ws.notes("beta") == "first line\nsecond"
    copy = ws.duplicate_session("beta")
    assert copy == "beta (copy)" and ws.notes(copy) == "first line\nsecond"
    assert [s.name for s in ws.sessions()] == ["beta", "beta (copy)"]
    ws.delete_session("beta")
    assert [s.name for s in ws.sessions()] == ["beta (copy)"]


def test_export_then_import_makes_a_new_session_with_its_runs(ws):
    sid, corpus = stored_corpus(ws.db, TEXTS, session="s")
    save_run(ws.db, sid, "retrieval", {"corpus": corpus.name}, {"bm25": {"ndcg@10": 0.5}})
    parts = {p.key: p for p in ws.export_contents("s")}
    assert parts["documents"].items == len(TEXTS)
    result = ws.import_session_bytes(ws.export_bytes("s"))
    assert result.name == "s (2)" and result.unverified == []
    new_sid = ws.session_id("s (2)")
    (original,) = ws.runs(sid)
    (run,) = ws.runs(new_sid)
    assert (run.kind, run.params, run.metrics) == (original.kind, original.params, original.metrics)
    assert run.metrics["bm25"]["ndcg@10"] == 0.5
    assert result.run_numbers == {1: 2} and run.id == 2 and [c.n_docs for c in ws.corpora(new_sid)] == [24]
    assert result.renumbered == "Runs renumbered (file → here): #1 → #2."


def test_report_is_built_on_a_connection_of_its_own_from_another_thread(ws):
    stored_corpus(ws.db, TEXTS, session="reported")
    found: list[str] = []
    worker = threading.Thread(target=lambda: found.append(ws.report_html("reported")))
    worker.start()
    worker.join()
    assert found and found[0].lstrip().lower().startswith("<!doctype html") and "reported" in found[0]
    assert not _closed(ws.db)                          # the workspace's own connection is untouched


def test_cached_matrices_and_eviction(ws):
    _, corpus = stored_corpus(ws.db, TEXTS, session="s")
    meta = embed_corpus(ws.db, corpus.id, MODEL)
    map_id = _umap_map(ws.db, corpus.id, corpus.content_hash)
    listed = {c.meta.id: c for c in ws.cached_matrices("s")}
    assert set(listed) == {meta.id, map_id} and listed[meta.id].users == ("s / c",)
    removed = ws.evict_matrix(meta.id)
    assert {r.meta.id for r in removed} == {meta.id, map_id}      # an embedding goes with its maps
    assert ws.cached_matrices("s") == [] and ws.embedding(corpus, MODEL) is None


# --- corpora ------------------------------------------------------------------------------------------------


def test_corpus_reads_match_what_was_stored(ws):
    labels = ["b", "a", "b", None, "a", "c", "", "a"] * 3
    sid, corpus = stored_corpus(ws.db, TEXTS, labels, session="s", name="notes")
    assert [c.name for c in ws.corpora(sid)] == ["notes"]
    assert ws.corpus(corpus.id) == corpus == ws.find_corpus(sid, "notes")
    with pytest.raises(UserError):
        ws.find_corpus(sid, "missing")
    assert ws.texts(corpus.id) == TEXTS and ws.labels(corpus.id) == labels
    assert [d["idx"] for d in ws.documents(corpus.id, [5, 1])] == [5, 1]
    assert ws.documents(corpus.id, [5])[0]["text"] == TEXTS[5]
    assert [h["idx"] for h in ws.keyword_search(corpus.id, "birds rain")] == [i for i in range(24) if i % 4 == 2]
    ws.delete_corpus(corpus.id)
    assert ws.corpora(sid) == []


def test_label_counts_most_common_first_ties_in_order_of_first_appearance(ws):
    labels = ["b", "a", "b", None, "a", "c", "", "a", "z", "z"] + ["q"] * 14
    _, corpus = stored_corpus(ws.db, TEXTS, labels, session="s")
    counts = ws.label_counts(corpus.id)
    assert list(counts.items()) == [("q", 14), ("a", 3), ("b", 2), ("z", 2), ("c", 1), ("", 1)]
    assert "" not in ws.label_counts(corpus.id, skip_empty=True)
    _, unlabelled = stored_corpus(ws.db, TEXTS, session="s", name="plain")
    assert ws.label_counts(unlabelled.id) == {}


def test_ingest_request_key_changes_with_any_choice():
    base = Workspace.ingest_request_key(b"a,b\n1,2\n", ("name", "a", None, None, [], None))
    assert base == Workspace.ingest_request_key(b"a,b\n1,2\n", ("name", "a", None, None, [], None))
    assert len({base, Workspace.ingest_request_key(b"a,b\n1,3\n", ("name", "a", None, None, [], None)),
                Workspace.ingest_request_key(b"a,b\n1,2\n", ("name", "b", None, None, [], None)),
                Workspace.ingest_request_key(b"a,b\n1,2\n", ("name", "a", None, None, [], "latin-1"))}) == 4


def test_corpora_table_says_which_models_embedded_and_mapped_each_corpus(ws):
    sid, first = stored_corpus(ws.db, TEXTS, ["x", "y"] * 12, session="s", name="first")
    _, second = stored_corpus(ws.db, TEXTS[:20], session="s", name="second")
    embed_corpus(ws.db, first.id, MODEL)
    embed_corpus(ws.db, second.id, MODEL)
    _umap_map(ws.db, first.id, first.content_hash)
    rows = {r["corpus"]: r for r in ws.corpora_table(sid, ["all-MiniLM-L6-v2", MODEL])}
    assert rows["first"] == {"corpus": "first", "documents": 24, "skipped": 0, "label column": "label",
                             "embedded with": MODEL, "UMAP map": MODEL, "source": "test"}
    assert (rows["second"]["embedded with"], rows["second"]["UMAP map"], rows["second"]["label column"]) == \
        (MODEL, "not yet", "—")


def test_model_status_follows_embedding_map_and_jobs(ws):
    sid, corpus = stored_corpus(ws.db, TEXTS, session="s")
    status = ws.model_status(corpus, MODEL)
    assert status.backend is None and (status.embedded, status.mapped, status.working) == (False, False, False)
    job_id, new = jobs.claim_job(ws.db, "embed", embed_params(corpus.id, MODEL), sid)   # a live job of this process
    assert new and ws.model_status(corpus, MODEL).working
    ws.cancel_job(job_id)
    assert not ws.model_status(corpus, MODEL).working
    embed_corpus(ws.db, corpus.id, MODEL)
    assert (ws.model_status(corpus, MODEL).embedded, ws.model_status(corpus, MODEL).mapped) == (True, False)
    _umap_map(ws.db, corpus.id, corpus.content_hash)
    assert (ws.model_status(corpus, MODEL).mapped, ws.model_status(corpus, MODEL).working) == (True, False)


# --- matrices -----------------------------------------------------------------------------------------------


def test_matrix_reads_and_a_reused_id_gets_a_new_cache_key(ws):
    _, corpus = stored_corpus(ws.db, TEXTS, session="s")
    meta = embed_corpus(ws.db, corpus.id, MODEL)
    assert ws.embedding(corpus, MODEL).id == meta.id and ws.matrix(meta.id).cache_key == meta.cache_key
    assert [m.id for m in ws.matrices(corpus, "embedding")] == [meta.id]
    X = ws.load_matrix(meta.id)
    assert X.shape == (len(TEXTS), meta.cols) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    key = ws.matrix_cache_key(meta.id)
    assert key == (ws.path, meta.id, meta.cache_key)
    ws.evict_matrix(meta.id)
    other = save_matrix(ws.db, np.ones((3, 2), np.float32), cache_key="test:other", kind="embedding", model="m",
                        params={}, corpus_id=None, content_hash="h")
    assert other.id == meta.id                         # SQLite gave the evicted matrix's id to a new one...
    assert ws.matrix_cache_key(other.id) != key        # ...and a cache keyed by it would not confuse them
    assert ws.corpus_cache_key(corpus) == (ws.path, corpus.id, corpus.content_hash)


def test_projection_lookup_uses_the_maps_parameters(ws):
    _, corpus = stored_corpus(ws.db, TEXTS, session="s")
    embed_corpus(ws.db, corpus.id, MODEL)
    map_id = _umap_map(ws.db, corpus.id, corpus.content_hash)
    assert ws.projection(corpus.id, MODEL, method="umap").id == map_id
    assert ws.projection(corpus.id, MODEL, method="umap", n_components=3) is None
    assert ws.projection(corpus.id, MODEL, method="pca") is None


# --- labels & bookmarks -------------------------------------------------------------------------------------


def test_label_names_and_bookmarks_round_trip(ws):
    sid, corpus = stored_corpus(ws.db, TEXTS, ["x", "y"] * 12, session="s")
    assert ws.set_label_names(corpus.id, {"x": "Ex", "y": " "}) == {"x": "Ex"}
    assert ws.label_names(corpus.id) == {"x": "Ex"}
    assert ws.add_bookmarks(sid, corpus.id, [3, 1], tag="look", note="n") == 2
    ws.add_bookmarks(sid, corpus.id, [2])
    assert ws.bookmark_tags(sid, corpus.id) == ["", "look"]
    assert [(b["idx"], b["tag"]) for b in ws.bookmarks(sid, corpus.id)] == [(2, ""), (1, "look"), (3, "look")]
    ws.delete_bookmark(sid, corpus.id, 3, "look")
    assert [b["idx"] for b in ws.bookmarks(sid, corpus.id, tag="look")] == [1]


# --- jobs ---------------------------------------------------------------------------------------------------


def test_submitting_a_live_job_again_reuses_it_and_closes_every_connection_it_opened(ws, monkeypatch):
    sid = ws.session_id("s") or ws.session_id(ws.create_session("s"))
    _, corpus = stored_corpus(ws.db, TEXTS, session="s")
    opened = []

    def tracking_connect(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(jobs, "connect", tracking_connect)
    job_id, _ = jobs.claim_job(ws.db, "project", map_params(corpus.id, MODEL), sid)
    assert ws.embed_and_map(corpus.id, MODEL, session_id=sid) == job_id      # reused: no second job, no thread
    assert ws.submit("project", map_params(corpus.id, MODEL), session_id=sid) == job_id
    assert opened and all(_closed(db) for db in opened)
    assert [j.id for j in ws.jobs(sid)] == [job_id] and ws.active_job("project", map_params(corpus.id, MODEL)).id \
        == job_id
    assert ws.jobs(sid, kinds=("embed",)) == []
    ws.cancel_job(job_id)
    assert ws.active_job("project", map_params(corpus.id, MODEL)) is None
    assert [j.status for j in ws.jobs(sid)] == ["cancelled"]
