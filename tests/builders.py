"""Plain builders the tests share: corpora (in memory and stored), BEIR folders, Streamlit AppTest pages and
planted clusters. Fixtures that wrap them live in conftest.py."""
from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

    from embedlab.corpus import Corpus
    from storage.corpora import CorpusInfo

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"

# --- corpora ----------------------------------------------------------------------------------------------------


def make_corpus(texts: Iterable[str], labels: Sequence[str | None] | None = None, *, name: str = "c",
                source: str = "test", doc_ids: Sequence[str] | None = None,
                metas: Sequence[dict[str, Any]] | None = None, text_col: str | None = "text",
                label_col: str | None = None) -> "Corpus":
    """An in-memory corpus as ingestion makes it: document ids "0", "1", … and label column "label" (when there
    are labels) unless given."""
    from embedlab.corpus import Corpus

    texts = list(texts)
    return Corpus(name=name, source=source, texts=texts,
                  doc_ids=list(doc_ids) if doc_ids is not None else [str(i) for i in range(len(texts))],
                  labels=None if labels is None else list(labels), metas=list(metas or []), text_col=text_col,
                  label_col=label_col or ("label" if labels is not None else None))


def stored_corpus(db, texts: Iterable[str], labels: Sequence[str | None] | None = None, *, session: str = "s",
                  **corpus_fields) -> tuple[int, "CorpusInfo"]:
    """`make_corpus(texts, labels, **corpus_fields)` saved in session `session` (created when missing):
    returns (session id, the stored corpus's info)."""
    from storage.corpora import save_corpus
    from storage.sessions import ensure_session

    session_id = ensure_session(db, session)
    return session_id, save_corpus(db, session_id, make_corpus(texts, labels, **corpus_fields))


# --- BEIR folders -----------------------------------------------------------------------------------------------

Qrels = Union[str, Iterable[tuple[str, str, int]]]
QRELS_HEADER = "query-id\tcorpus-id\tscore"


def qrels_tsv(qrels: Qrels) -> str:
    """(query id, document id, score) triples as a BEIR qrels TSV with its header; a string is kept as it is
    (to write malformed files on purpose)."""
    if isinstance(qrels, str):
        return qrels
    return "\n".join([QRELS_HEADER, *(f"{q}\t{d}\t{s}" for q, d, s in qrels)]) + "\n"


def write_beir(root: Path, docs: Iterable[Mapping[str, Any]], queries: Iterable[Mapping[str, Any]],
               qrels: Qrels, *, split: str = "test", gz: bool = False,
               other_splits: Mapping[str, Qrels] | None = None) -> Path:
    """A BEIR folder: corpus.jsonl (or .jsonl.gz), queries.jsonl and qrels/<split>.tsv (plus one file per
    entry of `other_splits`). Documents are dicts with _id, title and text; queries with _id and text."""
    root = Path(root)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(d) + "\n" for d in docs)
    if gz:
        (root / "corpus.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    else:
        (root / "corpus.jsonl").write_text(body)
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    for name, rows in {split: qrels, **(other_splits or {})}.items():
        (root / "qrels" / f"{name}.tsv").write_text(qrels_tsv(rows))
    return root


def zip_folder(root: Path, prefix: str = "") -> bytes:
    """The files under `root` as ZIP bytes, their paths relative to `root` behind `prefix` (e.g. "toy/")."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file():
                z.write(p, prefix + str(p.relative_to(root)))
    return buf.getvalue()


# --- Streamlit AppTest ------------------------------------------------------------------------------------------


def use_database(path: Path, monkeypatch) -> Path:
    """Make app.py open the database at `path` (EMBEDLAB_DB), without the demo set-up, run from the repository
    root as `streamlit run app.py` would be."""
    monkeypatch.setenv("EMBEDLAB_DB", str(path))
    monkeypatch.delenv("EMBEDLAB_DEMO", raising=False)
    monkeypatch.chdir(ROOT)
    return path


def use_copy_of(template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of a module's template database (built once) for one test, opened by app.py."""
    import shutil

    path = tmp_path / "embedlab.sqlite"
    shutil.copy(template, path)
    return use_database(path, monkeypatch)


def open_page(page: str | None = None, *, session: str | None = None, state: Mapping[str, Any] | None = None,
              timeout: float = 60) -> "AppTest":
    """app.py run under AppTest with `?session=` set, switched to `page` (e.g. "pages/atlas.py"), then run
    again with `state` put into st.session_state. Exceptions are left on `at.exception` for the test."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if session is not None:
        at.query_params["session"] = session
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    if state:
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
    return at


# --- vectors ----------------------------------------------------------------------------------------------------


def planted_blobs(n_per: int, n_blobs: int = 5, dim: int = 384, spread: float = 0.8,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n_blobs` Gaussian clusters of `n_per` points around unit-norm centres: (float32 X, the true cluster of
    each row)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_blobs, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(n_blobs), n_per)
    X = centres[truth] + spread * rng.standard_normal((len(truth), dim)) / np.sqrt(dim)
    return X.astype(np.float32), truth
