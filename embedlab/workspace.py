"""The UI's one door to a database: sessions, corpora, embeddings and maps, runs, label names, bookmarks and jobs.

Pages and components read and write through a `Workspace` and import nothing from `storage`; each method is a
small delegation to a storage or engine function (which stay the CLI's and the tests' way in).

Connection. A `Workspace` owns one SQLite connection, opened on first use (or at once with `Workspace.open`) and
closed by `close()` or by leaving a `with` block. The app keeps one per browser session (`components.state.
get_workspace`: one user's transactions never interleave with another's); code that runs outside that session's
script thread, or is shared by every user (a `st.cache_*` function, a download callback), opens its own with
`with Workspace.open(path) as ws:`. Background jobs always open their own connection (`jobs.submit_job`).

Caching rules: what a UI may keep between reruns, and under which key (see `components/data.py`).
- A finished matrix (embedding, tokens, projection) never changes: cache it by `matrix_cache_key(id)`, which
  carries the matrix's cache key, because SQLite may give an evicted matrix's id to a new one.
- A corpus's documents (texts, labels, doc ids, metadata) never change after ingestion: cache them by
  `corpus_cache_key(corpus)` = (path, corpus id, content hash): a deleted corpus's id may be reused.
- A stored run never changes: cache it by (path, run id, created_at).
- Everything else changes under the user (the lists of sessions, corpora, runs and jobs, label names, bookmarks,
  notes, which matrices exist): read it fresh on each rerun; it is one indexed query.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import sqlite_utils

# Job functions are called as `jobs.<function>` (tests stub `embedlab.jobs.submit_job`); importing `tasks` registers
# the job kinds "embed", "tokens" and "project".
from embedlab import jobs, tasks
from embedlab.datasets import load_sample
from embedlab.embedding.cache import find_embedding, find_tokens
from embedlab.embedding.embedders import Embedder, available_models
from embedlab.embedding.imported import ImportedVectors, embedder_for, imported_models, save_with_vectors
from embedlab.errors import UserError
from embedlab.jobs import Job
from embedlab.judgment_files import QRELS_NAME, QUERIES_NAME, qrels_tsv, queries_jsonl
from embedlab.judgment_pool import DEFAULT_POOL_METHODS, Pool, judgment_pool, pool_queries, rank_systems
from embedlab.judgments import (Agreement, JudgedQuery, JudgmentRow, Query, agreement, clear, grades_of,
                                judge_names, judged_queries, judgment_counts, judgments, record, session_qrels)
from embedlab.ingest import CorpusVectors
from embedlab.ood.run_reading import resolve_run_corpora
from embedlab.report import build_report
from embedlab.runs import OODRun, Run, RunHeader, job_of_run, list_runs, load_run
from embedlab.session_files import import_session_file
from embedlab.vectors_export import vectors_parquet
from storage.bookmarks import add_bookmarks, bookmark_tags, delete_bookmark, list_bookmarks
from storage.cache_admin import CachedMatrix, cached_matrices, evict_matrix
from storage.corpora import (
    CorpusInfo,
    CorpusLike,
    delete_corpus,
    find_corpus,
    get_corpus,
    keyword_search,
    list_corpora,
    load_documents,
    load_labels,
    load_texts,
    save_corpus,
)
from storage.db import connect, default_db_path, is_read_only
from storage.export_options import OMITTABLE as EXPORT_OMITTABLE
from storage.export_options import RECOMPUTE_NOTE as EXPORT_RECOMPUTE_NOTE
from storage.export_options import (
    ExportPart,
    describe_run_numbers,
    export_bytes,
    export_contents,
    imported_run_numbers,
)
from storage.label_names import get_label_names, parse_label_names, set_label_names
from storage.matrices import MatrixMeta, get_matrix, list_matrices, load_matrix
from storage.sessions import (
    SessionSummary,
    clean_name,
    create_session,
    delete_session,
    duplicate_session,
    get_notes,
    get_session_id,
    list_sessions,
    rename_session,
    set_notes,
)

# Re-exported for the UI, which imports nothing from storage: the corpus record, what an export may leave out (and
# why that is safe). Sizes read as `embedlab.formatting.format_size` writes them.
__all__ = ["EXPORT_OMITTABLE", "EXPORT_RECOMPUTE_NOTE", "CorpusInfo", "ImportResult", "ModelStatus", "Workspace",
           "embed_params"]


@dataclass(frozen=True)
class ImportResult:
    """What importing a session file did: the session's name, and what to tell the user."""
    name: str
    run_numbers: dict[int, int]          # run number in the file -> number here
    unverified: list[str] = field(default_factory=list)   # matrices kept private ("imported, not verified")

    @property
    def renumbered(self) -> str:
        """"Runs renumbered (file → here): #1 → #7." when numbers moved, else ""."""
        return describe_run_numbers(self.run_numbers)


