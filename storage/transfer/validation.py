"""Every row of a file to import, checked for shape and references; every content hash and cache key recomputed
from what the file brings, and every value of every float matrix checked (finite; embeddings of unit length)."""
from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from storage.cache_keys import (IMPORTED_PREFIX, LOOKUP_PREFIXES, OFFSETS_SUFFIX, PRIVATE_PREFIX, identity_cache_key,
                                imported_cache_key, offsets_key, projection_cache_key)
from storage.content import content_hash
from storage.errors import InputError
from storage.label_names import clean_label_names
from storage.matrices import DTYPES
from storage.sessions import InvalidName, clean_name
from storage.transfer.file_format import (CORPUS_COLS, FLOAT_DTYPES, FLOAT_KINDS, MATRIX_COLS,
                                          MATRIX_KINDS, MAX_MATRIX_COLS, MAX_MATRIX_ROWS, NORM_TOLERANCE, RUN_COLS,
                                          SESSION_COLS, ImportRefused, one_line, rows_of, source_rows)
from storage.transfer.judgment_rows import validate_judgments


@dataclass
class Plan:
    """What a validated file holds, by its own ids."""
    session: dict[str, Any]
    corpora: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    label_names: dict[int, dict[str, str]] = field(default_factory=dict)   # corpus id -> label -> name
    judgments: list[tuple] = field(default_factory=list)    # rows of JUDGMENT_COLS, by the file's ids


def _json(value: str, what: str, kind: type) -> Any:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise ImportRefused(f"{what} is not valid JSON") from None
    if not isinstance(parsed, kind):
        raise ImportRefused(f"{what} is not a JSON {'object' if kind is dict else 'list'}")
    return parsed


def _name(value: str, what: str) -> str:
    try:
        return clean_name(value, what)
    except InvalidName as exc:
        raise ImportRefused(f"invalid {what} name in the file: {exc}") from None


