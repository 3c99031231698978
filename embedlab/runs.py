"""Stored retrieval and OOD runs, typed: what a run holds, the one writer (the pages' jobs and the CLI's `--session`
alike) and the one loader, which migrates a run stored by an older version as it reads it.

Schema versions (`RUN_SCHEMA`, kept in a run's details as "schema"; nothing is rewritten in the database):
  1  (no "schema" key: before issue 21) the page jobs stored their job params with session_id; `bench-retrieval
     --session` and `bench-ood --session` stored their raw argparse values ({"command": "bench-ood", "train": PATH,
     "methods": "knn,msp", "json": …}) and their JSON object as the details; OOD CLI runs kept fit_s and score_s
     among the metrics and no per-document scores.
  2  params are the validated comparison, the same keys from the page and the CLI (the session is the run's own
     column, not a param): see `RetrievalRun` and `OODRun`; an OOD run's details have one shape from either side.

Migration 1 → 2 (`migrate`): session_id leaves the params. A `bench-retrieval` run's params become the comparison
it ran ({"source": "beir", "beir_dir", "split", "max_docs", "max_queries": None, "model", "methods" (the metrics'
methods), "params": {}, "baseline" and "dataset" from its details}) and the JSON's copies ("methods", "split",
"model") leave its details. A `bench-ood` run's params become {"source": "clinc" | "files", its files, "model",
"methods" (those that ran, then those skipped), "params": {}, "dataset"}; only the six OOD metrics stay metrics
(fit_s and score_s move to details["timing"]), "skipped" becomes "disabled". Every run gets the keys its kind
promises (a retrieval run's "baseline": its own, else its details', else bm25 when it ran, else its first
method), so no reader patches one key with another.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from embedlab.ood.comparison import Comparison, OODTask
from embedlab.ood.evaluate import roc_points
from embedlab.ood.label_rules import usable_labels
from embedlab.retrieval.comparison import ComparisonResult
from embedlab.retrieval.run_details import details_of
from storage import StorageError
from storage.sessions import save_run as insert_run

RUN_SCHEMA = 2
KINDS = ("retrieval", "ood")
OOD_METRIC_KEYS = ("auroc", "auroc_ci", "fpr95", "fpr95_openood", "aupr_in", "aupr_out")
OOD_SOURCES = ("session", "clinc", "files")   # stored corpora (the OOD page), CLINC150, three files (bench-ood)
ROC_POINTS = 300


# --- the runs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunHeader:
    """A run as the session's run list shows it: everything but the details (which can be large)."""

    id: int
    session_id: int
    kind: str
    created_at: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    schema: int = RUN_SCHEMA                     # the version it was stored with (read as RUN_SCHEMA)

    @property
    def name(self) -> str:
        """"run #7": a run is named by its own number everywhere (never by the job that made it)."""
        return f"run #{self.id}"

    @property
    def dataset(self) -> str:
        return str(self.params.get("dataset") or "")

    @property
    def model(self) -> str:
        return str(self.params.get("model") or "")

    @property
    def source(self) -> str:
        return str(self.params.get("source") or "")

    @property
    def methods(self) -> list[str]:
        """The methods with metrics, in the run's order."""
        return list(self.metrics)


