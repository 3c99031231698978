"""The CLI's vectors: `ingest PATH --vectors FILE | --vectors-col NAME [--vectors-model NAME] [--query-model M]` and
`export-vectors`. Imported by `embedlab.cli_commands`, which dispatches to them."""
from __future__ import annotations

import argparse

from embedlab.cli_support import EXIT_OK, CliError, open_db
from embedlab.embedding.imported import check_query_model, clean_vectors_name, imported_model, save_with_vectors
from embedlab.ingest import load_corpus_with_vectors
from embedlab.vectors_export import export_vectors
from storage.corpora import find_corpus, save_corpus_in_session
from storage.sessions import require_session


def wants_vectors(args: argparse.Namespace) -> bool:
    """Whether `ingest` was given vectors; describing vectors without giving them is refused."""
    if args.vectors or args.vectors_col:
        return True
    if args.vectors_model is not None or args.query_model is not None:
        raise CliError("--vectors-model and --query-model describe vectors: give them with --vectors FILE or "
                       "--vectors-col NAME")
    return False


def ingest_with_vectors(args: argparse.Namespace, *, meta_cols: list[str] | None, max_bytes: int) -> int:
    """Read the table and its vectors, check everything (the query model is loaded once to check its dimension),
    then store the corpus and the vectors in one transaction."""
    name = clean_vectors_name(args.vectors_model)
    loaded = load_corpus_with_vectors(args.path, vectors_path=args.vectors, vectors_col=args.vectors_col,
                                      name=args.name, text_col=args.text_col, label_col=args.label_col,
                                      id_col=args.id_col, meta_cols=meta_cols, max_bytes=max_bytes,
                                      encoding=args.encoding)
    query_model = check_query_model(args.query_model, loaded.dim) if args.query_model else None
    db = open_db(args)
    info, _ = save_with_vectors(db, lambda: save_corpus_in_session(db, args.session, loaded.corpus,
                                                                   replace=args.replace),
                                loaded.vectors, name=name, query_model=query_model,
                                zero_rows=len(loaded.zero_rows), source=loaded.source)
    skipped = loaded.corpus.n_skipped
    dropped = f", skipped {skipped} empty (their vectors dropped)" if skipped else ""
    query = f", query model {query_model}" if query_model else ", no query model"
    print(f"ingested {info.n_docs} documents into corpus {info.name!r} of session {args.session!r} with "
          f"{loaded.dim}-dimensional vectors as {imported_model(name)!r} (text column {info.text_col!r}{dropped}"
          f"{query})")
    if loaded.zero_rows:
        print(f"note: {loaded.zero_note()}")
    return EXIT_OK


def cmd_export_vectors(args: argparse.Namespace) -> int:
    """`export-vectors --session S --corpus C [--model M] --out FILE.parquet`."""
    db = open_db(args)
    info = find_corpus(db, require_session(db, args.session), args.corpus)
    table = export_vectors(db, info, args.out, args.model)
    mapped = table.column("x").null_count < table.num_rows
    print(f"wrote {table.num_rows} vectors of {table.schema.metadata[b'embedlab.model'].decode()} "
          f"({'with' if mapped else 'without'} map coordinates) to {args.out}")
    return EXIT_OK
