"""Judgments in and out as TREC qrels with a queries file (BEIR's layout), for `judgments import` / `export`.

Export (`export_judgments`): `qrels.tsv`, one line per judged pair, `query-id<TAB>0<TAB>doc-id<TAB>grade` (TREC's
four columns, no header), and `queries.jsonl`, one `{"_id", "text"}` per query (BEIR's). Documents, and queries that
are documents, are named as `embedlab.judgments.session_qrels` names them (the corpus's doc ids when unique, else
each index as text); a typed query by "q-" and the start of its key's hash. Several judges' grades of a pair are
combined (their lower median) unless one judge is asked for.

Import (`import_judgments`) is a trust boundary; the whole file is checked before anything is written, and any
problem refuses it in one line (InputError) with nothing written:
* each file is a regular file of at most `MAX_FILE_BYTES`, UTF-8 text (a NUL byte or undecodable bytes: binary);
* qrels lines have TREC's four columns (query-id, iteration, doc-id, grade; no header) or BEIR's three
  (query-id, corpus-id, score) after BEIR's header line, which a three-column file must have: BEIR reads its first
  line as the header, so a file without one would lose a judgment there. Columns are split on tabs, else on spaces;
* grades are whole numbers 0..3; a pair given twice with different grades is refused;
* every doc id names a document of the corpus; a query id that names a document of the corpus is that document
  as the query (its neighbours judged); any other query id must have its text in the queries file (BEIR's
  `queries.jsonl`: JSON objects with "_id" and "text"; other fields ignored). Unknown ids are named (a count and
  the first few).
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from embedlab.errors import InputError
from embedlab.judgments import NewJudgment, Query, SessionQrels, clean_judge, record_many, run_doc_ids, session_qrels
from storage.judgments import MAX_GRADE, MIN_GRADE, clean_query_text
from storage.output_files import atomic_output, check_output_path

MAX_FILE_BYTES = 100 * 1024**2        # a qrels or queries file; SciFact's test qrels are 5 kB, MS MARCO's dev 1 MB
N_EXAMPLES = 3
QRELS_NAME, QUERIES_NAME = "qrels.tsv", "queries.jsonl"
DEFAULT_IMPORT_JUDGE = "imported"


@dataclass(frozen=True)
class QrelsLine:
    line: int
    query_id: str
    doc_id: str
    grade: int


@dataclass(frozen=True)
class ImportSummary:
    """What an import stored."""
    judgments: int
    queries: int
    document_queries: int
    judge: str


# --- reading files ---------------------------------------------------------------------------------------------


def read_text_file(path: str | os.PathLike, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A small UTF-8 text file's content, checked: a regular file, within `max_bytes`, no NUL, valid UTF-8 (a BOM
    is dropped)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"no such file ({what})", file=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror or exc}", file=str(p)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file ({what})", file=str(p))
    if st.st_size > max_bytes:
        raise InputError(f"the {what} is {st.st_size / 1024**2:,.0f} MB, over the limit of "
                         f"{max_bytes / 1024**2:,.0f} MB", file=str(p))
    with open(p, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"the {what} grew over the limit of {max_bytes / 1024**2:,.0f} MB while reading",
                         file=str(p))
    if b"\x00" in data:
        raise InputError(f"the {what} is binary, not text (it holds NUL bytes)", file=str(p))
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"the {what} is not UTF-8 text (byte {exc.start:,}: {exc.reason})", file=str(p)) from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield no, line


def parse_qrels(text: str, file: str) -> list[QrelsLine]:
    """The judgments of a qrels file's text (module docstring: TREC's 4 columns, or BEIR's 3 after its header)."""
    out: list[QrelsLine] = []
    seen: dict[tuple[str, str], QrelsLine] = {}
    header_seen, width = False, 0
    for no, line in _lines(text):
        parts = [p.strip() for p in (line.split("\t") if "\t" in line else line.split())]
        if len(parts) not in (3, 4):
            raise InputError(f"expected 4 columns (query-id, 0, doc-id, grade) or BEIR's 3 (query-id, corpus-id, "
                             f"score), found {len(parts)}", file=file, row=no)
        if not out and not header_seen and not _is_number(parts[-1]):
            header_seen = True                  # a header line (BEIR's "query-id corpus-id score")
            continue
        if out and len(parts) != width:
            raise InputError(f"{len(parts)} columns here, {width} on line {out[0].line}: one layout per file",
                             file=file, row=no)
        width = len(parts)
        if len(parts) == 3 and not header_seen:
            raise InputError("a 3-column qrels file (BEIR's) starts with its header line (query-id, corpus-id, "
                             "score): BEIR reads line 1 as the header, so this file's first judgment would be lost "
                             "there; add the header, or use TREC's 4 columns (query-id 0 doc-id grade)",
                             file=file, row=no)
        qid, doc, raw = parts[0], parts[-2], parts[-1]
        if not qid or not doc:
            raise InputError("an empty query or document id", file=file, row=no)
        grade = _grade(raw, file, no)
        item = QrelsLine(no, qid, doc, grade)
        before = seen.get((qid, doc))
        if before is not None:
            if before.grade != grade:
                raise InputError(f"query {qid!r}, document {doc!r} is graded {before.grade} on line {before.line} "
                                 f"and {grade} here", file=file, row=no)
            continue
        seen[(qid, doc)] = item
        out.append(item)
    if not out:
        raise InputError("no judgments in the qrels file", file=file)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _grade(raw: str, file: str, line: int) -> int:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"grade {raw!r} is not a number", file=file, row=line) from None
    if not value.is_integer() or not MIN_GRADE <= value <= MAX_GRADE:
        raise InputError(f"grade {raw!r} is not a whole number from {MIN_GRADE} to {MAX_GRADE} (TREC's graded "
                         "relevance)", file=file, row=line)
    return int(value)


