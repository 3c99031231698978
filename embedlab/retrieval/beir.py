"""Query sources for the retrieval lab: BEIR folders (or ZIPs of one) and queries sampled from labels.

BEIR layout: corpus.jsonl or corpus.jsonl.gz ({"_id", "title", "text"}), queries.jsonl ({"_id", "text"}),
qrels/<split>.tsv (query-id, corpus-id, score; a header line is skipped; TREC's 4-column form is accepted too).

Ids in qrels that name no query or no document are dropped, with a warning that gives the count and the first
examples (BEIR's evaluation ignores them likewise); a qrels file in which no query id, or no document id, matches
is refused, since it evidently belongs to another collection. Broken lines are refused with file and line.
The evaluated queries are those judged in the split, in queries.jsonl order (BEIR's convention).
An uploaded ZIP is kept on disk by `store_beir_upload`, so that a background job can read it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from embedlab.datasets import ROOT
from embedlab.errors import InputError, UserError

N_EXAMPLES = 3


@dataclass
class BeirDataset:
    """One split of a BEIR collection, validated."""
    name: str
    split: str
    doc_ids: list[str]
    titles: list[str]
    bodies: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]
    splits: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reference_query_ids: list[str] = field(default_factory=list)   # judged in the train split, not in this one
    reference_queries: list[str] = field(default_factory=list)
    reference_qrels: dict[str, dict[str, int]] = field(default_factory=dict)   # their train judgements

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    @property
    def corpus_texts(self) -> list[str]:
        """title + " " + text, stripped: what BEIR's dense models and MTEB embed, and what BEIR's BM25 indexes."""
        return [f"{t} {b}".strip() for t, b in zip(self.titles, self.bodies)]

    def limit_docs(self, max_docs: int) -> "BeirDataset":
        """At most `max_docs` documents: those relevant to the queries first (in query order, then qrels order),
        then the first others in corpus order; only queries with a relevant document left are kept.
        Deterministic: the same input gives the same subset."""
        if max_docs is None or max_docs >= self.n_docs:
            return self
        if max_docs < 1:
            raise InputError("max_docs must be at least 1")
        row_of = {d: i for i, d in enumerate(self.doc_ids)}
        chosen: dict[int, None] = {}
        for qid in self.query_ids:
            for did, rel in self.qrels.get(qid, {}).items():
                if rel > 0 and len(chosen) < max_docs:
                    chosen.setdefault(row_of[did])
        for i in range(self.n_docs):
            if len(chosen) >= max_docs:
                break
            chosen.setdefault(i)
        rows = sorted(chosen)
        kept_ids = {self.doc_ids[i] for i in rows}
        qrels = {q: {d: r for d, r in docs.items() if d in kept_ids} for q, docs in self.qrels.items()}
        ref_qrels = {q: {d: r for d, r in docs.items() if d in kept_ids} for q, docs in self.reference_qrels.items()}
        keep_q = [i for i, q in enumerate(self.query_ids) if any(r > 0 for r in qrels.get(q, {}).values())]
        qrels = {self.query_ids[i]: qrels[self.query_ids[i]] for i in keep_q}
        return replace(self, doc_ids=[self.doc_ids[i] for i in rows], titles=[self.titles[i] for i in rows],
                       bodies=[self.bodies[i] for i in rows], query_ids=[self.query_ids[i] for i in keep_q],
                       queries=[self.queries[i] for i in keep_q], qrels=qrels, reference_qrels=ref_qrels)


class _Source:
    """Files of a BEIR folder, on disk or inside a ZIP (the folder may sit one level down)."""

    def __init__(self, path: str | os.PathLike | None = None, data: bytes | None = None, name: str | None = None):
        self.zip = zipfile.ZipFile(io.BytesIO(data)) if data is not None else None
        self.root = Path(path) if path is not None else None
        self.prefix = ""
        self.label = name or (self.root.name if self.root is not None else "upload.zip")
        if self.zip is not None:
            self.prefix = self._zip_prefix()

    def _zip_prefix(self) -> str:
        names = {n for n in self.zip.namelist() if not n.startswith("__MACOSX/")}
        for base in [""] + sorted({n.split("/")[0] + "/" for n in names if "/" in n}):
            if any(f"{base}{c}" in names for c in ("corpus.jsonl", "corpus.jsonl.gz")):
                return base
        raise InputError("no corpus.jsonl or corpus.jsonl.gz at the top of the ZIP or one folder down",
                         file=self.label)

    def exists(self, rel: str) -> bool:
        if self.zip is not None:
            return f"{self.prefix}{rel}" in self.zip.namelist()
        return (self.root / rel).is_file()

    def list_dir(self, rel: str) -> list[str]:
        if self.zip is not None:
            base = f"{self.prefix}{rel}/"
            return sorted(n[len(base):] for n in self.zip.namelist() if n.startswith(base) and "/" not in n[len(base):]
                          and n != base)
        d = self.root / rel
        return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []

    def lines(self, rel: str) -> Iterator[tuple[int, str]]:
        """(line number from 1, text) of a UTF-8 file, gunzipped when it ends in .gz."""
        if self.zip is not None:
            try:
                raw = self.zip.open(f"{self.prefix}{rel}")
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:   # broken, unsupported, encrypted
                raise InputError(f"cannot be read from the ZIP: {exc}", file=rel) from exc
        else:
            raw = open(self.root / rel, "rb")
        with raw:
            stream = gzip.open(raw) if rel.endswith(".gz") else raw
            try:
                for no, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8"), start=1):
                    yield no, line
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text ({exc.reason})", file=rel) from exc
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise InputError(f"cannot be read: {exc}", file=rel) from exc


def _read_jsonl(src: _Source, rel: str, *, need_text: bool = True) -> tuple[list[str], list[dict]]:
    ids: list[str] = []
    rows: list[dict] = []
    for no, line in src.lines(rel):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})", file=rel, row=no) from exc
        if not isinstance(obj, dict) or "_id" not in obj:
            raise InputError('expected a JSON object with an "_id" field', file=rel, row=no)
        if need_text and not isinstance(obj.get("text", ""), str):
            raise InputError('"text" must be a string', file=rel, row=no)
        ids.append(str(obj["_id"]))
        rows.append(obj)
    return ids, rows


def _read_qrels(src: _Source, rel: str) -> list[tuple[int, str, str, int]]:
    out = []
    for no, line in src.lines(rel):
        parts = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        if not parts or not line.strip():
            continue
        if len(parts) == 4:           # TREC: query-id iteration doc-id relevance
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise InputError(f"expected 3 tab-separated columns (query-id, corpus-id, score), found {len(parts)}",
                             file=rel, row=no)
        q, d, s = (p.strip() for p in parts)
        try:
            score = int(float(s))
        except (ValueError, OverflowError):
            if no == 1:               # header line
                continue
            raise InputError(f"score {s!r} is not a number", file=rel, row=no) from None
        out.append((no, q, d, score))
    return out


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in items[:N_EXAMPLES])
    return shown + (", ..." if len(items) > N_EXAMPLES else "")


def dataset_label(source: str | os.PathLike) -> str:
    """The name a BEIR folder or ZIP goes by in results and the run list: `beir-scifact/` -> scifact."""
    name = Path(source).name
    name = name[:-4] if name.endswith(".zip") else name
    for prefix in ("beir-", "beir_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name or "beir"


def beir_splits(source: str | os.PathLike) -> list[str]:
    """The qrels splits of a BEIR folder or .zip (for a split picker); [] when there are none to be found."""
    path = Path(source)
    try:
        src = _Source(data=path.read_bytes(), name=path.name) if path.suffix == ".zip" else _Source(path)
        return [f[:-4] for f in src.list_dir("qrels") if f.endswith(".tsv")]
    except (InputError, OSError, zipfile.BadZipFile):
        return []


def beir_summary(source: str | os.PathLike, split: str = "test") -> dict:
    """What the page shows of one split before a comparison: its name, counts and warnings, or {"error": the
    loader's one-line message}."""
    try:
        ds = load_beir(source, split)
    except UserError as exc:
        return {"error": str(exc)}
    return {"name": ds.name, "n_docs": ds.n_docs, "n_queries": ds.n_queries, "warnings": ds.warnings}


def store_beir_upload(data: bytes, filename: str, *, uploads_dir: str | os.PathLike | None = None) -> Path:
    """Keep an uploaded BEIR ZIP as <uploads_dir>/<sha256 prefix>/<name>.zip (default data/uploads; the same bytes
    are stored once), so a background job and later reruns can read it; the name is reduced to safe characters."""
    folder = Path(uploads_dir or ROOT / "data" / "uploads") / hashlib.sha256(data).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "upload").name)[:80].strip("._") or "upload"
    path = folder / (stem if stem.lower().endswith(".zip") else f"{stem}.zip")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def load_beir(source: str | os.PathLike | bytes, split: str = "test", *, name: str | None = None) -> BeirDataset:
    """Load one split of a BEIR collection from a folder, a .zip file path, or a ZIP's bytes."""
    if isinstance(source, (bytes, bytearray)):
        try:
            src = _Source(data=bytes(source), name=name or "upload.zip")
        except zipfile.BadZipFile as exc:
            raise InputError("not a ZIP file", file=name or "upload.zip") from exc
    else:
        path = Path(source)
        if path.is_file() and path.suffix == ".zip":
            try:
                src = _Source(data=path.read_bytes(), name=name or path.name)
            except zipfile.BadZipFile as exc:
                raise InputError("not a ZIP file", file=str(path)) from exc
        elif path.is_dir():
            src = _Source(path, name=name)
        else:
            raise InputError("no such folder (expected a BEIR folder or a .zip of one)", file=str(path))

    corpus_file = next((c for c in ("corpus.jsonl", "corpus.jsonl.gz") if src.exists(c)), None)
    if corpus_file is None:
        raise InputError("no corpus.jsonl or corpus.jsonl.gz in the BEIR folder", file=src.label)
    if not src.exists("queries.jsonl"):
        raise InputError("no queries.jsonl in the BEIR folder", file=src.label)
    splits = [f[:-4] for f in src.list_dir("qrels") if f.endswith(".tsv")]
    qrels_file = f"qrels/{split}.tsv"
    if not src.exists(qrels_file):
        found = ", ".join(splits) if splits else "none (no qrels/*.tsv)"
        raise InputError(f"no qrels for split {split!r}; splits found: {found}", file=qrels_file)

    warnings: list[str] = []
    doc_ids, docs = _read_jsonl(src, corpus_file)
    if not doc_ids:
        raise InputError("the corpus is empty", file=corpus_file)
    first_row: dict[str, int] = {}
    dupes = []
    for i, d in enumerate(doc_ids):
        if d in first_row:
            dupes.append(d)
        else:
            first_row[d] = i
    if dupes:
        warnings.append(f"{corpus_file}: {len(dupes)} duplicate document id(s) ({_examples(dupes)}): first kept")
        rows = sorted(first_row.values())
        doc_ids, docs = [doc_ids[i] for i in rows], [docs[i] for i in rows]
    titles = [str(d.get("title") or "") for d in docs]
    bodies = [str(d.get("text") or "") for d in docs]

    q_ids, q_rows = _read_jsonl(src, "queries.jsonl")
    query_text = {}
    for q, row in zip(q_ids, q_rows):
        query_text.setdefault(q, str(row.get("text") or ""))

    qrels, dropped_warnings = _validated_qrels(src, qrels_file, query_text, set(first_row))
    warnings += dropped_warnings
    query_ids = [q for q in dict.fromkeys(q_ids) if q in qrels]

    ref_ids: list[str] = []
    train: dict[str, dict[str, int]] = {}
    if split != "train" and "train" in splits:
        try:
            train, _ = _validated_qrels(src, "qrels/train.tsv", query_text, set(first_row))
            ref_ids = [q for q in dict.fromkeys(q_ids) if q in train and q not in qrels]
        except InputError as exc:
            warnings.append(f"train queries not used as a reference bank: {exc}")
    return BeirDataset(dataset_label(src.label), split, doc_ids, titles, bodies, query_ids,
                       [query_text[q] for q in query_ids], {q: qrels[q] for q in query_ids}, splits, warnings,
                       ref_ids, [query_text[q] for q in ref_ids], {q: train[q] for q in ref_ids} if ref_ids else {})


