"""Trust, round three (issue 20, item 2): imported values are checked, and only verified ones are shared.

* Every imported float matrix must be finite in every chunk, and every embedding row unit length (or empty): a
  file that fails is refused whole (exit 2, one line naming the matrix and the first bad row, database unchanged).
* An imported embedding enters the shared cache only when a sample of its documents re-encodes to the same vectors
  (cosine >= 0.999); otherwise it stays private to the imported corpus ("imported, not verified"), with the
  projections derived from it, and no other session ever gets it.
* `cache list` / `cache evict` (and the Sessions page's "Cached matrices") show and remove stored matrices.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from trust_support import cli, refused

import embedlab.tasks  # noqa: F401 - registers the job kinds
from embedlab.corpus import content_hash
from embedlab.diagnostics import diagnose
from embedlab.embedding.cache import cache_key, find_embedding, find_tokens
from embedlab.embedding.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder, TfidfSvdEmbedder
from embedlab.embedding.space import EmbeddingSpace
from embedlab.jobs import run_job
from embedlab.tasks import find_projection
from embedlab.text_display import display_text
from storage import connect
from storage.corpora import find_corpus
from storage.matrices import find_matrix, is_private, list_matrices, load_matrix, private_key, save_matrix, status_label
from storage.sessions import require_session
from embedlab.session_files import import_session_file as import_session
from storage.cache_keys import identity_cache_key
from storage.transfer import export_session
from tests.builders import open_page, stored_corpus

TOPICS = ["apples", "rivers", "stars", "engines", "violins", "glaciers", "markets", "forests", "robots", "islands",
          "volcanoes", "castles", "bridges", "deserts", "comets", "harbours", "gardens", "tunnels", "planets", "oceans"]
TEXTS = [f"{t} near {TOPICS[(i * 7 + 3) % 20]} and {TOPICS[(i * 3 + 1) % 20]}: notes on {t} number {i}"
         for i, t in enumerate(TOPICS)]          # 20 documents: a sample of 16 is a true sample
MODEL = "tfidf-svd"


# --------------------------------------------------------------------------------------------------- builders

def _source(tmp_path: Path, name: str, texts: list[str] = TEXTS, *, project: bool = True) -> Path:
    """A database with session `name` holding corpus 'docs' of `texts`, its tfidf-svd embedding and PCA map."""
    path = tmp_path / f"{name}-src.sqlite"
    db = connect(path)
    sid, info = stored_corpus(db, texts, session=name, name="docs")
    EmbeddingSpace.for_corpus(db, info.id, MODEL).ensure()
    if project:
        run_job(db, "project", {"corpus_id": info.id, "model": MODEL, "method": "pca"}, session_id=sid)
    db.close()
    return path


def _export(src: Path, name: str, out: Path) -> Path:
    db = connect(src)
    try:
        return export_session(db, name, out)
    finally:
        db.close()


def _genuine(tmp_path: Path, name: str = "genuine", **kwargs) -> Path:
    return _export(_source(tmp_path, name, **kwargs), name, tmp_path / f"{name}.sqlite")


def _rewrite(path: Path, kind: str, change) -> np.ndarray:
    """Apply `change` (in place) to the values of the file's matrix of `kind`, keeping its chunk layout and key;
    return the new values."""
    raw = sqlite3.connect(path, isolation_level=None)
    mid, dtype, rows, cols, chunk_rows = raw.execute(
        "SELECT id, dtype, rows, cols, chunk_rows FROM matrices WHERE kind = ?", [kind]).fetchone()
    dt = {"float32": "<f4", "float16": "<f2"}[dtype]
    data = b"".join(d for (d,) in raw.execute("SELECT data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no",
                                              [mid]))
    values = np.frombuffer(data, dt).reshape(rows, cols).copy()
    change(values)
    for no in range(-(-rows // chunk_rows)):
        raw.execute("UPDATE matrix_chunks SET data = ? WHERE matrix_id = ? AND chunk_no = ?",
                    [values[no * chunk_rows:(no + 1) * chunk_rows].astype(dt).tobytes(), mid, no])
    raw.close()
    return values


def _made_up(values: np.ndarray) -> None:
    """Finite unit vectors of the right shape that no model gave."""
    fake = np.random.default_rng(7).standard_normal(values.shape)
    values[:] = fake / np.linalg.norm(fake, axis=1, keepdims=True)


@pytest.fixture
def target(tmp_path) -> Path:
    """The importing database: session 'victim' holds the same texts (not embedded), session 'keep' other ones."""
    path = tmp_path / "lab.sqlite"
    db = connect(path)
    stored_corpus(db, TEXTS, session="victim", name="docs")
    _, other = stored_corpus(db, ["a different corpus", "with its own words", "and a third line"], session="keep",
                             name="other")
    EmbeddingSpace.for_corpus(db, other.id, MODEL).ensure()
    db.close()
    return path


def _corpus(db, session: str):
    return find_corpus(db, require_session(db, session), "docs")


def _no_model_runs(monkeypatch) -> None:
    """From here on, fitting or encoding with tfidf-svd fails the test: every answer must come from the cache."""
    def fail(*_a, **_k):
        raise AssertionError("the model ran: expected a cache hit")

    monkeypatch.setattr(TfidfSvdEmbedder, "fit", fail)
    monkeypatch.setattr(TfidfSvdEmbedder, "encode", fail)


def _import(capsys, db: Path, file: Path) -> str:
    rc, lines, out, _ = cli(capsys, "--db", db, "sessions", "import", file)
    assert rc == 0 and lines == [], lines
    return out


# ------------------------------------------------------------------------------------ values refused, in one line

def _set(row: int, col: int, value: float):
    def change(values: np.ndarray) -> None:
        values[row, col] = value
    return change


def _scale(row: int, factor: float):
    def change(values: np.ndarray) -> None:
        values[row] *= factor
    return change


BAD_VALUES = {
    "NaN in one row": ("embedding", _set(5, 3, np.nan),
                       "the embedding matrix of 'tfidf-svd' for corpus 'docs': row 5 holds NaN"),
    "+inf in the first row": ("embedding", _set(0, 0, np.inf), "row 0 holds +inf"),
    "-inf in the last chunk": ("embedding", _set(19, 1, -np.inf), "row 19 holds -inf"),
    "a row of length 3": ("embedding", _scale(7, 3.0), "row 7 has length 3 (refused: stored embeddings are unit"),
    "a row of length 0.5": ("embedding", _scale(13, 0.5), "row 13 has length 0.5 "),
    "a projection with NaN": ("projection", _set(4, 1, np.nan),
                              "the projection matrix of 'tfidf-svd' for corpus 'docs': row 4 holds NaN"),
    "a projection with +inf in a later chunk": ("projection", _set(17, 0, np.inf), "row 17 holds +inf"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_non_finite_or_unnormalised_values_are_refused(case, capsys, tmp_path, target, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "4")   # 5 chunks per matrix: every chunk is checked
    kind, change, expected = BAD_VALUES[case]
    out = _genuine(tmp_path)
    _rewrite(out, kind, change)
    line = refused(capsys, target, "sessions", "import", out, contains=(expected,))
    assert line.count("row ") == 1, line


@pytest.mark.parametrize("value, expected", [(np.inf, "row 3 holds +inf"), (-np.inf, "row 3 holds -inf"),
                                             (np.nan, "row 3 holds NaN")])
def test_token_embeddings_that_are_not_finite_are_refused(value, expected, capsys, tmp_path, target):
    """Token embeddings (float16, as stored) with a non-finite value: refused like an embedding."""
    path = tmp_path / "tok-src.sqlite"
    db = connect(path)
    texts = ["one document", "two documents"]
    _, info = stored_corpus(db, texts, session="tok", name="docs")
    identity = {"embedder": "fake", "version": 1}
    key = identity_cache_key(identity, content_hash(texts), "tokens")
    tokens = np.full((5, 4), 0.5, np.float32)
    tokens[3, 2] = value
    save_matrix(db, tokens, cache_key=key, kind="tokens", dtype="float16", model="fake", params=identity,
                content_hash=info.content_hash, corpus_id=info.id)
    save_matrix(db, np.array([[0], [3], [5]], np.int64), cache_key=key + ":offsets", kind="token_offsets",
                dtype="int64", params=identity, content_hash=info.content_hash, corpus_id=info.id)
    out = export_session(db, "tok", tmp_path / "tok.sqlite")
    db.close()
    refused(capsys, target, "sessions", "import", out, contains=("the tokens matrix of 'fake' for corpus 'docs'",
                                                                  expected))


# ------------------------------------------------------------------------------------- verified: shared

def test_a_genuine_export_verifies_and_answers_another_sessions_lookup(capsys, tmp_path, target, monkeypatch):
    """A genuine tfidf-svd export re-encodes to the same vectors: it enters the shared cache, and the other session
    of the same texts gets it (and its map) as a cache hit, without running the model."""
    out = _genuine(tmp_path)
    src = connect(tmp_path / "genuine-src.sqlite")
    genuine = load_matrix(src, list_matrices(src, content_hash(TEXTS), "embedding")[0])
    src.close()
    assert "imported session 'genuine'" in _import(capsys, target, out)
    _no_model_runs(monkeypatch)
    rc, _, stdout, _ = cli(capsys, "--db", target, "embed", "--session", "victim", "--corpus", "docs", "--model", MODEL)
    assert rc == 0 and "embedded corpus 'docs'" in stdout
    db = connect(target)
    try:
        victim = _corpus(db, "victim")
        meta = EmbeddingSpace.for_corpus(db, victim.id, MODEL).stored()
        assert meta.cache_key == cache_key(TfidfSvdEmbedder(), victim.content_hash)   # the shared key
        assert status_label(meta.cache_key) == "shared"
        assert load_matrix(db, meta).tobytes() == genuine.tobytes()
        proj = find_projection(db, victim.id, MODEL, method="pca")
        assert proj is not None and not is_private(proj.cache_key)
        assert db.execute("SELECT COUNT(*) FROM matrices WHERE cache_key LIKE 'private:%'").fetchone()[0] == 0
    finally:
        db.close()


# --------------------------------------------------------------------------------- not verified: private

@pytest.mark.parametrize("victim_embedded", [False, True])
def test_made_up_vectors_stay_private_to_the_imported_corpus(victim_embedded, capsys, tmp_path, target,
                                                            monkeypatch):
    """An export with made-up finite unit vectors (and a made-up map) for the same texts imports, labelled
    "imported, not verified", and its own session uses them; the other session of the same texts computes its own
    (or keeps the one it had) and never gets the fake ones, its map included."""
    out = _genuine(tmp_path, "fake")
    fake = _rewrite(out, "embedding", _made_up)
    fake_map = _rewrite(out, "projection", lambda values: values.__iadd__(5.0))
    db = connect(target)
    before = None
    if victim_embedded:
        meta = EmbeddingSpace.for_corpus(db, _corpus(db, "victim").id, MODEL).ensure()
        before = (meta.id, load_matrix(db, meta).tobytes())
    db.close()
    _import(capsys, target, out)

    db = connect(target)
    try:
        mine, victim = _corpus(db, "fake"), _corpus(db, "victim")
        own = find_embedding(db, mine.content_hash, MODEL, mine.id)
        assert own.cache_key == private_key(cache_key(TfidfSvdEmbedder(), mine.content_hash), mine.id)
        assert status_label(own.cache_key) == "imported, not verified"
        assert np.array_equal(load_matrix(db, own), fake)
        own_map = find_projection(db, mine.id, MODEL, method="pca")
        assert is_private(own_map.cache_key) and np.allclose(load_matrix(db, own_map), fake_map)
        # no lookup without this corpus finds them: not the shared key, not a listing of the texts' matrices
        shared = find_embedding(db, victim.content_hash, MODEL)
        assert (shared is None) if not victim_embedded else (shared.id, load_matrix(db, shared).tobytes()) == before
        assert all(not is_private(m.cache_key) for m in list_matrices(db, victim.content_hash))
        assert all(not is_private(m.cache_key) for m in list_matrices(db, victim.content_hash, corpus_id=victim.id))
        assert find_projection(db, victim.id, MODEL, method="pca") is None
    finally:
        db.close()

    # the imported session's own diagnostics use its vectors, from the cache
    with monkeypatch.context() as patched:
        _no_model_runs(patched)
        rc, _, stdout, _ = cli(capsys, "--db", target, "diagnostics", "--session", "fake", "--corpus", "docs",
                               "--model", MODEL)
        assert rc == 0 and json.loads(stdout)["rankme"] == diagnose(fake, model=MODEL)["rankme"]
    # the victim's lookups compute fresh vectors (or keep its own): never the fake ones
    rc, _, _, _ = cli(capsys, "--db", target, "project", "--session", "victim", "--corpus", "docs", "--model", MODEL,
                      "--method", "pca")
    assert rc == 0
    db = connect(target)
    try:
        victim = _corpus(db, "victim")
        X = EmbeddingSpace.for_corpus(db, victim.id, MODEL).documents()
        assert X.shape == fake.shape and not np.allclose(X, fake, atol=0.1)
        if before:
            assert X.tobytes() == before[1]
        victim_map = find_projection(db, victim.id, MODEL, method="pca")
        assert not is_private(victim_map.cache_key) and not np.allclose(load_matrix(db, victim_map), fake_map)
        # the imported corpus still sees its own, not the victim's fresh ones
        mine = _corpus(db, "fake")
        assert np.array_equal(EmbeddingSpace.for_corpus(db, mine.id, MODEL).documents(), fake)
    finally:
        db.close()


def test_an_embedding_of_a_model_not_here_stays_private(capsys, tmp_path, target):
    """A genuine-looking identity of a hub model (not loadable offline): cannot be verified, so private."""
    out = _genuine(tmp_path, "hub", project=False)
    raw = sqlite3.connect(out, isolation_level=None)
    identity = {"embedder": "sentence-transformers", "version": 1, "model": "someone/unknown-model", "weights": None,
                "normalize": True, "max_seq_length": None, "backend": "fp32"}
    raw.execute("UPDATE matrices SET params_json = ?, model = 'someone/unknown-model', cache_key = ?",
                [json.dumps(identity), identity_cache_key(identity, content_hash(TEXTS), "embedding")])
    raw.close()
    _import(capsys, target, out)
    db = connect(target)
    try:
        (m,) = [m for m in list_matrices(db, content_hash(TEXTS), "embedding", corpus_id=_corpus(db, "hub").id)]
        assert status_label(m.cache_key) == "imported, not verified" and m.model == "someone/unknown-model"
        assert list_matrices(db, content_hash(TEXTS), "embedding", corpus_id=_corpus(db, "victim").id) == []
    finally:
        db.close()


def test_the_import_says_why_a_matrix_stays_private(tmp_path, target):
    out = _genuine(tmp_path, "fake")
    _rewrite(out, "embedding", _made_up)
    notes: list[str] = []
    db = connect(target)
    try:
        assert import_session(db, out, notes=notes) == "fake"
        assert import_session(db, _genuine(tmp_path, "genuine"), notes=notes) == "genuine"
    finally:
        db.close()
    assert len(notes) == 2, notes     # the genuine export adds none
    assert notes[0].startswith("the embedding matrix of 'tfidf-svd' for corpus 'docs' is kept private to it "
                               "(imported, not verified): row ")
    assert "cosine" in notes[0] and "(at least 0.999 needed)" in notes[0]
    assert notes[1] == ("the projection matrix of 'tfidf-svd' for corpus 'docs' is kept private to it (imported, "
                        "not verified): the embedding it was derived from is not a verified one of the file")


def test_an_export_of_an_imported_session_is_checked_again(capsys, tmp_path, target):
    """Exported again, the private fake travels under its shared key, and the next import keeps it private again."""
    out = _genuine(tmp_path, "fake", project=False)
    fake = _rewrite(out, "embedding", _made_up)
    _import(capsys, target, out)
    rc, _, _, _ = cli(capsys, "--db", target, "sessions", "export", "fake", tmp_path / "again.sqlite")
    assert rc == 0
    raw = sqlite3.connect(f"file:{tmp_path / 'again.sqlite'}?mode=ro", uri=True)
    assert [r[0] for r in raw.execute("SELECT cache_key FROM matrices")] == \
        [cache_key(TfidfSvdEmbedder(), content_hash(TEXTS))]    # only its own matrix, under the shared key
    raw.close()
    third = tmp_path / "third.sqlite"
    _import(capsys, third, tmp_path / "again.sqlite")
    db = connect(third)
    try:
        (m,) = list_matrices(db, content_hash(TEXTS), "embedding", corpus_id=_corpus(db, "fake").id)
        assert is_private(m.cache_key) and np.array_equal(load_matrix(db, m), fake)
    finally:
        db.close()


def test_deleting_the_imported_session_removes_its_private_matrices(capsys, tmp_path, target):
    out = _genuine(tmp_path, "fake")
    _rewrite(out, "embedding", _made_up)
    _import(capsys, target, out)
    db = connect(target)
    assert db.execute("SELECT COUNT(*) FROM matrices WHERE cache_key LIKE 'private:%'").fetchone()[0] == 2
    kept = db.execute("SELECT id FROM matrices WHERE cache_key NOT LIKE 'private:%' ORDER BY id").fetchall()
    db.close()
    rc, _, stdout, _ = cli(capsys, "--db", target, "sessions", "delete", "fake")
    assert rc == 0 and "deleted session 'fake'" in stdout
    db = connect(target)
    try:
        assert db.execute("SELECT COUNT(*) FROM matrices WHERE cache_key LIKE 'private:%'").fetchone()[0] == 0
        assert db.execute("SELECT id FROM matrices WHERE cache_key NOT LIKE 'private:%' ORDER BY id").fetchall() == kept
    finally:
        db.close()


# --------------------------------------------------------------------------------------- cache list / evict

def _dim(db_path: Path) -> int:
    db = connect(db_path)
    try:
        return list_matrices(db, content_hash(TEXTS), "embedding")[0].cols
    finally:
        db.close()


def test_cache_list_says_what_is_stored_and_who_uses_it(capsys, tmp_path, target):
    out = _genuine(tmp_path, "fake")
    _rewrite(out, "embedding", _made_up)
    rc, _, _, _ = cli(capsys, "--db", target, "embed", "--session", "victim", "--corpus", "docs", "--model", MODEL)
    assert rc == 0
    _import(capsys, target, out)
    d = _dim(target)
    rc, lines, stdout, _ = cli(capsys, "--db", target, "cache", "list")
    assert rc == 0 and lines == []
    assert stdout.splitlines() == [
        f"embedding\ttfidf-svd\t20 x {d}\timported, not verified\tfake / docs",
        f"embedding\ttfidf-svd\t20 x {d}\tshared\tvictim / docs",
        "embedding\ttfidf-svd\t3 x 2\tshared\tkeep / other",
        "projection (pca 2-D)\ttfidf-svd\t20 x 2\timported, not verified\tfake / docs",
    ]
    rc, _, stdout, _ = cli(capsys, "--db", target, "cache", "list", "--session", "victim")
    assert rc == 0 and stdout.splitlines() == [f"embedding\ttfidf-svd\t20 x {d}\tshared\tvictim / docs"]
    # each session counts the one embedding its corpus uses (not the other's private or shadowed one)
    rc, _, stdout, _ = cli(capsys, "--db", target, "sessions", "list")
    assert [line.split("\t")[0] + " " + line.split("\t")[3] for line in stdout.splitlines()] == \
        ["fake embeddings=1", "keep embeddings=1", "victim embeddings=1"]
    # a second session of the same texts shares the shared matrix, never the private one
    db = connect(target)
    stored_corpus(db, TEXTS, session="third", name="same")
    db.close()
    rc, _, stdout, _ = cli(capsys, "--db", target, "cache", "list", "--session", "third")
    assert stdout.splitlines() == [f"embedding\ttfidf-svd\t20 x {d}\tshared\tthird / same, victim / docs"]
    refused(capsys, target, "cache", "list", "--session", "nope", contains=("no session named 'nope'",))


def test_cache_evict_removes_an_embedding_with_its_projections_and_embed_recomputes(capsys, tmp_path, monkeypatch):
    db_path = _source(tmp_path, "s")
    rc, _, _, _ = cli(capsys, "--db", db_path, "project", "--session", "s", "--corpus", "docs", "--model", MODEL,
                      "--method", "pca", "--dims", "3")
    assert rc == 0
    d = _dim(db_path)
    rc, lines, stdout, _ = cli(capsys, "--db", db_path, "cache", "evict", "--session", "s", "--corpus", "docs",
                               "--kind", "projection")
    assert rc == 0 and lines == []
    assert stdout.splitlines() == ["evicted\tprojection (pca 2-D)\ttfidf-svd\t20 x 2\tshared\ts / docs",
                                   "evicted\tprojection (pca 3-D)\ttfidf-svd\t20 x 3\tshared\ts / docs"]
    run_job_db = connect(db_path)
    info = _corpus(run_job_db, "s")
    run_job(run_job_db, "project", {"corpus_id": info.id, "model": MODEL, "method": "pca"}, session_id=info.session_id)
    run_job_db.close()
    refused(capsys, db_path, "cache", "evict", "--session", "s", "--corpus", "docs", "--model", DEFAULT_MODEL,
            contains=(f"no cached matrix of model '{DEFAULT_MODEL}' for corpus 'docs' of session 's'",))
    rc, _, stdout, _ = cli(capsys, "--db", db_path, "cache", "evict", "--session", "s", "--corpus", "docs",
                           "--kind", "embedding")
    assert rc == 0
    assert stdout.splitlines() == [f"evicted\tembedding\ttfidf-svd\t20 x {d}\tshared\ts / docs",
                                   "evicted\tprojection (pca 2-D)\ttfidf-svd\t20 x 2\tshared\ts / docs"]
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM matrices").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM matrix_chunks").fetchone()[0] == 0
    db.close()
    refused(capsys, db_path, "cache", "evict", "--session", "s", "--corpus", "docs",
            contains=("no cached matrix for corpus 'docs' of session 's'",))
    refused(capsys, db_path, "cache", "evict", "--session", "s", "--corpus", "nope", contains=("no corpus named",))
    fits = []
    real_fit = TfidfSvdEmbedder.fit
    monkeypatch.setattr(TfidfSvdEmbedder, "fit", lambda self, corpus: fits.append(1) or real_fit(self, corpus))
    rc, _, stdout, _ = cli(capsys, "--db", db_path, "embed", "--session", "s", "--corpus", "docs", "--model", MODEL)
    assert rc == 0 and fits                                      # recomputed, not a cache hit
    db = connect(db_path)
    assert find_embedding(db, content_hash(TEXTS), MODEL) is not None
    db.close()


def test_evicting_a_private_embedding_leaves_the_shared_one(capsys, tmp_path, target):
    out = _genuine(tmp_path, "fake")
    _rewrite(out, "embedding", _made_up)
    rc, _, _, _ = cli(capsys, "--db", target, "embed", "--session", "victim", "--corpus", "docs", "--model", MODEL)
    _import(capsys, target, out)
    d = _dim(target)
    rc, _, stdout, _ = cli(capsys, "--db", target, "cache", "evict", "--session", "fake", "--corpus", "docs")
    assert rc == 0 and stdout.splitlines() == [
        f"evicted\tembedding\ttfidf-svd\t20 x {d}\timported, not verified\tfake / docs",
        "evicted\tprojection (pca 2-D)\ttfidf-svd\t20 x 2\timported, not verified\tfake / docs"]
    db = connect(target)
    try:
        mine = _corpus(db, "fake")
        shared = find_embedding(db, mine.content_hash, MODEL, mine.id)   # now the shared one, verified by nobody
        assert shared is not None and not is_private(shared.cache_key)
        assert shared.id == find_embedding(db, mine.content_hash, MODEL, _corpus(db, "victim").id).id
    finally:
        db.close()


def test_sessions_page_evicts_a_cached_matrix_after_confirmation(app_env, db, capsys, tmp_path):
    out = _genuine(tmp_path, "fake", project=False)
    _rewrite(out, "embedding", _made_up)
    db.close()
    _import(capsys, app_env, out)
    own = connect(app_env)
    (m,) = list_matrices(own, content_hash(TEXTS), corpus_id=_corpus(own, "fake").id)
    own.close()
    at = open_page("pages/sessions.py", session="fake")
    assert not at.exception
    texts = [x.value for x in at.markdown]
    assert any(display_text("imported, not verified") in t and display_text("fake / docs") in t for t in texts), texts
    at.button(key=f"evict-{m.id}").click().run()
    assert not at.exception
    assert find_matrix(connect(app_env), m.cache_key) is not None     # asked first: nothing removed yet
    at.button(key=f"evict-yes-{m.id}").click().run()
    assert not at.exception
    check = connect(app_env)
    try:
        assert find_matrix(check, m.cache_key) is None
    finally:
        check.close()
    assert any("Evicted" in s.value for s in at.success)


# ------------------------------------------------------------------------------------------ the real model

@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fp32", "bf16"])
def test_a_genuine_minilm_export_verifies(backend, capsys, tmp_path, target, monkeypatch):
    """The bundled all-MiniLM-L6-v2, computed with either backend: its embedding and token embeddings verify and
    answer the other session's lookups."""
    monkeypatch.setenv("EMBEDLAB_BACKEND", backend)
    path = tmp_path / "mini-src.sqlite"
    db = connect(path)
    _, info = stored_corpus(db, TEXTS, session="mini", name="docs")
    EmbeddingSpace.for_corpus(db, info.id, DEFAULT_MODEL).tokens()    # one pass: sentence and token embeddings
    out = export_session(db, "mini", tmp_path / "mini.sqlite")
    db.close()
    monkeypatch.setenv("EMBEDLAB_BACKEND", "bf16" if backend == "fp32" else "fp32")   # the local default differs
    _import(capsys, target, out)
    db = connect(target)
    try:
        victim = _corpus(db, "victim")
        emb = find_embedding(db, victim.content_hash, SentenceTransformerEmbedder(backend=backend), victim.id)
        assert emb is not None and status_label(emb.cache_key) == "shared" and emb.params["backend"] == backend
        tokens = find_tokens(db, victim.content_hash, SentenceTransformerEmbedder(backend=backend), victim.id)
        assert tokens is not None and not is_private(tokens[0].cache_key)
    finally:
        db.close()


@pytest.mark.slow
def test_minilm_vectors_of_either_backend_verify_and_others_do_not():
    """fp32 and bf16 encodings agree within the bound both ways; shuffled rows do not."""
    from embedlab.embedding.verify import verify_embedding

    rows = np.arange(len(TEXTS))
    for claimed, computed in (("fp32", "bf16"), ("bf16", "fp32")):
        identity = SentenceTransformerEmbedder(backend=claimed).identity()
        vectors = SentenceTransformerEmbedder(backend=computed).encode(TEXTS)
        assert verify_embedding(identity, lambda: TEXTS, rows, TEXTS, vectors).verified
        verdict = verify_embedding(identity, lambda: TEXTS, rows, TEXTS, vectors[::-1])
        assert not verdict.verified and "cosine" in verdict.reason