def parse_queries(text: str, file: str) -> dict[str, str]:
    """{query id: text} of a queries.jsonl (BEIR's: one JSON object a line with "_id" and "text"); the first of
    a repeated id is kept. Texts are checked when used (`clean_query_text`)."""
    out: dict[str, str] = {}
    for no, line in _lines(text):
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"not valid JSON ({getattr(exc, 'msg', 'nested too deeply')})", file=file,
                             row=no) from None
        if not isinstance(obj, dict) or "_id" not in obj:
            raise InputError('expected a JSON object with an "_id" field', file=file, row=no)
        if not isinstance(obj.get("text"), str):
            raise InputError('"text" must be a string', file=file, row=no)
        out.setdefault(str(obj["_id"]), obj["text"])
    return out


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in items[:N_EXAMPLES])
    return shown + (", …" if len(items) > N_EXAMPLES else "")


# --- import ----------------------------------------------------------------------------------------------------


def plan_import(db: sqlite_utils.Database, corpus_id: int, lines: Sequence[QrelsLine], queries: dict[str, str],
                judge: str, *, qrels_file: str, queries_file: str) -> list[NewJudgment]:
    """The judgments to store, every id resolved against the corpus (module docstring); InputError otherwise."""
    raw = [str(r[0]) for r in db.execute("SELECT doc_id FROM documents WHERE corpus_id = ? ORDER BY idx",
                                         [int(corpus_id)])]
    row_of = {d: i for i, d in enumerate(run_doc_ids(raw))}
    bad_docs = list(dict.fromkeys(x.doc_id for x in lines if x.doc_id not in row_of))
    if bad_docs:
        first = next(x.line for x in lines if x.doc_id == bad_docs[0])
        raise InputError(f"{len(bad_docs):,} doc id(s) not in the corpus: {_examples(bad_docs)} (first on line "
                         f"{first}); nothing was imported", file=qrels_file)
    missing = list(dict.fromkeys(x.query_id for x in lines if x.query_id not in row_of and x.query_id not in queries))
    if missing:
        raise InputError(f"{len(missing):,} query id(s) neither in the queries file nor a document of the corpus: "
                         f"{_examples(missing)}; nothing was imported", file=queries_file)
    resolved: dict[str, Query] = {}
    for qid in dict.fromkeys(x.query_id for x in lines):
        if qid in row_of:
            resolved[qid] = Query.document(row_of[qid])
        else:
            try:
                resolved[qid] = Query.typed(clean_query_text(queries[qid]))
            except InputError as exc:
                raise InputError(f"query {qid!r}: {exc}", file=queries_file) from None
    return [NewJudgment(resolved[x.query_id], row_of[x.doc_id], x.grade, judge) for x in lines]