def _validated_qrels(src: _Source, qrels_file: str, query_text: dict[str, str],
                     doc_set: set[str]) -> tuple[dict[str, dict[str, int]], list[str]]:
    pairs = _read_qrels(src, qrels_file)
    if not pairs:
        raise InputError("no judgements in the qrels file", file=qrels_file)
    bad_q = list(dict.fromkeys(q for _, q, _, _ in pairs if q not in query_text))
    bad_d = list(dict.fromkeys(d for _, _, d, _ in pairs if d not in doc_set))
    all_q = {q for _, q, _, _ in pairs}
    all_d = {d for _, _, d, _ in pairs}
    if len(bad_q) == len(all_q):
        raise InputError(f"none of the {len(all_q)} query ids matches queries.jsonl (e.g. {_examples(bad_q)}): "
                         "qrels and queries come from different collections", file=qrels_file,
                         row=pairs[0][0])
    if len(bad_d) == len(all_d):
        raise InputError(f"none of the {len(all_d)} corpus ids matches the corpus (e.g. {_examples(bad_d)}): "
                         "qrels and corpus come from different collections", file=qrels_file, row=pairs[0][0])
    warnings = []
    if bad_q:
        first_line = next(no for no, q, _, _ in pairs if q == bad_q[0])
        warnings.append(f"{qrels_file}: {len(bad_q)} query id(s) not in queries.jsonl dropped "
                        f"({_examples(bad_q)}; first at line {first_line})")
    if bad_d:
        first_line = next(no for no, _, d, _ in pairs if d == bad_d[0])
        warnings.append(f"{qrels_file}: {len(bad_d)} corpus id(s) not in the corpus dropped "
                        f"({_examples(bad_d)}; first at line {first_line})")
    bad_q_set, bad_d_set = set(bad_q), set(bad_d)
    qrels: dict[str, dict[str, int]] = {}
    for _, q, d, s in pairs:
        if q in bad_q_set or d in bad_d_set:
            continue
        qrels.setdefault(q, {})[d] = s
    return qrels, warnings