@dataclass(frozen=True)
class ModelStatus:
    """A corpus under one model, as the Corpora page shows it."""
    embedded: bool
    mapped: bool               # its UMAP map is stored (False when not embedded)
    working: bool              # an embed or map job for it runs (False when mapped)
    backend: str | None        # the embedder's backend (e.g. "fp32"), if it has one


class Workspace:
    """A database as the UI sees it. Open one per browser session (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, db: sqlite_utils.Database | None = None) -> None:
        self.path = str(path)
        self._db = db

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Workspace:
        """A workspace on `path` (default: `default_path()`) with its connection opened now: a database that
        cannot be opened raises a UserError here, not on first use."""
        ws = cls(path if path is not None else cls.default_path())
        ws.db  # noqa: B018 - opens the connection
        return ws

    @staticmethod
    def default_path() -> str:
        """`$EMBEDLAB_DB`, else data/embedlab.sqlite (as the CLI's --db)."""
        return str(default_db_path())

    @property
    def db(self) -> sqlite_utils.Database:
        """The connection (opened on first use). For engine functions that take one; pages use the methods."""
        if self._db is None:
            self._db = connect(self.path)
        return self._db

    @property
    def read_only(self) -> bool:
        return is_read_only(self.db)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Workspace:  # noqa: PYI034 - not subclassed
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- cache keys (see "Caching rules" above) ---

    def corpus_cache_key(self, corpus: CorpusInfo) -> tuple[str, int, str]:
        """The key under which a corpus's documents may be cached: (path, id, content hash)."""
        return self.path, int(corpus.id), corpus.content_hash

    def matrix_cache_key(self, matrix_id: int) -> tuple[str, int, str]:
        """The key under which a finished matrix may be cached: (path, id, its storage cache key)."""
        return self.path, int(matrix_id), get_matrix(self.db, int(matrix_id)).cache_key

    # --- sessions ---

    def sessions(self) -> list[SessionSummary]:
        """Every session with its counts, sorted by name."""
        return list_sessions(self.db)

    def session_id(self, name: str) -> int | None:
        return get_session_id(self.db, name)

    def create_session(self, name: str) -> str:
        """Create a session; return its name as stored (trimmed). A bad or taken name raises a UserError."""
        create_session(self.db, name)
        return clean_name(name)

    def rename_session(self, old: str, new: str) -> str:
        """Rename a session; return the new name as stored."""
        rename_session(self.db, old, new)
        return clean_name(new)

    def duplicate_session(self, name: str) -> str:
        """Copy a session (corpora, runs, bookmarks; matrices are shared); return the copy's name."""
        return duplicate_session(self.db, name)

    def delete_session(self, name: str) -> None:
        delete_session(self.db, name)

    def notes(self, name: str) -> str:
        return get_notes(self.db, name)

    def set_notes(self, name: str, notes: str) -> None:
        set_notes(self.db, name, notes)

    def export_contents(self, name: str) -> list[ExportPart]:
        """What an export of the session holds, part by part, with sizes and what may be left out."""
        return export_contents(self.db, name)

    def export_bytes(self, name: str, *, without: Iterable[str] = ()) -> bytes:
        """The session as an exported .sqlite file, built now from the database as it is (any thread)."""
        return export_bytes(self.path, name, without=without)

    def report_html(self, name: str) -> str:
        """The session's self-contained HTML report, built now on a connection of its own (any thread)."""
        with Workspace.open(self.path) as own:
            return build_report(own.db, name)

    def import_session_bytes(self, data: bytes) -> ImportResult:
        """Import an exported session file's bytes (as a new session; a taken name gets a suffix)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.sqlite"
            path.write_bytes(data)
            notes: list[str] = []
            name = import_session_file(self.db, path, notes=notes)
            numbers = imported_run_numbers(self.db, path, name)
        return ImportResult(name=name, run_numbers=numbers, unverified=notes)

    def cached_matrices(self, session: str) -> list[CachedMatrix]:
        """The stored matrices this session's corpora use (embeddings, tokens, maps), with their users."""
        return cached_matrices(self.db, session)

    def evict_matrix(self, matrix_id: int) -> list[CachedMatrix]:
        """Remove a stored matrix for every corpus that uses it (an embedding with its maps); return what went."""
        return evict_matrix(self.db, matrix_id)

    # --- corpora ---

    def corpora(self, session_id: int) -> list[CorpusInfo]:
        return list_corpora(self.db, session_id)

    def corpus(self, corpus_id: int) -> CorpusInfo:
        return get_corpus(self.db, corpus_id)

    def find_corpus(self, session_id: int, name: str) -> CorpusInfo:
        """The session's corpus of this name (a UserError when there is none)."""
        return find_corpus(self.db, session_id, name)

    def save_corpus(self, session_id: int, corpus: CorpusLike) -> CorpusInfo:
        """Store an ingested corpus (a taken name gets a suffix)."""
        return save_corpus(self.db, session_id, corpus)

    def load_sample(self, session_id: int, name: str) -> CorpusInfo:
        """Ingest a bundled sample (the corpus already there when it was loaded before)."""
        return load_sample(self.db, session_id, name)

    def delete_corpus(self, corpus_id: int) -> None:
        delete_corpus(self.db, corpus_id)

    def documents(self, corpus_id: int, idxs: Sequence[int] | None = None) -> list[dict]:
        """Documents as dicts (idx, doc_id, text, label, meta), in index order or in the order of `idxs`."""
        return load_documents(self.db, corpus_id, idxs)

    def texts(self, corpus_id: int) -> list[str]:
        return load_texts(self.db, corpus_id)

    def labels(self, corpus_id: int) -> list[str | None]:
        return load_labels(self.db, corpus_id)

    def label_counts(self, corpus_id: int, *, skip_empty: bool = False) -> dict[str, int]:
        """How many documents carry each label (documents without one are not counted; with `skip_empty`, nor
        those whose label is ""), most common first, ties in order of first appearance."""
        skipped = (None, "") if skip_empty else (None,)
        return dict(Counter(str(v) for v in self.labels(corpus_id) if v not in skipped).most_common())

    def keyword_search(self, corpus_id: int, query: str, limit: int = 50) -> list[dict]:
        """Full-text (FTS5) search of a corpus's documents."""
        return keyword_search(self.db, corpus_id, query, limit)

    @staticmethod
    def ingest_request_key(data: bytes, choices: Sequence[Any]) -> str:
        """One key per uploaded file and choice of columns/name/encoding: a page remembers which corpus each key
        made, so that a double click ingests once."""
        return hashlib.sha256(data + repr(tuple(choices)).encode()).hexdigest()

    def corpora_table(self, session_id: int, models: Sequence[str]) -> list[dict[str, Any]]:
        """The Corpora page's table: one row per corpus, with the models it is embedded with and mapped (UMAP)."""
        rows = []
        for c in self.corpora(session_id):
            done = [m for m in models if self.embedding(c, m) is not None] + self.imported_models(c)
            mapped = [m for m in done if self.projection(c.id, m, method="umap") is not None]
            rows.append({"corpus": c.name, "documents": c.n_docs, "skipped": c.n_skipped,
                         "label column": c.label_col or "—", "embedded with": ", ".join(done) or "not yet",
                         "UMAP map": ", ".join(mapped) or "not yet", "source": c.source})
        return rows

    def model_status(self, corpus: CorpusInfo, model: str) -> ModelStatus:
        """Whether a corpus is embedded and mapped under `model`, or being worked on. An unknown model raises a
        UserError (the model is not loaded)."""
        embedder = embedder_for(self.db, model, corpus.content_hash, corpus.id)
        embedded = find_embedding(self.db, corpus.content_hash, embedder, corpus.id) is not None
        mapped = embedded and self.projection(corpus.id, model, method="umap") is not None
        working = not mapped and (self.active_job("project", tasks.map_params(corpus.id, model)) is not None
                                  or self.active_job("embed", embed_params(corpus.id, model)) is not None)
        return ModelStatus(embedded=embedded, mapped=mapped, working=working,
                           backend=getattr(embedder, "backend", None))

    # --- matrices ---

    def embedding(self, corpus: CorpusInfo, model: str | Embedder) -> MatrixMeta | None:
        """The finished embedding this corpus uses under `model` (its private copy, else the shared one)."""
        return find_embedding(self.db, corpus.content_hash, model, corpus.id)

    def tokens(self, corpus: CorpusInfo, model: str | Embedder) -> tuple[MatrixMeta, MatrixMeta] | None:
        """(token matrix, offsets) this corpus uses under `model`, if both are stored."""
        return find_tokens(self.db, corpus.content_hash, model, corpus.id)

    def projection(self, corpus_id: int, model: str, **params: Any) -> MatrixMeta | None:
        """The finished projection (`embedlab.projection.projection_params(**params)`) of a corpus's embedding."""
        return tasks.find_projection(self.db, corpus_id, model, **params)

    def matrices(self, corpus: CorpusInfo, kind: str | None = None) -> list[MatrixMeta]:
        """The finished matrices (of one kind) this corpus sees: shared ones and its private ones."""
        return list_matrices(self.db, corpus.content_hash, kind, corpus_id=corpus.id)

    def matrix(self, matrix_id: int) -> MatrixMeta:
        return get_matrix(self.db, matrix_id)

    def load_matrix(self, matrix_id: int) -> np.ndarray:
        """A finished matrix's values (a fresh array: cache it by `matrix_cache_key`)."""
        return load_matrix(self.db, matrix_id)

    # --- runs --- (helper "runs": typed runs, `embedlab.runs`; a stored run never changes)

    def runs(self, session_id: int, kind: str | None = None) -> list[RunHeader]:
        """The session's retrieval and OOD runs (of one kind), newest first, without their details."""
        return list_runs(self.db, session_id, kind)

    def run(self, run_id: int) -> Run:
        """One stored run with its details (a RetrievalRun or an OODRun; older runs are migrated as they are read).
        Cache it by (path, run id, created_at)."""
        return load_run(self.db, run_id)

    def job_of_run(self, run: RunHeader) -> int | None:
        """The number of the job that stored the run, while that job is kept (not for CLI or imported runs)."""
        return job_of_run(self.db, run)

    def run_corpora(self, run: OODRun) -> dict[int, CorpusInfo | None]:
        """{corpus id as the OOD run names it: where those documents are stored now, or None}."""
        return resolve_run_corpora(self.db, run)

    def run_test_documents(self, run: OODRun) -> dict[tuple[int, int], dict]:
        """The stored documents of an OOD run's test set by (corpus id as in the run, idx); documents of a corpus
        that is no longer stored are absent."""
        stored = self.run_corpora(run)
        wanted: dict[int, list[int]] = {}
        for cid, idx in run.test_idx:
            wanted.setdefault(int(cid), []).append(int(idx))
        return {(cid, d["idx"]): d for cid, idxs in wanted.items() if stored.get(cid) is not None
                for d in load_documents(self.db, stored[cid].id, idxs)}

    # --- labels & bookmarks ---

    def label_names(self, corpus_id: int) -> dict[str, str]:
        """The names the user gave a corpus's labels (stored label -> shown name)."""
        return get_label_names(self.db, corpus_id)

    def set_label_names(self, corpus_id: int, names: Mapping[str, str | None]) -> dict[str, str]:
        """Store label names (None or "" removes one); return them as stored."""
        return set_label_names(self.db, corpus_id, names)

    def bookmarks(self, session_id: int, corpus_id: int, *, tag: str | None = None) -> list[dict]:
        """Bookmarks of a corpus in this session (idx, tag, note), by tag then index."""
        return list_bookmarks(self.db, session_id, corpus_id, tag=tag)

    def bookmark_tags(self, session_id: int, corpus_id: int) -> list[str]:
        return bookmark_tags(self.db, session_id, corpus_id)

    def add_bookmarks(self, session_id: int, corpus_id: int, idxs: Iterable[int], *, tag: str = "",
                      note: str = "") -> int:
        """Bookmark documents under a tag; return how many."""
        return add_bookmarks(self.db, session_id, corpus_id, idxs, tag=tag, note=note)

    def delete_bookmark(self, session_id: int, corpus_id: int, idx: int, tag: str) -> None:
        delete_bookmark(self.db, session_id, corpus_id, idx, tag)

    # --- judgments --- (helper "judgments-engine": `embedlab.judgments`, `embedlab.judgment_pool`; read fresh)

    def judge(self, session_id: int, corpus_id: int, query: Query, doc_idx: int, grade: int, judge: str) -> None:
        """Keep `judge`'s grade (2 relevant, 1 partly, 0 not relevant) of a document for a query (`Query.document
        (idx)` or `Query.typed(text)`), replacing that judge's earlier grade of the pair."""
        record(self.db, session_id, corpus_id, query, doc_idx, grade, judge)

    def unjudge(self, session_id: int, corpus_id: int, query: Query, doc_idx: int, judge: str) -> bool:
        """Remove `judge`'s grade of a pair; whether there was one."""
        return clear(self.db, session_id, corpus_id, query, doc_idx, judge)

    def judgments(self, session_id: int, corpus_id: int | None = None, *, judges: Sequence[str] | None = None,
                  query: Query | None = None, doc_idxs: Sequence[int] | None = None) -> list[JudgmentRow]:
        """Stored judgments (filtered), in the order they were first made."""
        return judgments(self.db, session_id, corpus_id, judges=judges, query=query, doc_idxs=doc_idxs)

    def grades_of(self, session_id: int, corpus_id: int, query: Query, judge: str,
                  doc_idxs: Sequence[int] | None = None) -> dict[int, int]:
        """{document index: grade} `judge` gave for `query`: the marks a list of results shows."""
        return grades_of(self.db, session_id, corpus_id, query, judge, doc_idxs)

    def judged_queries(self, session_id: int, corpus_id: int, *,
                       judges: Sequence[str] | None = None) -> list[JudgedQuery]:
        """The corpus's judged queries with their counts (judged, relevant) and judges."""
        return judged_queries(self.db, session_id, corpus_id, judges=judges)

    def judge_names(self, session_id: int, corpus_id: int | None = None) -> list[str]:
        return judge_names(self.db, session_id, corpus_id)

    def judgment_counts(self, session_id: int) -> list[dict[str, Any]]:
        """Per corpus and judge: judgments, queries, relevant ones, last time."""
        return judgment_counts(self.db, session_id)

    def judgment_agreement(self, session_id: int, corpus_id: int, judge_a: str, judge_b: str) -> Agreement:
        """Two judges on their shared pairs: counts, raw agreement, Cohen's kappa and the pairs they disagree on."""
        return agreement(self.db, session_id, corpus_id, judge_a, judge_b)

    def judgment_pool(self, session_id: int, corpus_id: int, *, source: str = "judged", n_queries: int = 20,
                      seed: int = 0, texts: Sequence[str] = (), methods: Sequence[str] = DEFAULT_POOL_METHODS,
                      models: Sequence[str] | None = None, depth: int = 10, judges: Sequence[str] | None = None,
                      progress: Any = None) -> Pool:
        """What to judge next: the top `depth` of each method under each model (default: the models the corpus is
        embedded with) pooled for a query set ("judged", "sample" of `n_queries` documents, or "typed" `texts`),
        unjudged pairs first where the systems disagree most, with judged@10 per system."""
        if models is None:
            models = self.embedded_models(self.corpus(corpus_id)) or None
        return judgment_pool(self.db, session_id, corpus_id, source=source, n_queries=n_queries, seed=seed,
                             texts=texts, methods=methods, models=models, depth=depth, judges=judges,
                             progress=progress)

    def judgment_files(self, session_id: int, corpus_id: int, *,
                       judges: Sequence[str] | None = None) -> dict[str, str]:
        """{"qrels.tsv": TREC qrels, "queries.jsonl": BEIR queries} of a corpus's judgments, for downloads."""
        sq = session_qrels(self.db, session_id, corpus_id, judges=judges)
        return {QRELS_NAME: qrels_tsv(sq), QUERIES_NAME: queries_jsonl(sq)}

    # (judgments-ui) the Atlas's pool keeps its rankings between reruns and reads the grades fresh; a run's queries
    def pool_queries(self, session_id: int, corpus_id: int, source: str, *, n_queries: int = 20, seed: int = 0,
                     texts: Sequence[str] = (), judges: Sequence[str] | None = None) -> list[Query]:
        """A pool's query set ("judged", "sample", "typed"): `embedlab.judgment_pool.pool_queries`."""
        return pool_queries(self.db, session_id, corpus_id, source, n_queries=n_queries, seed=seed, texts=texts,
                            judges=judges)

    def pool_rankings(self, corpus_id: int, queries: Sequence[Query], methods: Sequence[str],
                      models: Sequence[str], k: int) -> dict[str, list[list[int]]]:
        """{system: per query its top-k rows}: `embedlab.judgment_pool.rank_systems` (pool with `build_pool`)."""
        return rank_systems(self.db, corpus_id, queries, methods, models, k)

    def judged_query_ids(self, session_id: int, corpus_id: int) -> dict[str, Query]:
        """{query id as a "My judgments" run names it: the query} of a corpus's judged queries."""
        return dict(session_qrels(self.db, session_id, corpus_id).queries)

    # --- jobs ---

    def submit(self, kind: str, params: dict, *, session_id: int | None = None) -> int:
        """Start a background job (its own connection and thread); a live identical job is reused."""
        return jobs.submit_job(self.path, kind, params, session_id=session_id)

    def embed_and_map(self, corpus_id: int, model: str, *, session_id: int) -> int:
        """"Embed and map": one job that embeds (unless stored) and makes the default UMAP map."""
        return self.submit("project", tasks.map_params(corpus_id, model), session_id=session_id)

    def embed(self, corpus_id: int, model: str, *, session_id: int) -> int:
        return self.submit("embed", embed_params(corpus_id, model), session_id=session_id)

    def jobs(self, session_id: int, *, kinds: Sequence[str] | None = None, limit: int = 20) -> list[Job]:
        """The session's latest jobs (of these kinds), newest first."""
        found = jobs.list_jobs(self.db, session_id=session_id, limit=limit)
        return [j for j in found if kinds is None or j.kind in kinds]

    def active_job(self, kind: str, params: dict) -> Job | None:
        """A queued or running job of this kind and params."""
        return jobs.find_active_job(self.db, kind, params)

    def cancel_job(self, job_id: int) -> None:
        jobs.cancel_job(self.db, job_id)

    def resume_job(self, job_id: int) -> int:
        """Start an interrupted, failed or cancelled job again (work resumes from what is stored)."""
        return jobs.resume_job(self.path, job_id)

    def mark_interrupted(self) -> int:
        """Mark jobs whose process is gone as interrupted; return how many."""
        return jobs.mark_interrupted(self.db)

    # --- vectors --- (helper "vectors": `embedlab.embedding.imported`, `embedlab.vectors_export`)

    def save_corpus_with_vectors(self, session_id: int, loaded: CorpusVectors, *, name: str,
                                 query_model: str | None = None) -> CorpusInfo:
        """Store an ingested corpus and its vectors ("NAME (imported)") in one transaction (a taken corpus name
        gets a suffix); a refusal writes nothing."""
        info, _ = save_with_vectors(self.db, lambda: save_corpus(self.db, session_id, loaded.corpus),
                                    loaded.vectors, name=name, query_model=query_model,
                                    zero_rows=len(loaded.zero_rows), source=loaded.source)
        return info

    def imported_models(self, corpus: CorpusInfo) -> list[str]:
        """The imported vectors ("NAME (imported)") this corpus has, in the order they were stored."""
        return imported_models(self.db, corpus.content_hash, corpus.id)

    def embedder(self, corpus: CorpusInfo, model: str) -> Embedder:
        """The embedder `model` stands for with this corpus (its imported vectors', else the model's)."""
        return embedder_for(self.db, model, corpus.content_hash, corpus.id)

    def query_problem(self, corpus: CorpusInfo, model: str) -> str | None:
        """None when new texts (queries, test texts) can be encoded under `model` for this corpus, else the one
        line that says why not (imported vectors without a query encoder)."""
        try:
            embedder = self.embedder(corpus, model)
        except UserError as exc:      # e.g. imported vectors this corpus does not have
            return str(exc)
        return embedder.query_problem() if isinstance(embedder, ImportedVectors) else None

    def vectors_parquet(self, corpus: CorpusInfo, model: str | None = None) -> bytes:
        """The corpus's vectors and 2-D map as a Parquet file's bytes (`embedlab.vectors_export`), built now on a
        connection of its own (any thread: a download button's callback)."""
        with Workspace.open(self.path) as own:
            return vectors_parquet(own.db, corpus, model)

    # --- atlas ---

    def embedded_models(self, corpus: CorpusInfo) -> list[str]:
        """Models with a finished embedding of this corpus: the offered ones, then any other stored."""
        names = list(available_models())
        names += sorted({m.model for m in self.matrices(corpus, "embedding")} - set(names))
        done = []
        for name in names:
            try:
                if self.embedding(corpus, name) is not None:
                    done.append(name)
            except UserError:      # a stored model this installation cannot load
                continue
        return done

    def doc_ids(self, corpus_id: int) -> list[str]:
        """A corpus's document ids, in index order."""
        return [str(r[0]) for r in self.db.execute("SELECT doc_id FROM documents WHERE corpus_id = ? ORDER BY idx",
                                                   [int(corpus_id)])]

    def map_jobs(self, session_id: int, *, limit: int = 20) -> list[Job]:
        """The session's latest map ("project") jobs, newest first."""
        return jobs.list_jobs(self.db, session_id=session_id, kind="project", limit=limit)

    @staticmethod
    def parse_label_names(text: str, labels: Iterable[str]) -> dict[str, str]:
        """Label names from a file's text: `label,name` rows, or one name per line in the order of `labels`."""
        return parse_label_names(text, labels)


def embed_params(corpus_id: int, model: str) -> dict:
    """The params of an "embed" job."""
    return {"corpus_id": int(corpus_id), "model": model}
