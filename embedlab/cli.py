"""`python -m embedlab`: the command-line contract of DESIGN §3.

Exit codes: 0 success; 2 bad input (one clear line on stderr, nothing written); 1 an unexpected failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from embedlab.errors import EmbedLabError, UserError
from storage.db import default_db_path
from storage.output_files import atomic_output, check_output_path, database_files, same_file

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class CliError(EmbedLabError):
    """Bad input found by the CLI itself."""


def _open_db(args):
    from storage import connect

    return connect(args.db)


def _progress_printer(label: str) -> Callable[[float, str], None]:
    """Progress to stderr: live on a terminal, every 10 % otherwise."""
    state = {"last": -1.0, "t": 0.0}
    tty = sys.stderr.isatty()

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        step = int(fraction * 10)
        if tty and (now - state["t"] > 0.2 or fraction >= 1):
            sys.stderr.write(f"\r{label}: {fraction:6.1%} {message[:70]:<70}")
            if fraction >= 1:
                sys.stderr.write("\n")
            state["t"] = now
        elif not tty and fraction > 0 and (step > state["last"] or fraction >= 1 and state["last"] < 10):
            # (nothing at 0 %: a refusal while starting, e.g. a model that cannot load, stays one line)
            sys.stderr.write(f"{label}: {fraction:.0%} {message}\n")
            state["last"] = 10 if fraction >= 1 else step
        sys.stderr.flush()

    return report


def cmd_datasets(args) -> int:
    from embedlab.datasets import list_datasets

    for d in list_datasets():
        print(f"{d.name}\t{d.kind}\t{d.path}\t{d.description}\t{d.licence}")
    return EXIT_OK


def cmd_ingest(args) -> int:
    from embedlab.ingest import load_corpus
    from storage.corpora import save_corpus_in_session

    meta_cols = None if args.meta_cols is None else [c.strip() for c in args.meta_cols.split(",") if c.strip()]
    corpus = load_corpus(args.path, name=args.name, text_col=args.text_col, label_col=args.label_col,
                         id_col=args.id_col, meta_cols=meta_cols, max_bytes=_max_bytes(args.max_mb),
                         encoding=args.encoding)
    db = _open_db(args)
    # the session is created in the same transaction as the corpus: a refused corpus leaves no empty session
    info = save_corpus_in_session(db, args.session, corpus, replace=args.replace)
    skipped = f", skipped {corpus.n_skipped} empty" if corpus.n_skipped else ""
    labels = f", label column {info.label_col!r}" if info.label_col else ""
    print(f"ingested {info.n_docs} documents into corpus {info.name!r} of session {args.session!r} "
          f"(text column {info.text_col!r}{labels}{skipped})")
    return EXIT_OK


def _max_bytes(max_mb: str) -> int:
    """`--max-mb` as bytes: a positive finite number of megabytes (not nan, inf, 0 or negative)."""
    import math

    try:
        value = float(max_mb)
    except (TypeError, ValueError):
        raise CliError(f"--max-mb must be a number of megabytes, got {max_mb!r}") from None
    if not math.isfinite(value) or value <= 0 or value * 1024 * 1024 < 1:
        raise CliError(f"--max-mb must be a positive finite number of megabytes, got {max_mb!r}")
    return int(value * 1024 * 1024)


INPUT_ATTRS = ("path", "beir", "clinc", "train", "test", "ood", "file")   # the files and folders commands read


def _check_output_paths(args) -> None:
    """Every command's output file (`--json`, `--out`, an export's OUT) is checked before any work starts: not the
    database or one of its side files, not one of the command's inputs, not a folder, not below a file, in a folder
    that exists or can be created, and writable. An input that is the database is refused too."""
    database = args.db or default_db_path()
    inputs = [getattr(args, a) for a in INPUT_ATTRS if isinstance(getattr(args, a, None), str)]
    for given in inputs:
        if any(same_file(Path(given), p) for p in database_files(database)):
            raise CliError(f"{given}: that is the database {database}; give another file")
    for attr in ("json", "out"):
        value = getattr(args, attr, None)
        if not value:
            continue
        flag = "OUT" if attr == "out" and getattr(args, "action", None) == "export" else f"--{attr}"
        check_output_path(value, flag=flag, database=database, inputs=inputs)
        path = Path(value)
        if path.is_dir():
            raise CliError(f"{flag} {value}: is a folder, give a file name")
        if path.exists():
            if not path.is_file() and not path.is_char_device():
                raise CliError(f"{flag} {value}: not a regular file")
            if not os.access(path, os.W_OK):
                raise CliError(f"{flag} {value}: the file is not writable")
            continue
        parent = path.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise CliError(f"{flag} {value}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CliError(f"{flag} {value}: the folder {parent} is not writable")


def _corpus(db, args):
    from storage.corpora import find_corpus
    from storage.sessions import require_session

    return find_corpus(db, require_session(db, args.session), args.corpus)


def cmd_embed(args) -> int:
    import embedlab.tasks  # noqa: F401 - registers job kinds
    from embedlab.jobs import run_job
    from storage.matrices import get_matrix

    db = _open_db(args)
    info = _corpus(db, args)
    t0 = time.perf_counter()
    if args.engine == "ray":
        from embedlab.embedding.ray_engine import embed_corpus_ray

        meta = embed_corpus_ray(db, info.id, args.model, progress=_progress_printer("embed"))
    else:
        ref = run_job(db, "embed", {"corpus_id": info.id, "model": args.model}, session_id=info.session_id,
                      progress=_progress_printer("embed"))
        meta = get_matrix(db, int(ref.split(":")[1]))
    dt = time.perf_counter() - t0
    print(f"embedded corpus {info.name!r}: {meta.rows} x {meta.cols} with {meta.model} in {dt:.1f} s"
          f" ({meta.rows / dt if dt > 0 else 0:.0f} docs/s)")
    if args.map:
        from embedlab.tasks import map_params

        t1 = time.perf_counter()
        ref = run_job(db, "project", map_params(info.id, args.model), session_id=info.session_id,
                      progress=_progress_printer("map"))
        proj = get_matrix(db, int(ref.split(":")[1]))
        print(f"mapped corpus {info.name!r} with umap: {proj.rows} x {proj.cols} in {time.perf_counter() - t1:.1f} s")
    return EXIT_OK


def cmd_project(args) -> int:
    import embedlab.tasks  # noqa: F401
    from embedlab.jobs import run_job
    from embedlab.projection import projection_params
    from storage.matrices import get_matrix

    projection_params(method=args.method, n_components=args.dims, seed=args.seed)  # bad options: exit 2, no job
    db = _open_db(args)
    info = _corpus(db, args)
    params = {"corpus_id": info.id, "model": args.model, "method": args.method, "n_components": args.dims,
              "seed": args.seed}
    t0 = time.perf_counter()
    ref = run_job(db, "project", params, session_id=info.session_id, progress=_progress_printer("project"))
    meta = get_matrix(db, int(ref.split(":")[1]))
    print(f"projected corpus {info.name!r} with {args.method}: {meta.rows} x {meta.cols} in "
          f"{time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_diagnostics(args) -> int:
    """RankMe, hubness, anisotropy and PCA dimension of a corpus's embedding (embedded first when needed)."""
    from embedlab.diagnostics import diagnose, require_enough_documents
    from embedlab.embedding.space import EmbeddingSpace

    db = _open_db(args)
    info = _corpus(db, args)
    require_enough_documents(info.n_docs)        # before embedding: a refusal stays one line
    space = EmbeddingSpace.for_corpus(db, info.id, args.model)
    X = space.documents(progress=_progress_printer("embed"))
    _write_json(diagnose(X, model=space.model, progress=_progress_printer("diagnostics")), args.json)
    return EXIT_OK


