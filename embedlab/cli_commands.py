"""The CLI commands that read files or compute: datasets, ingest, embed, project, diagnostics, bench-retrieval,
bench-ood, report, `judgments import/export/agreement`, and `sessions export/import` (an import re-encodes a sample of each imported embedding to verify
it). `embedlab.cli` imports this module only when one of them runs: `sessions list` and `cache list` never load the
engine."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import sqlite_utils

import embedlab.tasks  # noqa: F401 - registers the job kinds that `run_job` runs
from embedlab.cli_support import EXIT_OK, CliError, open_db, progress_printer
from embedlab.cli_vectors import cmd_export_vectors, ingest_with_vectors, wants_vectors  # noqa: F401 - dispatched
from embedlab.datasets import list_datasets
from embedlab.diagnostics import diagnose, require_enough_documents
from embedlab.embedding.ray_engine import embed_corpus_ray
from embedlab.embedding.space import EmbeddingSpace
from embedlab.formatting import format_size
from embedlab.ingest import load_corpus
from embedlab.jobs import run_job
from embedlab.judgment_files import export_judgments, import_judgments
from embedlab.judgments import agreement
from embedlab.ood import parse_methods
from embedlab.ood.bench import bench_json, bench_params, bench_task, read_bench_sets
from embedlab.ood.comparison import compare_detectors
from embedlab.projection import projection_params
from embedlab.report import ReportError, write_report
from embedlab.retrieval.comparison import compare_methods
from embedlab.retrieval.params import judge_list, validate_comparison
from embedlab.runs import save_ood_run, save_retrieval_run
from embedlab.session_files import import_session_file
from embedlab.tasks import map_params
from storage.corpora import CorpusInfo, find_corpus, list_corpora, save_corpus_in_session
from storage.db import default_db_path
from storage.export_options import export_contents, export_session_with_options, parse_without
from storage.judgments import judge_names
from storage.matrices import get_matrix
from storage.output_files import atomic_output
from storage.sessions import ensure_session, get_session_id, require_session


def named_corpus(db: sqlite_utils.Database, args) -> CorpusInfo:
    """The corpus `--corpus` of session `--session`."""
    return find_corpus(db, require_session(db, args.session), args.corpus)


def write_json(result: dict, out: str | None) -> None:
    """Print the JSON and write it to `out` (whole or not at all)."""
    text = json.dumps(result, indent=2, sort_keys=False)
    if out and Path(out).is_char_device():   # /dev/stdout, /dev/null: nothing to replace
        Path(out).write_text(text + "\n")
    elif out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:
            tmp.write_text(text + "\n")
    print(text)


def method_list(value: str | None) -> list[str] | None:
    """`--methods a,b` as names (None when not given)."""
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def cmd_datasets(args) -> int:
    for d in list_datasets():
        print(f"{d.name}\t{d.kind}\t{d.path}\t{d.description}\t{d.licence}")
    return EXIT_OK


def cmd_ingest(args) -> int:
    meta_cols = None if args.meta_cols is None else [c.strip() for c in args.meta_cols.split(",") if c.strip()]
    if wants_vectors(args):
        return ingest_with_vectors(args, meta_cols=meta_cols, max_bytes=_max_bytes(args.max_mb))
    corpus = load_corpus(args.path, name=args.name, text_col=args.text_col, label_col=args.label_col,
                         id_col=args.id_col, meta_cols=meta_cols, max_bytes=_max_bytes(args.max_mb),
                         encoding=args.encoding)
    db = open_db(args)
    # the session is created in the same transaction as the corpus: a refused corpus leaves no empty session
    info = save_corpus_in_session(db, args.session, corpus, replace=args.replace)
    skipped = f", skipped {corpus.n_skipped} empty" if corpus.n_skipped else ""
    labels = f", label column {info.label_col!r}" if info.label_col else ""
    print(f"ingested {info.n_docs} documents into corpus {info.name!r} of session {args.session!r} "
          f"(text column {info.text_col!r}{labels}{skipped})")
    return EXIT_OK


def _max_bytes(max_mb: str) -> int:
    """`--max-mb` as bytes: a positive finite number of megabytes (not nan, inf, 0 or negative)."""
    try:
        value = float(max_mb)
    except (TypeError, ValueError):
        raise CliError(f"--max-mb must be a number of megabytes, got {max_mb!r}") from None
    if not math.isfinite(value) or value <= 0 or value * 1024 * 1024 < 1:
        raise CliError(f"--max-mb must be a positive finite number of megabytes, got {max_mb!r}")
    return int(value * 1024 * 1024)


def cmd_embed(args) -> int:
    db = open_db(args)
    info = named_corpus(db, args)
    t0 = time.perf_counter()
    if args.engine == "ray":
        meta = embed_corpus_ray(db, info.id, args.model, progress=progress_printer("embed"))
    else:
        ref = run_job(db, "embed", {"corpus_id": info.id, "model": args.model}, session_id=info.session_id,
                      progress=progress_printer("embed"))
        meta = get_matrix(db, int(ref.split(":")[1]))
    dt = time.perf_counter() - t0
    print(f"embedded corpus {info.name!r}: {meta.rows} x {meta.cols} with {meta.model} in {dt:.1f} s"
          f" ({meta.rows / dt if dt > 0 else 0:.0f} docs/s)")
    if args.map:
        t1 = time.perf_counter()
        ref = run_job(db, "project", map_params(info.id, args.model), session_id=info.session_id,
                      progress=progress_printer("map"))
        proj = get_matrix(db, int(ref.split(":")[1]))
        print(f"mapped corpus {info.name!r} with umap: {proj.rows} x {proj.cols} in {time.perf_counter() - t1:.1f} s")
    return EXIT_OK


def cmd_project(args) -> int:
    projection_params(method=args.method, n_components=args.dims, seed=args.seed)  # bad options: exit 2, no job
    db = open_db(args)
    info = named_corpus(db, args)
    params = {"corpus_id": info.id, "model": args.model, "method": args.method, "n_components": args.dims,
              "seed": args.seed}
    t0 = time.perf_counter()
    ref = run_job(db, "project", params, session_id=info.session_id, progress=progress_printer("project"))
    meta = get_matrix(db, int(ref.split(":")[1]))
    print(f"projected corpus {info.name!r} with {args.method}: {meta.rows} x {meta.cols} in "
          f"{time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_diagnostics(args) -> int:
    """RankMe, hubness, anisotropy and PCA dimension of a corpus's embedding (embedded first when needed)."""
    db = open_db(args)
    info = named_corpus(db, args)
    require_enough_documents(info.n_docs)        # before embedding: a refusal stays one line
    space = EmbeddingSpace.for_corpus(db, info.id, args.model)
    X = space.documents(progress=progress_printer("embed"))
    write_json(diagnose(X, model=space.model, progress=progress_printer("diagnostics")), args.json)
    return EXIT_OK