@dataclass
class LabelQueries:
    """Documents sampled as queries: query i is document `rows[i]`, its relevant set the other documents with the
    same label (or, capped, a seeded sample of at most `max_relevant` of them); `exclude` says what to leave out of
    each query's ranking."""
    rows: np.ndarray
    query_ids: list[str]
    qrels: dict[str, dict[str, int]]
    unjudged: list[np.ndarray] | None = None    # capped: per query, the rows of its label left out of the sample
    max_relevant: int | None = None

    @property
    def exclude(self) -> np.ndarray:
        """Rows to leave out of each query's ranking. Uncapped: one per query, the query document itself (1-D).
        Capped: a (queries × m) array padded with -1, the query document first, then the documents of its label
        outside its relevant sample: they are unjudged, neither relevant nor not, so they are taken out of the
        ranking (a condensed list, Sakai 2007) rather than counted as misses; the sample is blind to every method,
        so none is favoured. Recall@k then reads as the share of the sampled label-mates found before the k-th
        document of another label (uncapped it is bounded by k / |label|, ~0.04 for a class of 250); a ranking
        that puts every document of the label first scores 1."""
        if not self.unjudged or not any(len(u) for u in self.unjudged):
            return self.rows
        out = np.full((len(self.rows), 1 + max(len(u) for u in self.unjudged)), -1, np.int64)
        out[:, 0] = self.rows
        for i, rows in enumerate(self.unjudged):
            out[i, 1:1 + len(rows)] = rows
        return out


