"""Imported vectors on the pages: listed as "NAME (imported)" in the Corpora table and the Atlas model picker, the
Atlas's semantic search off with its one-line reason, the Corpora page's ingestion with vectors (one transaction)
and its download of vectors with the map."""
from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.vectors_form import VectorsChoice, ingest_with_vectors, vector_columns
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import UserError
from embedlab.projection import projection_params
from embedlab.tasks import projection_key
from embedlab.text_display import display_text
from embedlab.workspace import Workspace
from storage import connect
from storage.corpora import find_corpus
from storage.matrices import save_matrix
from storage.sessions import get_session_id
from tests.builders import open_page, planted_blobs
from tests.trust_support import cli, db_state

MODEL = "ada-002 (imported)"


@pytest.fixture
def imported(capsys, app_env, tmp_path):
    """Corpus "notes" of session "s": 40 documents with imported vectors "ada-002" (no query encoder) and a
    stand-in default (UMAP) map."""
    X, truth = planted_blobs(10, 4, dim=12, seed=1)
    csv = tmp_path / "notes.csv"
    csv.write_text("text,label\n" + "".join(f"{json.dumps(f'note {i}')},{'abcd'[t]}\n" for i, t in enumerate(truth)))
    np.save(tmp_path / "x.npy", X)
    rc, err, _, _ = cli(capsys, "--db", app_env, "ingest", csv, "--session", "s", "--vectors", tmp_path / "x.npy",
                        "--vectors-model", "ada-002")
    assert rc == 0, err
    db = connect(app_env)
    info = find_corpus(db, get_session_id(db, "s"), "notes")
    params = projection_params(method="umap")
    save_matrix(db, np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32),
                cache_key=projection_key(db, info.id, MODEL, params), kind="projection", model=MODEL, params=params,
                corpus_id=info.id, content_hash=info.content_hash)
    db.close()
    return app_env


def test_the_corpora_table_and_model_picker_list_imported_vectors(imported):
    at = open_page(session="s")
    assert not at.exception, at.exception
    (table,) = [df.value for df in at.dataframe if "embedded with" in df.value.columns]
    row = table.iloc[0]
    assert (row["corpus"], row["embedded with"], row["UMAP map"]) == ("notes", MODEL, MODEL)
    picker = at.selectbox[[s.label for s in at.selectbox].index("Model")]
    assert MODEL in picker.options
    picker.select(MODEL).run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == [f"Embedded with {display_text(MODEL)}."]
    assert [b.label for b in at.button if b.label == "Open the map on the Atlas"]
    downloads = at.get("download_button")
    assert len(downloads) == 1 and "Download vectors and map (Parquet)" in str(downloads[0].proto)


def test_the_atlas_picks_imported_vectors_and_turns_semantic_search_off_with_its_reason(imported):
    at = open_page("pages/atlas.py", session="s")
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_model").options == [MODEL] and at.selectbox(key="atlas_model").value == MODEL
    reasons = [c.value for c in at.caption if c.value.startswith("Semantic search is off")]
    assert reasons == ["Semantic search is off: " + display_text(
        "ada-002 (imported) needs a query encoder to embed new texts (queries, test texts): re-ingest the corpus with "
        "--query-model NAME, the sentence-transformers model (name or path) that made the vectors")]
    (mode,) = [w for w in at.get("button_group") if w.proto.label == "Search mode"]
    assert [o.content for o in mode.proto.options] == ["Keyword"]
    at.text_input(key="atlas_query").input("note").run()      # keyword search still finds documents
    assert not at.exception and not at.error


def test_the_corpora_page_ingests_a_table_with_its_vector_column_in_one_transaction(db, db_path, session_id):
    X = planted_blobs(6, 2, dim=8, seed=2)[0]
    sink = io.BytesIO()
    pq.write_table(pa.table({"text": [f"doc {i}" for i in range(12)], "label": ["x", "y"] * 6,
                             "emb": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 8)}), sink)
    data = sink.getvalue()
    ws = Workspace(db_path, db=db)
    table = pq.read_table(io.BytesIO(data)).to_pandas()
    assert vector_columns(table) == ["emb"]
    bad = VectorsChoice(column="emb", data=None, filename=None, name="m", query_model="tfidf-svd")
    before = db_state(db_path)
    with pytest.raises(UserError, match="fitted on a corpus"):
        ingest_with_vectors(ws, session_id, data, "t.parquet", bad, name="t")
    assert db_state(db_path) == before
    good = VectorsChoice(column="emb", data=None, filename=None, name="m", query_model=None)
    info, loaded = ingest_with_vectors(ws, session_id, data, "t.parquet", good, name="t")
    assert (info.n_docs, loaded.dim, ws.imported_models(info)) == (12, 8, ["m (imported)"])
    stored = EmbeddingSpace.for_corpus(db, info.id, "m (imported)").documents()
    np.testing.assert_allclose(stored, X / np.linalg.norm(X, axis=1, keepdims=True), atol=1e-6)
    exported = pq.read_table(io.BytesIO(ws.vectors_parquet(info)))
    assert np.array_equal(np.stack(exported.column("vector").to_numpy(zero_copy_only=False)), stored)


def _shown(at) -> dict:
    return {"tables": [d.value for d in at.dataframe], "metrics": [m.label for m in at.metric],
            "buttons": [b.label for b in at.button]}


TAB_CHECKS = {
    "🧩 Clusters": lambda shown: any(list(t.columns) == ["cluster", "size", "keywords"] for t in shown["tables"]),
    "⚖️ Compare": lambda shown: display_text("Embed with tfidf-svd") in shown["buttons"],
    "🗜️ Compression": lambda shown: {"dense", "int8-rescore", "binary-rescore"} <= set(shown["metrics"]),
    "🩺 Diagnostics": lambda shown: any("rankme" in t.columns and list(t["model"]) == [MODEL]
                                       for t in shown["tables"]),
}


@pytest.mark.parametrize("tab", list(TAB_CHECKS))
def test_the_atlas_tabs_work_on_imported_vectors(imported, tab):
    at = open_page("pages/atlas.py", session="s", state={"atlas_tab": tab, "atlas_focus": 3})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert TAB_CHECKS[tab](_shown(at))