def _write_json(result: dict, out: str | None) -> None:
    """Print the JSON and write it to `out` (whole or not at all)."""
    text = json.dumps(result, indent=2, sort_keys=False)
    if out and Path(out).is_char_device():   # /dev/stdout, /dev/null: nothing to replace
        Path(out).write_text(text + "\n")
    elif out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:
            tmp.write_text(text + "\n")
    print(text)


def _methods(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def _save_run(db, session: str | None, kind: str, params: dict, result: dict) -> None:
    if session:
        from storage.sessions import ensure_session, save_run

        save_run(db, ensure_session(db, session), kind, params, result.get("methods", {}), result)


def cmd_bench_retrieval(args) -> int:
    """The Retrieval page's comparison (`compare_methods`) on one BEIR split; only the JSON is the CLI's own."""
    from embedlab.retrieval.comparison import compare_methods
    from embedlab.retrieval.params import validate_comparison

    if not Path(args.beir).is_dir():
        raise CliError(f"{args.beir}: not a folder (expected a BEIR folder with corpus, queries and qrels)")
    if args.max_docs is not None and args.max_docs < 1:
        raise CliError(f"--max-docs must be a positive number, got {args.max_docs}")
    params = validate_comparison({"source": "beir", "beir_dir": args.beir, "split": args.split,
                                  "model": args.model, "methods": _methods(args.methods),
                                  "max_docs": args.max_docs})      # bad input: exit 2 before the database opens
    db = _open_db(args)
    done = compare_methods(db, params, progress=_progress_printer("bench-retrieval"))
    p, comp = done.params, done.comparison
    result = {"dataset": p["dataset"], "split": p["split"], "model": p["model"], "n_docs": len(comp.corpus),
              "n_queries": len(comp.queries), "methods": done.metrics}
    if args.session:  # the run keeps what the page's drill-down and the Atlas's map views read, as a page run does
        from embedlab.retrieval.run_details import details_of

        _save_run(db, args.session, "retrieval", vars_for_run(args), {**details_of(done), **result})
    _write_json(result, args.json)
    return EXIT_OK


def cmd_bench_ood(args) -> int:
    """The OOD page's comparison (`compare_detectors`) on CLINC150 or three files; only the JSON is the CLI's."""
    from embedlab.ood import parse_methods
    from embedlab.ood.bench import bench_json, bench_task, read_bench_sets
    from embedlab.ood.comparison import compare_detectors

    methods = _methods(args.methods)
    parse_methods(methods)  # bad input: exit 2 before the database opens
    sets = read_bench_sets(clinc=args.clinc, train=args.train, test=args.test, ood=args.ood)
    db = _open_db(args)
    task = bench_task(sets, args.model, db)
    result = bench_json(task, compare_detectors(task, methods, progress=_progress_printer("bench-ood")))
    _save_run(db, args.session, "ood", vars_for_run(args), result)
    _write_json(result, args.json)
    return EXIT_OK


def vars_for_run(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("func", "db") and v is not None}


def cmd_sessions(args) -> int:
    from storage.sessions import delete_session, list_sessions

    db = _open_db(args)
    if args.action == "list":
        for s in list_sessions(db):
            print(s.line())
    elif args.action == "export":
        from storage.export_options import export_contents, export_session_with_options, human_bytes, parse_without

        without = parse_without(args.without)
        path = export_session_with_options(db, args.name, args.out, without=without, overwrite=args.force)
        parts = ", ".join(f"{p.label} {human_bytes(p.bytes)}" + (" (left out)" if p.key in without else "")
                          for p in export_contents(db, args.name) if p.items)
        print(f"exported session {args.name!r} to {path} ({human_bytes(path.stat().st_size)}: {parts})")
    elif args.action == "import":
        from storage.transfer import import_session

        notes: list[str] = []
        name = import_session(db, args.file, notes=notes)
        print(f"imported session {name!r}")
        for note in notes:          # matrices kept private to their corpus ("imported, not verified"), and why
            print(f"  {note}")
    elif args.action == "delete":
        delete_session(db, args.name)
        print(f"deleted session {args.name!r}")
    return EXIT_OK


def cmd_cache(args) -> int:
    """List the stored matrices, or evict those one corpus uses (`storage.cache_admin`)."""
    from storage.cache_admin import cached_matrices, evict

    db = _open_db(args)
    if args.action == "list":
        for m in cached_matrices(db, args.session):
            print(m.line())
    else:
        for m in evict(db, args.session, args.corpus, model=args.model, kind=args.kind):
            print(f"evicted\t{m.line()}")
    return EXIT_OK


def cmd_report(args) -> int:
    """One self-contained HTML report of a session (`embedlab.report`)."""
    from embedlab.report import ReportError, write_report

    out = Path(args.out)
    if out.is_dir():
        raise ReportError(f"{out} is a folder: give a file name for the report")
    db = _open_db(args)
    path = write_report(db, args.session, out)
    print(f"wrote the report of session {args.session!r} to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="SQLite database (default: $EMBEDLAB_DB or data/embedlab.sqlite; created if missing)")
    parser = argparse.ArgumentParser(prog="python -m embedlab", parents=[common],
                                     description="EmbedLab: explore, map and evaluate text embeddings.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", parents=[common], help="list bundled and shared datasets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("ingest", parents=[common], help="read a file into a corpus of a session")
    p.add_argument("path")
    p.add_argument("--session", required=True)
    p.add_argument("--name", help="corpus name (default: the file name)")
    p.add_argument("--text-col")
    p.add_argument("--label-col")
    p.add_argument("--id-col")
    p.add_argument("--meta-cols", help="comma-separated metadata columns (default: all others, at most 50; "
                                       "'' for none)")
    p.add_argument("--max-mb", default="200",
                   help="refuse files larger than this, decoded or unpacked included (default 200)")
    p.add_argument("--encoding", help="the file's text encoding when it is not UTF-8 (e.g. cp1251, gb18030, "
                                      "shift_jis); by default UTF-8, or detected when unambiguous")
    p.add_argument("--replace", action="store_true", help="replace a corpus of the same name")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("embed", parents=[common], help="embed a corpus (a cache hit is instant)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence-transformers name or path, or tfidf-svd")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--map", action="store_true", help="then draw its UMAP map, as the page's 'Embed and map'")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("project", parents=[common], help="2-D/3-D map of a corpus (UMAP, PCA, t-SNE)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--method", choices=["umap", "pca", "tsne"], default="umap")
    p.add_argument("--dims", type=int, choices=[2, 3], default=2)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("bench-retrieval", parents=[common], help="compare retrieval methods on a BEIR folder")
    p.add_argument("--beir", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--methods", help="comma-separated (default: all)")
    p.add_argument("--max-docs", type=int)
    p.add_argument("--json")
    p.add_argument("--session", help="also keep the run in this session's history")
    p.set_defaults(func=cmd_bench_retrieval)

    p = sub.add_parser("bench-ood", parents=[common], help="compare OOD detectors")
    p.add_argument("--clinc", help="CLINC150's data_full.json (train less 'oos'; test; oos_test as OOD)")
    p.add_argument("--train", help="in-distribution training file (it defines the embedding space)")
    p.add_argument("--test", help="in-distribution test file (encoded in the training file's space)")
    p.add_argument("--ood", help="out-of-distribution test file (its labels are ignored)")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence-transformers name or path, or tfidf-svd")
    p.add_argument("--methods", help="comma-separated (default: all)")
    p.add_argument("--json")
    p.add_argument("--session", help="also keep the run in this session's history")
    p.set_defaults(func=cmd_bench_ood)

    p = sub.add_parser("diagnostics", parents=[common],
                       help="RankMe, hubness and isotropy of a corpus's embedding (JSON, DESIGN section 3)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--json", help="also write the JSON to this file")
    p.set_defaults(func=cmd_diagnostics)

    p = sub.add_parser("sessions", parents=[common], help="list, export, import or delete sessions")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ssub.add_parser("list", parents=[common], help="one line per session with its counts, sorted by name")
    s = ssub.add_parser("export", parents=[common], help="write one session to a standalone .sqlite file")
    s.add_argument("name")
    s.add_argument("out")
    s.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    s.add_argument("--without", metavar="tokens,projections",
                   help="leave out token embeddings and/or projections (both can be recomputed)")
    s = ssub.add_parser("import", parents=[common], help="add the session of an exported .sqlite file")
    s.add_argument("file")
    s = ssub.add_parser("delete", parents=[common], help="delete a session and what only it uses")
    s.add_argument("name")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("cache", parents=[common], help="list or evict cached matrices (embeddings, tokens, maps)")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("list", parents=[common], help="one line per stored matrix: kind, model, shape, shared or "
                                                        "imported (not verified), the corpora that use it")
    c.add_argument("--session", help="only the matrices this session's corpora use")
    c = csub.add_parser("evict", parents=[common], help="remove a corpus's cached matrices (an embedding goes with "
                                                         "its projections); they are recomputed when needed")
    c.add_argument("--session", required=True)
    c.add_argument("--corpus", required=True)
    c.add_argument("--model", help="only this model's matrices")
    c.add_argument("--kind", choices=["embedding", "tokens", "projection", "all"], default="all")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("report", parents=[common], help="one self-contained HTML report of a session")
    p.add_argument("--session", required=True)
    p.add_argument("--out", required=True, help="the HTML file to write (replaced if it exists)")
    p.set_defaults(func=cmd_report)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    if not hasattr(args, "db"):
        args.db = None
    from storage.db import explain_sqlite_error

    try:
        _check_output_paths(args)
        return args.func(args)
    except UserError as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except sqlite3.Error as exc:
        _fail(explain_sqlite_error(exc, args.db))
        return EXIT_BAD_INPUT
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted: stored work is kept; run the command again to resume")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if os.environ.get("EMBEDLAB_DEBUG"):
            raise
        _fail(f"unexpected error: {type(exc).__name__}: {exc} (set EMBEDLAB_DEBUG=1 for the traceback)")
        return EXIT_FAILURE


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