def queries_from_labels(labels: Sequence[str | None], n_queries: int, seed: int = 0, *,
                        doc_ids: Sequence[str] | None = None, max_relevant: int | None = None) -> LabelQueries:
    """Sample up to `n_queries` labelled documents (from labels that have at least two documents) as queries.

    A query's relevant set is every other document of its label; with `max_relevant`, a seeded sample of at most
    that many of them (the same for a query whatever `n_queries` is: seeded by `seed` and the query's row), the
    rest of its label unjudged (see `LabelQueries.exclude`)."""
    doc_ids = list(doc_ids) if doc_ids is not None else [str(i) for i in range(len(labels))]
    if len(doc_ids) != len(labels):
        raise InputError("labels and document ids differ in length")
    if max_relevant is not None:
        try:
            ok = not isinstance(max_relevant, bool) and int(max_relevant) == max_relevant and max_relevant >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"relevant documents per query must be a positive whole number, got {max_relevant!r}")
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab is not None and str(lab) != "":
            by_label.setdefault(str(lab), []).append(i)
    eligible = [i for rows in by_label.values() if len(rows) >= 2 for i in rows]
    if not eligible:
        raise InputError("no label has two or more documents: queries from labels need a relevant document each")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(np.array(sorted(eligible)), size=min(n_queries, len(eligible)), replace=False))
    qrels = {}
    unjudged: list[np.ndarray] = []
    for r in rows:
        others = np.array([j for j in by_label[str(labels[r])] if j != r], dtype=np.int64)
        if max_relevant is not None and len(others) > max_relevant:
            picked = np.random.default_rng([int(seed), int(r)]).permutation(len(others))
            keep = np.zeros(len(others), bool)
            keep[picked[:int(max_relevant)]] = True
            others, left = others[keep], others[~keep]
        else:
            left = np.zeros(0, np.int64)
        qrels[doc_ids[r]] = {doc_ids[j]: 1 for j in others}
        unjudged.append(left)
    return LabelQueries(rows.astype(np.int64), [doc_ids[r] for r in rows], qrels,
                        unjudged if max_relevant is not None else None,
                        int(max_relevant) if max_relevant is not None else None)
