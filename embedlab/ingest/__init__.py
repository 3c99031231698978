"""Files -> validated :class:`Corpus`, with errors that name the file, the row and the column.
Formats (from the extension, case-insensitive; Parquet, ZIP and gzip are also recognised by their
magic bytes): CSV, TSV, JSONL, JSON (a list of objects, or an object holding one such list, e.g.
``{"data": [...]}``), Parquet, TXT (one document a line), ZIP of ``.txt`` files (one document a
file, the doc id is the path inside the archive), and any of the text formats gzipped (``.csv.gz``).
Conventions
-----------
* **Rows** count from 1 and are *data* rows: the first record after a CSV/TSV header is row 1
  (a header-less file's first line is row 1); for TXT a row is a line; for JSONL a non-blank line;
  for JSON an item of the list; for Parquet a table row; for ZIP a ``.txt`` member in path order.
  Blank lines in CSV/TSV/JSONL are not records. Messages about broken syntax also give the line.
* **Doc ids** come from the id column (as strings), else they are the 0-based row position
  (``row - 1``), so they stay stable when rows are skipped.
* **Doc ids are never retyped**: CSV/TSV cells are read as the strings written; JSON/JSONL
  numbers keep the literal text of the file (a 19-digit id stays exact, ``1.50`` stays ``1.50``);
  JSON columns are built as object columns (no int -> float promotion when a value is missing);
  Parquet integer columns with nulls stay integers.
* **CSV header**: the first line is a header unless one of its cells is a number or a date, two
  cells repeat, or a cell is longer than 100 characters or spans lines; a header-less file's
  columns are named ``col1, col2, ...``. ``.csv`` files whose first line (ended by CRLF, CR or
  LF, as everywhere in this module) has no comma but a semicolon (or a tab) use that as the
  delimiter (so Excel-for-Mac files, CR line ends and ``;``, read as written).
* **Encodings**: UTF-8 (BOM or not), UTF-16/32 with a BOM, or the encoding named by the caller
  (``encoding=``, ``--encoding``). Otherwise the legacy encodings that decode the bytes cleanly
  are compared (charset-normalizer's mess and coherence measures, and how well the letters fit
  one language's alphabet, or one script); one clear winner is used (ties between Windows-1252
  and another Latin code page go to Windows-1252); when several fit equally, the file is refused
  with a line naming them (``save it as UTF-8 or name the encoding``): text is never stored as
  mojibake on a guess. Bytes that no encoding decodes to text are refused as binary.
* **Bounds** (refusals, each one line): at most ``MAX_COLUMNS`` (1,000) columns or distinct JSON
  keys, at most ``MAX_META_COLS`` (50) metadata columns (pick them with ``meta_cols``), at most
  ``MAX_ZIP_MEMBERS`` ZIP entries; ``max_bytes`` bounds the file and every decoded form of it
  (gzip output, the real bytes of ZIP members whatever their headers say, Parquet's decoded
  columns); only regular files are opened (a FIFO, a device or a folder is refused unopened).
  One stored value (a document's text, a label, an id, a metadata value) is at most ``MAX_DOC_BYTES``
  (10 MB of UTF-8; SQLite's own limit is 1e9 bytes), whatever ``max_bytes`` allows: a TXT line over it is
  found by a scan in steps before the file is read whole, a CSV/TSV field where the csv module meets it, a
  JSON value as its record is read, a ZIP member as it is inflated; the refusal names the file, the row
  and the limit.
* **Texts** are kept literally (no normalisation, no HTML stripping); TXT lines lose only their
  line break, ZIP members one trailing line break. Missing, empty and whitespace-only texts are
  skipped and reported in ``Corpus.skipped``.
* **A BEIR corpus** (JSON/JSONL records with ``_id``, ``title`` and ``text``) gets a first column
  ``title + text`` (the two joined by a space, stripped, as BEIR embeds and indexes them), which the
  column guess takes as the text; ``text`` is then not kept as metadata (``--text-col text`` picks the
  body alone).
* **Vectors** may come with the texts (`load_corpus_with_vectors`: a column of lists, or a .npy/.npz/Projector
  vectors.tsv beside the table, row-aligned; see `embedlab.ingest.vectors`): a skipped document drops its vector.
* Nothing is written anywhere: every function is pure and refuses a bad file as a whole.
"""
from __future__ import annotations

import os
import stat as _stat
from pathlib import Path

import pandas as pd

from embedlab.corpus import Corpus
from embedlab.errors import InputError
from embedlab.ingest.columns import ColumnGuess, guess_columns, infer_numbers
from embedlab.ingest.decoding import LEGACY_ENCODINGS, check_encoding_name, decode_text
from embedlab.ingest.delimited import read_csv, read_tsv, read_txt
from embedlab.ingest.documents import build_corpus
from embedlab.ingest.formats import FORMATS, Table, basename, format_of, gunzip, is_txt_name, stem
from embedlab.ingest.json_records import add_beir_text, read_json, read_jsonl
from embedlab.ingest.limits import (DEFAULT_MAX_BYTES, MAX_COLUMNS, MAX_DOC_BYTES, MAX_META_COLS, MAX_ZIP_MEMBERS,
                                    check_max_bytes, check_size, check_txt_bytes, check_txt_file, doc_limit)