@dataclass(frozen=True)
class RetrievalRun(RunHeader):
    """A retrieval comparison. params (validated, `embedlab.retrieval.params`): source ("beir" | "labels" |
    "judgments"), model, methods, params, baseline, dataset, and the source's own keys (beir_dir, split, max_docs,
    max_queries; or corpus_id, n_queries, seed, max_relevant; or corpus_id, judges). details:
    `embedlab.retrieval.run_details.run_details` (the drill-down) and embed_s (seconds spent embedding before any
    index was built; absent in schema-1 runs); a "judgments" run adds "condensed" ({method: metrics} on condensed
    lists: unjudged documents removed, Sakai 2007), "condensed_significance" and "document_queries" ({query id:
    corpus row} of the queries that are documents; the others are typed texts)."""

    details: dict[str, Any] = field(default_factory=dict)

    @property
    def condensed(self) -> dict[str, dict[str, float | None]]:
        """{method: {metric: value}} on condensed lists ({} unless the queries are the user's judgments)."""
        return self.details.get("condensed") or {}

    @property
    def condensed_significance(self) -> dict[str, dict[str, float | None]]:
        return self.details.get("condensed_significance") or {}

    @property
    def document_queries(self) -> dict[str, int]:
        """{query id: corpus row} of a "judgments" run's queries that are documents of its corpus (judged as a
        document's neighbours); {} for other runs (a labels run's queries are all documents, named by doc id)."""
        return {str(q): int(r) for q, r in (self.details.get("document_queries") or {}).items()}

    @property
    def judges(self) -> list[str] | None:
        """The judges whose grades a "judgments" run counted (None: every judge)."""
        return self.params.get("judges")

    @property
    def baseline(self) -> str:
        return str(self.params["baseline"])

    @property
    def significance(self) -> dict[str, dict[str, float | None]]:
        return self.details.get("significance") or {}

    @property
    def embed_s(self) -> float | None:
        value = self.details.get("embed_s")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def has_drilldown(self) -> bool:
        """Whether the run kept per-query rankings (older `bench-retrieval --session` runs did not)."""
        return bool(self.details.get("rankings")) and bool(self.details.get("queries"))


@dataclass(frozen=True)
class OODRun(RunHeader):
    """An OOD comparison. params: source (`OOD_SOURCES`), model, methods, params, dataset; a "session" run adds the
    page's choices (id_corpus_id, id_labels, ood_labels, near_ood_labels, test, fraction, seed, id_test_corpus_id,
    test_corpus_id) and the corpora's names (corpus, id_test_corpus, test_corpus); a CLI run its files (clinc, or
    train, test and ood). details: per test document scores, is_ood, test_labels and test_idx ([corpus id, row];
    empty for a CLI run, whose texts are not stored), roc, n_id, n_ood, n_train, n_left_out, disabled,
    id_accuracy, timing, timing_s, train_labels, corpora."""

    details: dict[str, Any] = field(default_factory=dict)

    @property
    def corpus(self) -> str:
        """The in-distribution corpus's name (a "session" run), else ""."""
        return str(self.params.get("corpus") or "")

    @property
    def scores(self) -> dict[str, list[float]]:
        return self.details.get("scores") or {}

    @property
    def is_ood(self) -> list[int]:
        return self.details.get("is_ood") or []

    @property
    def test_idx(self) -> list[list[int]]:
        return self.details.get("test_idx") or []

    @property
    def test_labels(self) -> list[Any]:
        return self.details.get("test_labels") or [None] * len(self.is_ood)

    @property
    def disabled(self) -> dict[str, str]:
        return self.details.get("disabled") or {}


Run = RetrievalRun | OODRun
_CLASSES: dict[str, type[RetrievalRun | OODRun]] = {"retrieval": RetrievalRun, "ood": OODRun}


# --- the one writer ----------------------------------------------------------------------------------------------


def save_run(db: sqlite_utils.Database, session_id: int, kind: str, params: Mapping[str, Any],
             metrics: Mapping[str, Any], details: Mapping[str, Any]) -> int:
    """Store a run of `kind` in the session (params as validated; the session is the run's column, never a param);
    returns its id. Every run is written here, in the current schema."""
    if kind not in KINDS:
        raise ValueError(f"a run is one of {KINDS}, not {kind!r}")
    stored = {k: v for k, v in params.items() if k != "session_id"}
    return insert_run(db, int(session_id), kind, stored, dict(metrics), {**details, "schema": RUN_SCHEMA})


def save_retrieval_run(db: sqlite_utils.Database, session_id: int, done: ComparisonResult) -> int:
    """Keep a finished retrieval comparison (the Retrieval page's job and `bench-retrieval --session`)."""
    details = {**details_of(done), "embed_s": round(float(done.embed_s), 3)}
    return save_run(db, session_id, "retrieval", done.params, done.metrics, details)


