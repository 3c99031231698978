"""The Corpora page's vectors: bring your own vectors with an uploaded table (a column of it, or a matrix file beside
it), name their model and, optionally, the query encoder that made them; and download a corpus's vectors with its
map as Parquet."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from embedlab.embedding.imported import DEFAULT_VECTORS_MODEL, check_query_model, clean_vectors_name, imported_model
from embedlab.ingest import VECTOR_FILE_TYPES, CorpusVectors, load_corpus_with_vectors_bytes
from embedlab.text_display import display_text
from embedlab.workspace import CorpusInfo, Workspace

NONE = "(none)"


@dataclass(frozen=True)
class VectorsChoice:
    """Where the vectors come from (a column, or a file's bytes) and what they are."""
    column: str | None
    data: bytes | None
    filename: str | None
    name: str
    query_model: str | None

    @property
    def model(self) -> str:
        """The model name they are listed under: "NAME (imported)"."""
        return imported_model(self.name)

    def request_key(self) -> tuple:
        """What identifies the choice in an ingestion request (a double click ingests once)."""
        digest = Workspace.ingest_request_key(self.data, ()) if self.data is not None else None
        return self.column, self.filename, digest, self.name, self.query_model


def vector_columns(table: pd.DataFrame) -> list[str]:
    """Columns whose first non-missing value is a list of values (a Parquet list column, a JSON array)."""
    found = []
    for col in table.columns:
        first = next((v for v in table[col].head(50).tolist() if v is not None), None)
        if isinstance(first, (list, tuple, np.ndarray)):
            found.append(str(col))
    return found


def vectors_inputs(table: pd.DataFrame) -> VectorsChoice | None:
    """The "Vectors (optional)" inputs under the column pickers; None when no vectors are given."""
    with st.expander("Vectors (optional): bring your own", expanded=bool(vector_columns(table))):
        candidates = vector_columns(table)
        c1, c2 = st.columns(2)
        column = c1.selectbox("Vectors column", [NONE, *candidates], index=1 if candidates else 0,
                              key="corpora_vectors_col",
                              help="A column holding one list of numbers per row (Parquet list, JSON array).")
        upload = c2.file_uploader("…or a matrix file beside the table, row-aligned", type=list(VECTOR_FILE_TYPES),
                                  key="corpora_vectors_file",
                                  help=".npy, .npz (one array), or the TensorFlow Projector's vectors.tsv beside its "
                                       "metadata.tsv (uploaded above). Row i is the table's data row i.")
        c3, c4 = st.columns(2)
        name = c3.text_input("Their model's name", value=DEFAULT_VECTORS_MODEL, key="corpora_vectors_model",
                             help="Free text (e.g. text-embedding-3-small): listed as “NAME (imported)”.")
        query_model = c4.text_input("Query encoder (optional)", key="corpora_query_model",
                                    placeholder="e.g. all-MiniLM-L6-v2",
                                    help="The sentence-transformers model (name or path) that made the vectors: "
                                         "it encodes queries and new texts. Without it, semantic search, BEIR "
                                         "retrieval and new test texts are off.").strip() or None
        if upload is None and column == NONE:
            return None
        st.caption("Vectors align with the file's rows: a document skipped for an empty text drops its vector.")
        return VectorsChoice(column=None if column == NONE else column,
                             data=upload.getvalue() if upload is not None else None,
                             filename=upload.name if upload is not None else None,
                             name=name, query_model=query_model)


def ingest_with_vectors(ws: Workspace, session_id: int, data: bytes, filename: str, choice: VectorsChoice,
                        **columns) -> tuple[CorpusInfo, CorpusVectors]:
    """Read, check (the query encoder is loaded once to check its dimension) and store the corpus with its vectors
    in one transaction; a UserError says why not, and nothing is written."""
    name = clean_vectors_name(choice.name)
    loaded = load_corpus_with_vectors_bytes(data, filename, vectors_col=choice.column, vectors_data=choice.data,
                                            vectors_filename=choice.filename, **columns)
    query = check_query_model(choice.query_model, loaded.dim) if choice.query_model else None
    return ws.save_corpus_with_vectors(session_id, loaded, name=name, query_model=query), loaded


def vectors_download(ws: Workspace, corpus: CorpusInfo, model: str) -> None:
    """A button that downloads the corpus's vectors under `model` with its 2-D map, as Parquet (built when
    clicked)."""
    def parquet() -> bytes:
        return ws.vectors_parquet(corpus, model)

    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in corpus.name)[:80] or "corpus"
    st.download_button("Download vectors and map (Parquet)", parquet, file_name=f"{stem}-vectors.parquet",
                       mime="application/vnd.apache.parquet", on_click="ignore", icon=":material/download:",
                       key="corpora_vectors_download",
                       help=display_text(f"doc_id, text, label, the {model} vector and the map's x, y (null without "
                                         "a map): ready for another tool, or `ingest --vectors-col vector`."))