from embedlab.ingest.parquet import read_parquet
from embedlab.ingest.vectors import VECTOR_FILE_TYPES, CorpusVectors, align, pop_vectors_column, read_vectors
from embedlab.ingest.zip_archive import read_zip

# The public names; the readers, the encoding guess, the limits and the column guess live in the modules beside this
# one (`formats`, `delimited`, `json_records`, `parquet`, `zip_archive`, `decoding`, `limits`, `columns`, `documents`).
__all__ = ["DEFAULT_MAX_BYTES", "FORMATS", "LEGACY_ENCODINGS", "MAX_COLUMNS", "MAX_DOC_BYTES", "MAX_META_COLS",
           "MAX_ZIP_MEMBERS", "VECTOR_FILE_TYPES", "ColumnGuess", "CorpusVectors", "check_max_bytes", "guess_columns",
           "load_corpus", "load_corpus_bytes", "load_corpus_with_vectors", "load_corpus_with_vectors_bytes",
           "read_file", "read_table"]


def read_table(data: bytes, filename: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
               encoding: str | None = None, max_doc_bytes: int | None = None) -> pd.DataFrame:
    """Parse any supported format into a DataFrame (all rows) for previews and column pickers.

    CSV/TSV columns whose every value is a number become numeric; other strings stay ``str``;
    empty CSV cells are missing. ``df.attrs`` holds ``format``, ``encoding`` and ``header``.
    Raises InputError (a TXT line over ``max_doc_bytes``, default MAX_DOC_BYTES, included).
    """
    table = _parse(data, basename(filename), max_bytes, encoding, doc_limit(max_doc_bytes))
    df = infer_numbers(table.frame) if table.raw_strings else table.frame
    df.columns = [str(c) for c in df.columns]
    df.attrs.update(format=table.fmt, encoding=table.encoding, header=table.header)
    return df


def load_corpus_bytes(data: bytes, filename: str, *, name: str | None = None,
                      text_col: str | None = None, label_col: str | None = None,
                      id_col: str | None = None, meta_cols: list[str] | None = None,
                      max_bytes: int = DEFAULT_MAX_BYTES, encoding: str | None = None,
                      max_doc_bytes: int | None = None) -> Corpus:
    """Read a file's bytes into a validated Corpus (see the module docstring for conventions).

    ``text_col`` None: detected. ``label_col``/``id_col`` None: a column named like
    label/class/category/intent/target/topic (resp. id/_id/doc_id) if there is one; ``""``
    means none. ``meta_cols`` None: every other column (scalars kept, others as JSON text).
    Labels and ids become stripped strings (3 and 3.0 -> "3"; a missing label -> None).
    A text, label, id or metadata value over ``max_doc_bytes`` (default MAX_DOC_BYTES) of UTF-8 is refused.
    """
    file = basename(filename)
    limit = doc_limit(max_doc_bytes)
    table = _parse(data, file, max_bytes, encoding, limit)
    return build_corpus(table, file, name=name if name else stem(file), text_col=text_col,
                         label_col=label_col, id_col=id_col, meta_cols=meta_cols, max_doc_bytes=limit)