def ood_record(result: Comparison, task: OODTask) -> tuple[dict[str, dict], dict[str, Any]]:
    """(metrics, details) of a finished OOD comparison, the same from the OOD page's job and from `bench-ood`: per
    method the six metrics; per test document every detector's score, truth, label and (when it is stored) where."""
    runnable = list(result.methods)
    metrics = {m: {k: result.methods[m][k] for k in OOD_METRIC_KEYS if k in result.methods[m]} for m in runnable}
    roc = {}
    for m in runnable:
        points = roc_points(result.scores[m], result.is_ood, max_points=ROC_POINTS)
        roc[m] = {"fpr": points["fpr"], "tpr": points["tpr"]}
    refs = task.test_refs
    train_labels = usable_labels(task.train_labels)
    n_train = len(task.train_rows) if task.train_rows is not None else len(task.space.texts)
    details = {
        "scores": {m: [float(v) for v in result.scores[m]] for m in runnable},
        "test_idx": [[int(c), int(r)] for c, r in refs] if refs and all(x is not None for x in refs) else [],
        "is_ood": [int(v) for v in result.is_ood],
        "test_labels": task.test_labels,
        "roc": roc,
        "id_accuracy": result.id_accuracy,
        "n_id": result.n_id,
        "n_ood": result.n_ood,
        "n_train": int(n_train),
        "n_left_out": 0,
        "disabled": dict(result.skipped),
        "timing": {m: {k: result.methods[m].get(k) for k in ("fit_s", "score_s")} for m in runnable},
        "timing_s": dict(result.timing_s),
        "train_labels": dict(Counter(train_labels.tolist())) if train_labels is not None else {},
        "corpora": {},
    }
    return metrics, details


def save_ood_run(db: sqlite_utils.Database, session_id: int, params: Mapping[str, Any], result: Comparison,
                 task: OODTask, **details: Any) -> int:
    """Keep a finished OOD comparison (the OOD page's job and `bench-ood --session`); `details` adds what only the
    caller knows (the page's n_left_out and corpora)."""
    metrics, record = ood_record(result, task)
    return save_run(db, session_id, "ood", params, metrics, {**record, **details})


# --- the one loader ----------------------------------------------------------------------------------------------

# what the migration reads from a run's details, fetched by SQLite so that listing runs never parses them whole
_DETAIL_KEYS = ("schema", "dataset", "baseline", "model", "split")
_DETAIL_MAPS = ("skipped", "disabled")
_BRIEF = "json_object(" + ", ".join(
    [f"'{k}', json_extract(details_json, '$.{k}')" for k in _DETAIL_KEYS]
    + [f"'{k}', json(json_extract(details_json, '$.{k}'))" for k in _DETAIL_MAPS]) + ")"


def load_run(db: sqlite_utils.Database, run_id: int) -> Run:
    """One stored run with its details, in the current schema. StorageError when there is no such run."""
    row = db.execute("SELECT id, session_id, kind, params_json, metrics_json, details_json, created_at FROM runs "
                     "WHERE id = ?", [int(run_id)]).fetchone()
    if row is None:
        raise StorageError(f"no run {run_id}")
    if row[2] not in KINDS:
        raise StorageError(f"run {run_id} is a {row[2]!r} run, neither retrieval nor OOD")
    params, metrics, details, schema = migrate(row[2], json.loads(row[3]), json.loads(row[4]), json.loads(row[5]))
    return _CLASSES[row[2]](id=int(row[0]), session_id=int(row[1]), kind=row[2], created_at=str(row[6]),
                            params=params, metrics=metrics, schema=schema, details=details)


def list_runs(db: sqlite_utils.Database, session_id: int, kind: str | None = None) -> list[RunHeader]:
    """The session's retrieval and OOD runs (of one kind), newest first, in the current schema, without details."""
    sql = (f"SELECT id, session_id, kind, params_json, metrics_json, {_BRIEF}, created_at FROM runs "
           f"WHERE session_id = ? AND kind IN ({', '.join('?' * len(KINDS))})")
    args: list[Any] = [int(session_id), *KINDS]
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    out = []
    for row in db.execute(sql + " ORDER BY id DESC", args):
        params, metrics, _, schema = migrate(row[2], json.loads(row[3]), json.loads(row[4]), json.loads(row[5]))
        out.append(RunHeader(id=int(row[0]), session_id=int(row[1]), kind=row[2], created_at=str(row[6]),
                             params=params, metrics=metrics, schema=schema))
    return out


