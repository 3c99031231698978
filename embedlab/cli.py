"""`python -m embedlab`: the command-line contract of DESIGN §3.

Exit codes: 0 success; 2 bad input (one clear line on stderr, nothing written); 1 an unexpected failure.
The parser and the housekeeping commands (`sessions list/delete`, `cache list/evict`) live here; every command that
reads files or computes is in `embedlab.cli_commands`, imported only when one of them runs.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Sequence

from embedlab.cli_support import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, CliError, open_db
from embedlab.embedding import DEFAULT_MODEL
from embedlab.errors import UserError
from storage.cache_admin import cached_matrices, evict
from storage.db import default_db_path, explain_sqlite_error
from storage.output_files import check_output_path, database_files, same_file
from storage.sessions import delete_session, list_sessions

__all__ = ["CliError", "EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "build_parser", "main"]


def _lazy_command(command: str) -> Callable[[argparse.Namespace], int]:
    """The command `cmd_<command>` of `embedlab.cli_commands`, imported when it runs."""
    def run(args: argparse.Namespace) -> int:
        # Lazy on purpose (measured): `embedlab.cli_commands` brings 63 more of our modules (ingestion, embedding,
        # projection, the retrieval and OOD comparisons, the report); imported at the top they add ~30 ms to every
        # command, `sessions list` and `cache list` included (-X importtime, min of 7 runs, 2-core machine); without
        # them the CLI starts as fast as before the move of imports to the top.
        from embedlab import cli_commands

        return getattr(cli_commands, f"cmd_{command}")(args)

    run.__name__ = f"cmd_{command}"
    return run


INPUT_ATTRS = ("path", "beir", "clinc", "train", "test", "ood", "file", "qrels", "queries",
               "vectors")   # what commands read


def _outputs(args) -> list[tuple[str, str]]:
    """(flag, path) of every file a command writes: `--json`, `--out` (an export's OUT), and for `judgments export`
    the two files it writes into its `--out` folder."""
    if args.command == "judgments" and args.action == "export":
        return [("--out", str(Path(args.out) / name)) for name in ("qrels.tsv", "queries.jsonl")]
    out = []
    for attr in ("json", "out"):
        value = getattr(args, attr, None)
        if value:
            out.append(("OUT" if attr == "out" and getattr(args, "action", None) == "export" else f"--{attr}", value))
    return out


def _check_output_paths(args) -> None:
    """Every command's output file (`--json`, `--out`, an export's OUT) is checked before any work starts: not the
    database or one of its side files, not one of the command's inputs, not a folder, not below a file, in a folder
    that exists or can be created, and writable. An input that is the database is refused too."""
    database = args.db or default_db_path()
    inputs = [getattr(args, a) for a in INPUT_ATTRS if isinstance(getattr(args, a, None), str)]
    for given in inputs:
        if any(same_file(Path(given), p) for p in database_files(database)):
            raise CliError(f"{given}: that is the database {database}; give another file")
    for flag, value in _outputs(args):
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


def cmd_sessions(args) -> int:
    if args.action in ("export", "import"):
        return _lazy_command(f"{args.action}_session")(args)
    db = open_db(args)
    if args.action == "list":
        for s in list_sessions(db):
            print(s.line())
    elif args.action == "delete":
        delete_session(db, args.name)
        print(f"deleted session {args.name!r}")
    return EXIT_OK


def cmd_cache(args) -> int:
    """List the stored matrices, or evict those one corpus uses (`storage.cache_admin`)."""
    db = open_db(args)
    if args.action == "list":
        for m in cached_matrices(db, args.session):
            print(m.line())
    else:
        for m in evict(db, args.session, args.corpus, model=args.model, kind=args.kind):
            print(f"evicted\t{m.line()}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="SQLite database (default: $EMBEDLAB_DB or data/embedlab.sqlite; created if missing)")
    parser = argparse.ArgumentParser(prog="python -m embedlab", parents=[common],
                                     description="EmbedLab: explore, map and evaluate text embeddings.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", parents=[common], help="list bundled and shared datasets")
    p.set_defaults(func=_lazy_command("datasets"))

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
    # --- vectors ---
    p.add_argument("--vectors", metavar="FILE", help="vectors beside the table, one row per data row: .npy, .npz, "
                                                     "or the Projector's vectors.tsv (PATH: its metadata.tsv)")
    p.add_argument("--vectors-col", metavar="NAME", help="the table's column holding one list of numbers per row "
                                                         "(Parquet list, JSON array); with an .npz, its array's name")
    p.add_argument("--vectors-model", metavar="NAME", help="the vectors' model, free text (default 'imported'); "
                                                           "listed as 'NAME (imported)'")
    p.add_argument("--query-model", metavar="MODEL", help="the sentence-transformers model (name or path) that made "
                                                          "the vectors: it encodes queries and new texts")
    p.set_defaults(func=_lazy_command("ingest"))

    p = sub.add_parser("export-vectors", parents=[common],
                       help="a corpus's vectors and 2-D map to Parquet (doc_id, text, label, vector, x, y)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", help=f"the model whose vectors (default: the corpus's imported vectors, else "
                                   f"{DEFAULT_MODEL})")
    p.add_argument("--out", required=True, help="the Parquet file to write (replaced if it exists)")
    p.set_defaults(func=_lazy_command("export_vectors"))

    p = sub.add_parser("embed", parents=[common], help="embed a corpus (a cache hit is instant)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers name or path, minilm-static or tfidf-svd")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--map", action="store_true", help="then draw its UMAP map, as the page's 'Embed and map'")
    p.set_defaults(func=_lazy_command("embed"))

    p = sub.add_parser("project", parents=[common], help="2-D/3-D map of a corpus (UMAP, PCA, t-SNE)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--method", choices=["umap", "pca", "tsne"], default="umap")
    p.add_argument("--dims", type=int, choices=[2, 3], default=2)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_lazy_command("project"))

    p = sub.add_parser("bench-retrieval", parents=[common],
                       help="compare retrieval methods on a BEIR folder or on a session's relevance judgments")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", help="a BEIR folder (corpus, queries.jsonl, qrels/SPLIT.tsv)")
    source.add_argument("--judgments", metavar="SESSION[:CORPUS]",
                        help="the judgments kept in a session for one of its corpora (the corpus may be left out "
                             "when only one has judgments); adds the condensed-list scores")
    p.add_argument("--judges", help="with --judgments: only these judges' grades (comma-separated; default all)")
    p.add_argument("--split", default="test")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--methods", help="comma-separated (default: all)")
    p.add_argument("--max-docs", type=int)
    p.add_argument("--json")
    p.add_argument("--session", help="also keep the run in this session's history")
    p.set_defaults(func=_lazy_command("bench_retrieval"))

    p = sub.add_parser("bench-ood", parents=[common], help="compare OOD detectors")
    p.add_argument("--clinc", help="CLINC150's data_full.json (train less 'oos'; test; oos_test as OOD)")
    p.add_argument("--train", help="in-distribution training file (it defines the embedding space)")
    p.add_argument("--test", help="in-distribution test file (encoded in the training file's space)")
    p.add_argument("--ood", help="out-of-distribution test file (its labels are ignored)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers name or path, minilm-static or tfidf-svd")
    p.add_argument("--methods", help="comma-separated (default: all)")
    p.add_argument("--json")
    p.add_argument("--session", help="also keep the run in this session's history")
    p.set_defaults(func=_lazy_command("bench_ood"))

    p = sub.add_parser("diagnostics", parents=[common],
                       help="RankMe, hubness and isotropy of a corpus's embedding (JSON, DESIGN section 3)")
    p.add_argument("--session", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--json", help="also write the JSON to this file")
    p.set_defaults(func=_lazy_command("diagnostics"))

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

    p = sub.add_parser("judgments", parents=[common], help="import, export or compare relevance judgments")
    jsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    j = jsub.add_parser("import", parents=[common], help="add a qrels file's judgments to a corpus (TREC's 4 columns, "
                                                          "or BEIR's qrels/*.tsv with its header)")
    j.add_argument("qrels")
    j.add_argument("--session", required=True)
    j.add_argument("--corpus", required=True)
    j.add_argument("--queries", required=True, help="the queries file (BEIR's queries.jsonl: _id and text); a "
                                                    "query id that is a document id of the corpus needs no line")
    j.add_argument("--judge", default="imported", help="the judge the grades are kept under (default: imported)")
    j = jsub.add_parser("export", parents=[common], help="write qrels.tsv (query-id 0 doc-id grade) and "
                                                          "queries.jsonl of a corpus's judgments into a folder")
    j.add_argument("--session", required=True)
    j.add_argument("--corpus", required=True)
    j.add_argument("--out", required=True, metavar="DIR")
    j.add_argument("--judges", help="only these judges' grades (comma-separated; default all, a pair's grades "
                                    "combined to their lower median)")
    j = jsub.add_parser("agreement", parents=[common], help="two judges on their shared pairs: raw agreement and "
                                                             "Cohen's kappa")
    j.add_argument("--session", required=True)
    j.add_argument("--corpus", required=True)
    j.add_argument("--judges", required=True, metavar="A,B")
    j.add_argument("--json", help="also write the JSON to this file")
    p.set_defaults(func=_lazy_command("judgments"))

    p = sub.add_parser("report", parents=[common], help="one self-contained HTML report of a session")
    p.add_argument("--session", required=True)
    p.add_argument("--out", required=True, help="the HTML file to write (replaced if it exists)")
    p.set_defaults(func=_lazy_command("report"))

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    if not hasattr(args, "db"):
        args.db = None
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