def cmd_bench_retrieval(args) -> int:
    """The Retrieval page's comparison (`compare_methods`) on one BEIR split, or on a session's judgments of one of
    its corpora (`--judgments S[:C]`, the JSON adding "condensed"); only the JSON is the CLI's own."""
    if args.judgments is not None:
        return _bench_judgments(args)
    if args.judges:
        raise CliError("--judges goes with --judgments")
    if not Path(args.beir).is_dir():
        raise CliError(f"{args.beir}: not a folder (expected a BEIR folder with corpus, queries and qrels)")
    if args.max_docs is not None and args.max_docs < 1:
        raise CliError(f"--max-docs must be a positive number, got {args.max_docs}")
    params = validate_comparison({"source": "beir", "beir_dir": args.beir, "split": args.split,
                                  "model": args.model, "methods": method_list(args.methods),
                                  "max_docs": args.max_docs})      # bad input: exit 2 before the database opens
    db = open_db(args)
    done = compare_methods(db, params, progress=progress_printer("bench-retrieval"))
    p, comp = done.params, done.comparison
    result = {"dataset": p["dataset"], "split": p["split"], "model": p["model"], "n_docs": len(comp.corpus),
              "n_queries": len(comp.queries), "methods": done.metrics}
    if args.session:  # kept by the page job's writer: the same params, metrics and drill-down details
        save_retrieval_run(db, ensure_session(db, args.session), done)
    write_json(result, args.json)
    return EXIT_OK


def _bench_judgments(args) -> int:
    """`bench-retrieval --judgments S[:C]`: the same JSON as with --beir, plus {"condensed": {method: metrics}}."""
    if args.max_docs is not None:
        raise CliError("--max-docs goes with --beir: with --judgments every document of the corpus is ranked")
    db = open_db(args)
    info = judged_corpus(db, args.judgments)
    params = validate_comparison({"source": "judgments", "corpus_id": info.id, "judges": judge_list(args.judges),
                                  "model": args.model, "methods": method_list(args.methods)})
    done = compare_methods(db, params, progress=progress_printer("bench-retrieval"))
    p, comp = done.params, done.comparison
    result = {"dataset": p["dataset"], "split": "judgments", "model": p["model"], "n_docs": len(comp.corpus),
              "n_queries": len(comp.queries), "methods": done.metrics,
              "condensed": {name: {k: v for k, v in m.items()} for name, m in done.condensed.items()}}
    if args.session:
        save_retrieval_run(db, ensure_session(db, args.session), done)
    write_json(result, args.json)
    return EXIT_OK