def import_judgments(db: sqlite_utils.Database, session_id: int, corpus_id: int, qrels_path: str | os.PathLike,
                     queries_path: str | os.PathLike, *, judge: str = DEFAULT_IMPORT_JUDGE) -> ImportSummary:
    """Import a qrels file (with its queries file) into a corpus's judgments under `judge`, all or nothing."""
    name = clean_judge(judge)
    lines = parse_qrels(read_text_file(qrels_path, "qrels file"), str(qrels_path))
    queries = parse_queries(read_text_file(queries_path, "queries file"), str(queries_path))
    items = plan_import(db, corpus_id, lines, queries, name, qrels_file=str(qrels_path),
                        queries_file=str(queries_path))
    n = record_many(db, session_id, corpus_id, items)
    kinds = {i.query for i in items}
    return ImportSummary(n, len(kinds), sum(1 for q in kinds if q.is_document), name)


# --- export ----------------------------------------------------------------------------------------------------


def qrels_tsv(sq: SessionQrels) -> str:
    """TREC qrels: `query-id<TAB>0<TAB>doc-id<TAB>grade`, queries in order of first judgment, documents by row."""
    row_of = {d: i for i, d in enumerate(sq.doc_ids)}
    return "".join(f"{q}\t0\t{d}\t{g}\n" for q in sq.query_ids
                   for d, g in sorted(sq.qrels[q].items(), key=lambda dg: row_of[dg[0]]))


def queries_jsonl(sq: SessionQrels) -> str:
    """BEIR's queries.jsonl: `{"_id", "text"}` per query (a document query's text is the document's)."""
    return "".join(json.dumps({"_id": q, "text": sq.texts[q]}, ensure_ascii=False) + "\n" for q in sq.query_ids)


def export_paths(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    return Path(out_dir) / QRELS_NAME, Path(out_dir) / QUERIES_NAME


def export_judgments(db: sqlite_utils.Database, session_id: int, corpus_id: int, out_dir: str | os.PathLike, *,
                     judges: Sequence[str] | None = None, database: str | os.PathLike | None = None
                     ) -> tuple[Path, Path, int]:
    """Write `qrels.tsv` and `queries.jsonl` of a corpus's judgments into `out_dir` (created; each file replaced
    whole or not at all); returns both paths and the number of judged pairs. Refused when nothing is judged."""
    sq = session_qrels(db, session_id, corpus_id, judges=judges)
    if not sq.query_ids:
        who = f" by {', '.join(judges)}" if judges else ""
        raise InputError(f"no judgments{who} to export for this corpus")
    qrels_path, queries_path = export_paths(out_dir)
    for path in (qrels_path, queries_path):
        check_output_path(path, flag="--out", database=database)
        if path.is_dir():
            raise InputError(f"{path} is a folder: cannot write the export there")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with atomic_output(qrels_path) as tmp:
        tmp.write_text(qrels_tsv(sq), encoding="utf-8")
    with atomic_output(queries_path) as tmp:
        tmp.write_text(queries_jsonl(sq), encoding="utf-8")
    return qrels_path, queries_path, sum(len(d) for d in sq.qrels.values())