def load_corpus(path: str | os.PathLike, *, name: str | None = None, text_col: str | None = None,
                label_col: str | None = None, id_col: str | None = None,
                meta_cols: list[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                encoding: str | None = None, max_doc_bytes: int | None = None) -> Corpus:
    """Read a file into a Corpus; its kind and size (and a TXT file's lines) are checked before it is read."""
    p = Path(path)
    data = read_file(p, max_bytes, max_doc_bytes=max_doc_bytes, encoding=encoding)
    return load_corpus_bytes(data, p.name, name=name, text_col=text_col, label_col=label_col,
                             id_col=id_col, meta_cols=meta_cols, max_bytes=max_bytes,
                             encoding=encoding, max_doc_bytes=max_doc_bytes)


def load_corpus_with_vectors_bytes(data: bytes, filename: str, *, vectors_col: str | None = None,
                                   vectors_data: bytes | None = None, vectors_filename: str | None = None,
                                   name: str | None = None, text_col: str | None = None,
                                   label_col: str | None = None, id_col: str | None = None,
                                   meta_cols: list[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                                   encoding: str | None = None, max_doc_bytes: int | None = None) -> CorpusVectors:
    """A file's bytes read into a validated Corpus with its vectors (`embedlab.ingest.vectors`): the table's column
    `vectors_col`, or the matrix file `vectors_data` (.npy, .npz, a Projector vectors.tsv; `vectors_col` then names
    an .npz's array). Vector row i belongs to the table's data row i; a skipped document drops its vector."""
    file = basename(filename)
    limit = doc_limit(max_doc_bytes)
    table = _parse(data, file, max_bytes, encoding, limit, matrix_col=vectors_col if vectors_data is None else None)
    n_rows = len(table.frame)
    if vectors_data is not None:
        vfile = basename(vectors_filename or "vectors")
        matrix, column, source = read_vectors(vectors_data, vfile, array=vectors_col, max_bytes=max_bytes), None, vfile
    elif vectors_col:
        matrix = pop_vectors_column(table, vectors_col, file)
        vfile, column, source = file, vectors_col, f"{file}, column {vectors_col}"
        meta_cols = None if meta_cols is None else [c for c in meta_cols if c != vectors_col]
    else:
        raise InputError("no vectors given: name the column that holds them, or a matrix file beside the table")
    corpus = build_corpus(table, file, name=name if name else stem(file), text_col=text_col, label_col=label_col,
                          id_col=id_col, meta_cols=meta_cols, max_doc_bytes=limit)
    vectors, zero_rows = align(matrix, corpus, n_rows, file=vfile, table_file=file, column=column,
                               header=table.header)
    return CorpusVectors(corpus, vectors, source, zero_rows)


def load_corpus_with_vectors(path: str | os.PathLike, *, vectors_path: str | os.PathLike | None = None,
                             vectors_col: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                             encoding: str | None = None, max_doc_bytes: int | None = None,
                             **columns) -> CorpusVectors:
    """`load_corpus_with_vectors_bytes` of files: both are checked (kind, size) before they are read."""
    p = Path(path)
    data = read_file(p, max_bytes, max_doc_bytes=max_doc_bytes, encoding=encoding)
    vectors_data = None if vectors_path is None else read_file(vectors_path, max_bytes)
    return load_corpus_with_vectors_bytes(data, p.name, vectors_col=vectors_col, vectors_data=vectors_data,
                                          vectors_filename=None if vectors_path is None else Path(vectors_path).name,
                                          max_bytes=max_bytes, encoding=encoding, max_doc_bytes=max_doc_bytes,
                                          **columns)


def read_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, *,
              max_doc_bytes: int | None = None, encoding: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``: a folder, FIFO, socket or device is
    refused before it is opened (opening a FIFO would wait for a writer forever), and the opened
    descriptor is checked again (the path may have been swapped in between). A TXT file (one document a
    line) is first scanned in steps for a line over ``max_doc_bytes`` (default MAX_DOC_BYTES): a 1 GB
    single-line file is refused after reading its first 10 MB, not loaded."""
    max_bytes = check_max_bytes(max_bytes)
    limit = doc_limit(max_doc_bytes)
    shown = str(path)
    try:
        st = os.stat(path)
        _check_regular(st.st_mode, shown)
        check_size(st.st_size, Path(path).name, max_bytes)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            _check_regular(st.st_mode, shown)
            check_size(st.st_size, Path(path).name, max_bytes)
            if st.st_size > limit and is_txt_name(Path(path).name):
                check_txt_file(fh, Path(path).name, limit, encoding)
            return fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError("no such file", file=shown) from None
    except PermissionError:
        raise InputError("permission denied", file=shown) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", file=shown) from None


def _check_regular(mode: int, shown: str) -> None:
    if _stat.S_ISREG(mode):
        return
    if _stat.S_ISDIR(mode):
        raise InputError("is a folder, not a file", file=shown)
    kind = ("a FIFO (named pipe)" if _stat.S_ISFIFO(mode) else "a socket" if _stat.S_ISSOCK(mode)
            else "a device" if _stat.S_ISCHR(mode) or _stat.S_ISBLK(mode) else "not a plain file")
    raise InputError(f"is {kind}, not a regular file: only files can be ingested", file=shown)


def _parse(data: bytes, file: str, max_bytes: int, encoding: str | None = None,
           max_doc_bytes: int | None = None, matrix_col: str | None = None) -> Table:
    max_bytes = check_max_bytes(max_bytes)
    max_doc_bytes = doc_limit(max_doc_bytes)
    encoding = check_encoding_name(encoding, file)
    check_size(len(data), file, max_bytes)
    if not data:
        raise InputError("the file is empty", file=file)
    fmt = format_of(file, data)
    if fmt == "gz":
        data = gunzip(data, file, max_bytes)
        fmt = format_of(file[:-3] if file.lower().endswith(".gz") else file, data)
        if fmt == "gz":
            raise InputError("a gzip file inside a gzip file is not supported", file=file)
    if not data:
        raise InputError("the file is empty", file=file)
    if fmt == "parquet":
        return read_parquet(data, file, max_bytes, matrix_col=matrix_col)
    if fmt == "zip":
        return read_zip(data, file, max_bytes, encoding, max_doc_bytes)
    if fmt == "txt" and len(data) > max_doc_bytes:
        check_txt_bytes(data, file, max_doc_bytes, encoding)
    text, encoding = decode_text(data, file, encoding)
    if not text.strip():
        raise InputError("the file is empty", file=file)
    reader = {"csv": read_csv, "tsv": read_tsv, "jsonl": read_jsonl, "json": read_json,
              "txt": read_txt}[fmt]
    table = reader(text, file, max_doc_bytes) if fmt != "txt" else reader(text, file)
    table.encoding = encoding
    if fmt in ("jsonl", "json"):
        add_beir_text(table)        # a BEIR corpus: its text is title + text, as BEIR embeds it
    return table