def judged_corpus(db: sqlite_utils.Database, spec: str) -> CorpusInfo:
    """The corpus `SESSION[:CORPUS]` names: a session (whose only corpus with judgments is meant), or a session and
    one of its corpora split at a colon (names may hold colons: every split is tried, the first that names a
    corpus wins)."""
    sid = get_session_id(db, spec) if spec.strip() else None
    if sid is not None:
        judged = [c for c in list_corpora(db, sid) if judge_names(db, sid, c.id)]
        if len(judged) == 1:
            return judged[0]
        names = ", ".join(repr(c.name) for c in judged)
        raise CliError(f"session {spec!r} has {'no corpus' if not judged else 'several corpora'} with judgments"
                       + (f" ({names}): name one as SESSION:CORPUS" if judged else ""))
    for i, ch in enumerate(spec):
        if ch != ":":
            continue
        session, corpus = spec[:i], spec[i + 1:]
        sid = get_session_id(db, session) if session.strip() else None
        if sid is not None and corpus:
            found = [c for c in list_corpora(db, sid) if c.name == corpus]
            if found:
                return found[0]
    raise CliError(f"--judgments {spec!r}: no session of that name, and no SESSION:CORPUS split of it names a "
                   "corpus")


def cmd_judgments(args) -> int:
    """`judgments import | export | agreement` (`embedlab.judgment_files`, `embedlab.judgments`)."""
    db = open_db(args)
    info = named_corpus(db, args)
    if args.action == "import":
        done = import_judgments(db, info.session_id, info.id, args.qrels, args.queries, judge=args.judge)
        print(f"imported {done.judgments:,} judgments of {done.queries:,} queries ({done.document_queries:,} of them "
              f"documents of the corpus) into corpus {info.name!r} of session {args.session!r}, judge "
              f"{done.judge!r}")
    elif args.action == "export":
        qrels, queries, n = export_judgments(db, info.session_id, info.id, args.out, judges=judge_list(args.judges),
                                             database=args.db or default_db_path())
        print(f"exported {n:,} judged pairs of corpus {info.name!r} to {qrels} and {queries}")
    else:
        names = judge_list(args.judges) or []
        if len(names) != 2:
            raise CliError(f"--judges takes two judges' names, A,B; got {args.judges!r}")
        found = agreement(db, info.session_id, info.id, names[0], names[1])
        write_json(found.as_json(), args.json)
    return EXIT_OK


def cmd_bench_ood(args) -> int:
    """The OOD page's comparison (`compare_detectors`) on CLINC150 or three files; only the JSON is the CLI's."""
    methods = method_list(args.methods)
    parse_methods(methods)  # bad input: exit 2 before the database opens
    sets = read_bench_sets(clinc=args.clinc, train=args.train, test=args.test, ood=args.ood)
    db = open_db(args)
    task = bench_task(sets, args.model, db)
    comparison = compare_detectors(task, methods, progress=progress_printer("bench-ood"))
    if args.session:  # kept by the page job's writer: validated params, the same metrics and details
        params = bench_params(sets, task, methods, clinc=args.clinc, train=args.train, test=args.test, ood=args.ood)
        save_ood_run(db, ensure_session(db, args.session), params, comparison, task)
    write_json(bench_json(task, comparison), args.json)
    return EXIT_OK


def cmd_report(args) -> int:
    """One self-contained HTML report of a session (`embedlab.report`)."""
    out = Path(args.out)
    if out.is_dir():
        raise ReportError(f"{out} is a folder: give a file name for the report")
    db = open_db(args)
    path = write_report(db, args.session, out)
    print(f"wrote the report of session {args.session!r} to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK


def cmd_import_session(args) -> int:
    """`sessions import FILE`: the file checked in storage, its embeddings verified against their models here."""
    db = open_db(args)
    notes: list[str] = []
    name = import_session_file(db, args.file, notes=notes)
    print(f"imported session {name!r}")
    for note in notes:          # matrices kept private to their corpus ("imported, not verified"), and why
        print(f"  {note}")
    return EXIT_OK


def cmd_export_session(args) -> int:
    """`sessions export NAME OUT [--without tokens,projections]`."""
    db = open_db(args)
    without = parse_without(args.without)
    path = export_session_with_options(db, args.name, args.out, without=without, overwrite=args.force)
    parts = ", ".join(f"{p.label} {format_size(p.bytes)}" + (" (left out)" if p.key in without else "")
                      for p in export_contents(db, args.name) if p.items)
    print(f"exported session {args.name!r} to {path} ({format_size(path.stat().st_size)}: {parts})")
    return EXIT_OK