def job_of_run(db: sqlite_utils.Database, run: RunHeader) -> int | None:
    """The number of the job of this session that stored the run, when that job is still kept (a run of the CLI, or
    of an imported session, has none)."""
    row = db.execute("SELECT id FROM jobs WHERE result_ref = ? AND session_id = ? ORDER BY id DESC LIMIT 1",
                     [f"run:{int(run.id)}", int(run.session_id)]).fetchone()
    return int(row[0]) if row else None


# --- migration ---------------------------------------------------------------------------------------------------


def migrate(kind: str, params: Any, metrics: Any, details: Any) -> tuple[dict, dict, dict, int]:
    """(params, metrics, details, the schema it was stored with) of a stored run, read as the current schema (the
    rule is in the module docstring). Never raises on an odd shape: what it cannot read is left empty."""
    p = dict(params) if isinstance(params, Mapping) else {}
    m = {str(k): dict(v) for k, v in metrics.items() if isinstance(v, Mapping)} if isinstance(metrics, Mapping) \
        else {}
    d = dict(details) if isinstance(details, Mapping) else {}
    schema = int(d.pop("schema", None) or 1)          # the version is the run's `schema`, not a detail
    if schema >= RUN_SCHEMA:
        return p, m, d, schema
    p.pop("session_id", None)
    if kind == "retrieval":
        p, d = _retrieval_v1(p, m, d)
    else:
        p, m, d = _ood_v1(p, m, d)
    return p, m, d, schema


def _method_list(value: Any, fallback: list[str]) -> list[str]:
    """A stored method list: a list, a CLI's "a,b" string, else the fallback."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value] if isinstance(value, (list, tuple)) and value else fallback


def _retrieval_v1(p: dict, m: dict, d: dict) -> tuple[dict, dict]:
    if "source" not in p and ("beir" in p or p.get("command") == "bench-retrieval"):     # bench-retrieval --session
        p = {"source": "beir", "beir_dir": str(p.get("beir") or ""),
             "split": p.get("split") or d.get("split") or "test", "max_docs": p.get("max_docs"), "max_queries": None,
             "model": d.get("model") or p.get("model") or "", "methods": list(m), "params": {}}
        for key in ("methods", "split", "model"):          # the CLI's JSON, kept beside the details
            d.pop(key, None)
    p["source"] = p.get("source") or "beir"
    p["model"] = p.get("model") or d.get("model") or ""
    p["methods"] = _method_list(p.get("methods"), list(m))
    p["params"] = p.get("params") if isinstance(p.get("params"), Mapping) else {}
    p["dataset"] = str(p.get("dataset") or d.get("dataset") or "")
    methods = p["methods"] or list(m)
    p["baseline"] = p.get("baseline") or d.get("baseline") or \
        ("bm25" if "bm25" in methods else (methods[0] if methods else ""))
    return p, d


def _ood_v1(p: dict, m: dict, d: dict) -> tuple[dict, dict, dict]:
    skipped = d.pop("skipped", None) if isinstance(d.get("skipped"), Mapping) else None
    if "id_corpus_id" not in p and (p.get("command") == "bench-ood" or any(k in p for k in ("clinc", "train"))):
        files = {k: str(p[k]) for k in ("clinc", "train", "test", "ood") if p.get(k)}
        p = {"source": "clinc" if "clinc" in files else "files", **files,
             "model": d.get("model") or p.get("model") or "",
             "methods": [*m, *(skipped or {})], "params": {}, "dataset": d.get("dataset") or ""}
        d["timing"] = {name: {k: v[k] for k in ("fit_s", "score_s") if k in v} for name, v in m.items()}
        m = {name: {k: v[k] for k in OOD_METRIC_KEYS if k in v} for name, v in m.items()}
        for key in ("methods", "model", "dataset"):        # the CLI's JSON, kept beside the details
            d.pop(key, None)
    if skipped is not None:
        d["disabled"] = {**skipped, **(d.get("disabled") or {})}
    p["source"] = p.get("source") or "session"
    p["model"] = p.get("model") or d.get("model") or ""
    p["methods"] = _method_list(p.get("methods"), [*m, *(d.get("disabled") or {})])
    p["params"] = p.get("params") if isinstance(p.get("params"), Mapping) else {}
    p["dataset"] = str(p.get("dataset") or p.get("corpus") or d.get("dataset") or "")
    return p, m, d