def validate(src: sqlite3.Connection, db: sqlite_utils.Database | None = None) -> Plan:
    """Every row of the file, checked for shape and references, every content hash and cache key recomputed;
    returns what to copy (each corpus with its recomputed `hash`, each matrix with its recomputed `key`)."""
    sessions = src.execute(f"SELECT {', '.join(SESSION_COLS)} FROM sessions").fetchall()
    if len(sessions) != 1:
        raise ImportRefused(f"the file holds {len(sessions)} sessions, expected exactly 1")
    plan = Plan(session=dict(zip(SESSION_COLS, sessions[0])))
    sid = plan.session["id"]
    plan.session["name"] = _name(plan.session["name"], "session")

    names: set[str] = set()
    for row in src.execute(f"SELECT {', '.join(CORPUS_COLS)} FROM corpora ORDER BY id"):
        c = dict(zip(CORPUS_COLS, row))
        if c["session_id"] != sid:
            raise ImportRefused(f"corpus {c['id']} belongs to another session (session_id {c['session_id']})")
        c["name"] = _name(c["name"], "corpus")
        if c["name"] in names:
            raise ImportRefused(f"corpus name {c['name']!r} appears twice")
        names.add(c["name"])
        if plan.corpora and c["id"] == plan.corpora[-1]["id"]:
            raise ImportRefused(f"corpus id {c['id']} appears twice")
        if not 0 <= c["n_docs"] <= MAX_MATRIX_ROWS or c["n_skipped"] < 0:
            raise ImportRefused(f"corpus {c['name']!r} has an impossible document count ({c['n_docs']})")
        if c["n_docs"] == 0:
            raise ImportRefused(f"corpus {c['name']!r} has no documents (ingestion refuses an empty corpus; so does "
                                "import)")
        meta_cols = _json(c["meta_cols"], f"corpora.meta_cols of corpus {c['name']!r}", list)
        if not all(isinstance(x, str) for x in meta_cols):
            raise ImportRefused(f"corpora.meta_cols of corpus {c['name']!r} is not a list of names")
        plan.corpora.append(c)
    by_id = {c["id"]: c for c in plan.corpora}

    found = {r[0]: r[1:] for r in src.execute(
        "SELECT corpus_id, COUNT(*), COUNT(DISTINCT idx), MIN(idx), MAX(idx) FROM documents GROUP BY corpus_id")}
    for cid in found:
        if cid not in by_id:
            raise ImportRefused(f"documents belong to corpus {cid}, which is not in the file's session")
    for c in plan.corpora:
        n = c["n_docs"]
        count, distinct, lo, hi = found.get(c["id"], (0, 0, None, None))
        if not (count == distinct == n and (n == 0 or (lo == 0 and hi == n - 1))):
            span = f"idx {lo}..{hi}" if count else "none"
            raise ImportRefused(f"corpus {c['name']!r}: documents must have idx 0..{n - 1} without gaps "
                                f"(found {count} documents, {span})")
    for cid, idx, meta in rows_of(src.execute("SELECT corpus_id, idx, meta_json FROM documents")):
        _json(meta, f"documents.meta_json of corpus {by_id[cid]['name']!r} idx {idx}", dict)
    for c in plan.corpora:
        c["hash"] = content_hash_of(r[0] for r in rows_of(src.execute(
            "SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [c["id"]])))
        if c["hash"] != c["content_hash"]:
            raise ImportRefused(f"corpus {c['name']!r}: its content hash does not match its documents (the file was "
                                "altered): refused, as its cached matrices could describe other texts")

    for row in rows_of(src.execute(f"SELECT {', '.join(RUN_COLS)} FROM runs")):
        r = dict(zip(RUN_COLS, row))
        if r["session_id"] != sid:
            raise ImportRefused(f"run {r['id']} belongs to another session (session_id {r['session_id']})")
        for col in ("params_json", "metrics_json", "details_json"):
            _json(r[col], f"runs.{col} of run {r['id']}", dict)

    seen_marks: set[tuple] = set()
    for s, cid, idx, tag in rows_of(src.execute("SELECT session_id, corpus_id, idx, tag FROM bookmarks")):
        if s != sid:
            raise ImportRefused(f"a bookmark belongs to another session (session_id {s})")
        if cid not in by_id or not 0 <= idx < by_id[cid]["n_docs"]:
            raise ImportRefused(f"bookmark on corpus {cid} idx {idx} points at no document")
        if (cid, idx, tag) in seen_marks:
            raise ImportRefused(f"bookmark on corpus {cid} idx {idx} tag {tag!r} appears twice")
        seen_marks.add((cid, idx, tag))
    plan.label_names = _label_names(src, by_id)
    plan.judgments = validate_judgments(src, sid, by_id)

    hashes = {c["hash"] for c in plan.corpora}
    chunks: dict[int, list[tuple[int, int]]] = {}
    for mid, no, size in rows_of(src.execute(
            "SELECT matrix_id, chunk_no, length(data) FROM matrix_chunks ORDER BY matrix_id, chunk_no")):
        chunks.setdefault(mid, []).append((no, size))
    keys: set[str] = set()
    for row in src.execute(f"SELECT {', '.join(MATRIX_COLS)} FROM matrices ORDER BY id").fetchall():
        m = dict(zip(MATRIX_COLS, row))
        if m["complete"] != 1:
            continue  # an unfinished cache entry: not part of an export, not imported
        key = m["cache_key"]
        _check_matrix(m, chunks.get(m["id"], []))
        if not key:
            raise ImportRefused("a matrix has an empty cache key")
        if key in keys:
            raise ImportRefused(f"matrix cache key {key!r} appears twice")
        keys.add(key)
        if m["content_hash"] not in hashes:
            raise ImportRefused(f"matrix {key!r} belongs to no corpus of the session")
        m["params"] = _json(m["params_json"], f"matrices.params_json of matrix {key!r}", dict)
        m["corpus"] = _matrix_corpus(m, by_id, plan.corpora)
        plan.matrices.append(m)
    _derive_keys(src, db, plan)
    for m in plan.matrices:
        for start, block in blocks(src, m):
            check_values(m, start, block)
    return plan


def _label_names(src: sqlite3.Connection, by_id: dict[int, dict]) -> dict[int, dict[str, str]]:
    """The file's label names (a version-1 file has none), checked as the Atlas checks an edit."""
    table = src.execute("SELECT type, sql FROM sqlite_master WHERE name = 'label_names'").fetchone()
    if table is None:
        return {}
    if table[0] != "table" or (table[1] or "").lstrip().upper().startswith("CREATE VIRTUAL"):
        raise ImportRefused("'label_names' in the file is not a plain table")
    types = {r[1]: (r[2] or "").upper() for r in src.execute("PRAGMA table_xinfo(label_names)")}
    if types != {"corpus_id": "INTEGER", "label": "TEXT", "name": "TEXT"}:
        raise ImportRefused("table 'label_names' does not have the columns corpus_id, label and name")
    raw: dict[int, dict[str, str]] = {}
    for cid, label, name in rows_of(src.execute("SELECT corpus_id, label, name FROM label_names")):
        if cid not in by_id:
            raise ImportRefused(f"a label name points at corpus {cid!r}, which the file does not hold")
        if not isinstance(label, str) or not isinstance(name, str):
            raise ImportRefused(f"a label name of corpus {cid} is not text")
        raw.setdefault(cid, {})[label] = name
    try:
        return {cid: clean_label_names(names) for cid, names in raw.items()}
    except InputError as exc:
        raise ImportRefused(f"label names: {exc}") from exc


def content_hash_of(texts: Iterable[str]) -> str:
    try:
        return content_hash(texts)  # type: ignore[arg-type]  # it only iterates
    except UnicodeEncodeError:
        raise ImportRefused("a document's text is not valid Unicode (a lone surrogate)") from None


def _matrix_corpus(m: dict[str, Any], by_id: dict[int, dict], corpora: list[dict]) -> dict[str, Any]:
    """The file's corpus a matrix was computed for: its `corpus_id` (same content required), else the first corpus of
    its content; and its shape checked against that corpus."""
    key, cid = m["cache_key"], m["corpus_id"]
    if cid is not None:
        corpus = by_id.get(cid)
        if corpus is None:
            raise ImportRefused(f"matrix {key!r} belongs to corpus {cid}, which is not in the file's session")
        if corpus["hash"] != m["content_hash"]:
            raise ImportRefused(f"matrix {key!r} was computed for other texts than those of its corpus "
                                f"{corpus['name']!r}")
    else:
        corpus = next(c for c in corpora if c["hash"] == m["content_hash"])
    n, kind = corpus["n_docs"], m["kind"]
    if kind not in MATRIX_KINDS:
        raise ImportRefused(f"matrix {key!r} is of unknown kind {kind!r}")
    if kind in ("embedding", "projection") and m["rows"] != n:
        raise ImportRefused(f"matrix {key!r} has {m['rows']} rows, but its corpus {corpus['name']!r} has {n} "
                            "documents (one row each)")
    if kind == "token_offsets" and (m["rows"] != n + 1 or m["cols"] != 1 or m["dtype"] != "int64"):
        raise ImportRefused(f"matrix {key!r}: token offsets must be {n + 1} x 1 int64 for corpus {corpus['name']!r}, "
                            f"found {m['rows']} x {m['cols']} {m['dtype']}")
    return corpus


def _derive_keys(src: sqlite3.Connection, db: sqlite_utils.Database | None, plan: Plan) -> None:
    """Set each matrix's `key`: recomputed from its identity or parameters and its corpus's recomputed content hash.
    A stored key in a lookup namespace must equal it; other keys (no lookup computes them) are kept."""
    embeddings: dict[str, dict[str, dict | None]] = {}   # content hash -> embedding key -> the file's matrix
    for m in plan.matrices:
        h = m["corpus"]["hash"]
        if m["kind"] == "embedding" and m["cache_key"].startswith(IMPORTED_PREFIX):   # a user's own vectors
            m["key"] = imported_cache_key(str(m["params"].get("name")), str(m["params"].get("vectors")), h)
            embeddings.setdefault(h, {})[m["key"]] = m
        elif m["kind"] == "embedding":
            m["key"] = identity_cache_key(m["params"], h, "embedding")
            embeddings.setdefault(h, {})[m["key"]] = m
        elif m["kind"] == "tokens":
            m["key"] = identity_cache_key(m["params"], h, "tokens")
        elif m["kind"] == "token_offsets":
            m["key"] = offsets_key(identity_cache_key(m["params"], h, "tokens"))
    for m in plan.matrices:
        if m["kind"] != "projection":
            continue
        h = m["corpus"]["hash"]
        candidates = dict(embeddings.get(h, {}))
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                for (key,) in db.execute("SELECT cache_key FROM matrices WHERE content_hash = ? AND kind = "
                                         "'embedding' AND complete = 1 AND cache_key NOT LIKE ?",
                                         [h, PRIVATE_PREFIX + "%"]):
                    candidates.setdefault(key, None)   # an embedding of ours: the projection's values are the file's
        derived = {projection_cache_key(k, m["params"]): source for k, source in candidates.items()}
        key = m["cache_key"] if m["cache_key"] in derived else (next(iter(derived)) if len(derived) == 1 else None)
        m["key"], m["source"] = key, derived.get(key)
    keys: set[str] = set()
    for m in plan.matrices:
        stored, derived = m["cache_key"], m.get("key")
        if stored.startswith(LOOKUP_PREFIXES):
            if derived != stored:
                what = ("its projection parameters and an embedding of the same texts" if m["kind"] == "projection"
                        else "its embedder identity (params_json) and its corpus's texts")
                raise ImportRefused(f"matrix {stored!r}: its cache key does not match {what}: refused, it could "
                                    "answer lookups for other data")
        else:
            m["key"] = stored  # not a key any lookup computes: kept as it is
        if m["key"] in keys:
            raise ImportRefused(f"matrix cache key {m['key']!r} appears twice")
        keys.add(m["key"])
    by_key = {m["key"]: m for m in plan.matrices}
    for m in plan.matrices:
        if m["kind"] == "token_offsets" and m["key"].startswith(LOOKUP_PREFIXES):
            tokens = by_key.get(m["key"].removesuffix(OFFSETS_SUFFIX))
            if tokens is None or tokens["kind"] != "tokens":
                raise ImportRefused(f"matrix {m['cache_key']!r}: token offsets without their token matrix")
            _check_offsets(src, m, tokens["rows"])
        elif m["kind"] == "tokens" and m["key"].startswith(LOOKUP_PREFIXES) and offsets_key(m["key"]) not in by_key:
            raise ImportRefused(f"matrix {m['cache_key']!r}: token embeddings without their offsets")


def _check_offsets(src: sqlite3.Connection, m: dict[str, Any], n_tokens: int) -> None:
    """Token offsets rise from 0 to the token count: document i owns token rows offsets[i]:offsets[i + 1]."""
    parts = [np.frombuffer(data, dtype="<i8") for (data,) in rows_of(src.execute(
        "SELECT data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no", [m["id"]]))]
    offsets = np.concatenate(parts) if parts else np.zeros(0, dtype="<i8")
    if len(offsets) != m["rows"] or offsets[0] != 0 or offsets[-1] != n_tokens or np.any(np.diff(offsets) < 0):
        raise ImportRefused(f"matrix {m['cache_key']!r}: its token offsets do not run from 0 to the {n_tokens} token "
                            "rows")


def _check_matrix(m: dict[str, Any], chunks: list[tuple[int, int]]) -> None:
    key, dtype, rows, cols, chunk_rows = m["cache_key"], m["dtype"], m["rows"], m["cols"], m["chunk_rows"]
    if dtype not in DTYPES:
        raise ImportRefused(f"matrix {key!r} has unknown dtype {dtype!r}")
    if not 0 <= rows <= MAX_MATRIX_ROWS:
        raise ImportRefused(f"matrix {key!r} has {rows} rows, outside the limit of 0..{MAX_MATRIX_ROWS}")
    if not 1 <= cols <= MAX_MATRIX_COLS:
        raise ImportRefused(f"matrix {key!r} has {cols} columns, outside the limit of 1..{MAX_MATRIX_COLS}")
    if not 1 <= chunk_rows:
        raise ImportRefused(f"matrix {key!r} has an impossible chunk size ({chunk_rows} rows)")
    itemsize = DTYPES[dtype].itemsize
    expected_chunks = -(-rows // chunk_rows)
    if len(chunks) != expected_chunks:
        raise ImportRefused(f"matrix {key!r} has {len(chunks)} chunks, expected {expected_chunks}")
    total = sum(size for _, size in chunks)
    expected = rows * cols * itemsize
    if total != expected:
        raise ImportRefused(f"matrix {key!r}: its chunks hold {total} bytes, expected "
                            f"{rows}×{cols}×{itemsize} = {expected}")
    for i, (no, size) in enumerate(chunks):
        want = min(chunk_rows, rows - i * chunk_rows) * cols * itemsize
        if no != i or size != want:
            raise ImportRefused(f"matrix {key!r}: chunk {no} holds {size} bytes, expected chunk {i} of {want} bytes")


def decode_block(data: bytes, m: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(data, dtype=DTYPES[m["dtype"]]).reshape(-1, m["cols"])


def blocks(src: sqlite3.Connection, m: dict[str, Any], chunk_nos: Iterable[int] | None = None
            ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of each chunk of a file's matrix (only `chunk_nos` when given), in order."""
    sql, args = "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ?", [m["id"]]
    if chunk_nos is not None:
        wanted = sorted({int(c) for c in chunk_nos})
        sql += f" AND chunk_no IN ({', '.join('?' * len(wanted))})"
        args += wanted
    for no, data in source_rows(lambda: src.execute(sql + " ORDER BY chunk_no", args)):
        yield no * m["chunk_rows"], decode_block(data, m)


def file_rows(src: sqlite3.Connection, m: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of a file's matrix (reading only the chunks that hold them)."""
    out = np.empty((len(rows), m["cols"]), dtype=np.float32)
    where = {int(r): i for i, r in enumerate(rows)}
    for start, block in blocks(src, m, (r // m["chunk_rows"] for r in rows)):
        for r in range(start, start + len(block)):
            if r in where:
                out[where[r]] = block[r - start]
    return out


def describe(m: dict[str, Any]) -> str:
    """"the embedding matrix of 'tfidf-svd' for corpus 'news'" (a model name from the file kept short)."""
    model = f" of {one_line(m['model'], 80)!r}" if m["model"] else ""
    return f"the {m['kind']} matrix{model} for corpus {m['corpus']['name']!r}"


def check_values(m: dict[str, Any], start: int, block: np.ndarray) -> None:
    """A float matrix holds only finite values; an embedding's rows are unit length, or (near) zero for an empty
    document (stored embeddings are L2-normalised). Refused with the first bad row (counting from 0, as documents'
    idx do)."""
    if m["kind"] not in FLOAT_KINDS:
        return
    if m["dtype"] not in FLOAT_DTYPES:
        raise ImportRefused(f"{describe(m)} holds {m['dtype']} values: expected {' or '.join(FLOAT_DTYPES)}")
    finite = np.isfinite(block)
    if not finite.all():
        row = int(np.argmin(finite.all(axis=1)))
        value = block[row][~finite[row]][0]
        name = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
        raise ImportRefused(f"{describe(m)}: row {start + row} holds {name} (refused: a matrix must be finite)")
    if m["kind"] == "embedding":
        norms = np.linalg.norm(block.astype(np.float64), axis=1)
        bad = (np.abs(norms - 1.0) > NORM_TOLERANCE) & (norms > NORM_TOLERANCE)
        if bad.any():
            row = int(np.argmax(bad))
            raise ImportRefused(f"{describe(m)}: row {start + row} has length {norms[row]:.4g} (refused: stored "
                                "embeddings are unit length, or zero for an empty document)")
