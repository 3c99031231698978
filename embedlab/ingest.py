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
* Nothing is written anywhere: every function is pure and refuses a bad file as a whole.
"""
from __future__ import annotations

import codecs
import csv
import datetime as _dt
import gzip
import io
import json
import math
import os
import re
import stat as _stat
import struct
import sys
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from embedlab.corpus import Corpus, Skip
from embedlab.errors import InputError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
# One stored value at most (a document's text, a label, an id, a metadata value), as UTF-8: a book is 1-3 MB, and
# SQLite refuses values over 1e9 bytes. A TXT line over it is refused while the file is scanned, before it is read.
MAX_DOC_BYTES = 10 * 1024 * 1024
MAX_COLUMNS = 1_000            # columns of a table, distinct keys of JSON records
MAX_META_COLS = 50             # metadata columns kept per document
MAX_ZIP_MEMBERS = 500_000      # entries of a ZIP archive
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "txt", "zip")
_SCAN_BYTES = 16 * 1024 * 1024   # step of the line-length scan of TXT files

_ALIASES = {"ndjson": "jsonl", "tab": "tsv", "pq": "parquet", "text": "txt"}
_LABEL_NAMES = ("label", "labels", "class", "category", "intent", "target", "topic")
_ID_NAMES = ("id", "_id", "doc_id")
# A column named like this that is empty in every row is refused, never silently replaced by another column.
_TEXT_NAMES = ("text", "texts", "document", "content", "body", "sentence")
_INT = r"0|-?[1-9][0-9]{0,14}"
_FLOAT = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"   # "03" stays text
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}.*|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_HEADER_MAX_LEN = 100


@dataclass
class _Table:
    """A parsed file: its columns, and how it was read."""
    frame: pd.DataFrame
    fmt: str
    encoding: str | None = None
    header: bool | None = None       # CSV/TSV: whether the first line was a header
    raw_strings: bool = False        # CSV/TSV: values are the strings as read, numbers not inferred


# --------------------------------------------------------------------------- public API

def read_table(data: bytes, filename: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
               encoding: str | None = None, max_doc_bytes: int | None = None) -> pd.DataFrame:
    """Parse any supported format into a DataFrame (all rows) for previews and column pickers.

    CSV/TSV columns whose every value is a number become numeric; other strings stay ``str``;
    empty CSV cells are missing. ``df.attrs`` holds ``format``, ``encoding`` and ``header``.
    Raises InputError (a TXT line over ``max_doc_bytes``, default MAX_DOC_BYTES, included).
    """
    table = _parse(data, _basename(filename), max_bytes, encoding, _doc_limit(max_doc_bytes))
    df = _infer_numbers(table.frame) if table.raw_strings else table.frame
    df.columns = [str(c) for c in df.columns]
    df.attrs.update(format=table.fmt, encoding=table.encoding, header=table.header)
    return df


@dataclass(frozen=True)
class ColumnGuess:
    """Where a table's documents are read from: the text column, and the label and id columns (None: none)."""
    text: str
    label: str | None
    id: str | None


def guess_columns(df: pd.DataFrame, *, file: str | None = None, header: bool | None = None,
                  text_col: str | None = None, label_col: str | None = None,
                  id_col: str | None = None) -> ColumnGuess:
    """The text, label and id columns of a table: those named, the others guessed. The one guess that the CLI's
    ingest and the Corpora page share.

    Named columns must exist (``""`` names no label or id column). A label is a column named like
    label/class/category/intent/target/topic (spaces and case ignored; that list's order breaks ties), else, in a
    header-less file (``header`` False, default ``df.attrs["header"]``), the first column of 2..100 short values
    each seen twice on average (AG News' class index). An id is a column named id/_id/doc_id. The text is the
    string column with the longest mean length, preferring wordy columns over URLs or hashes; a column named like a
    label or an id is never taken as the text, nor a column empty in every row: then InputError names the column
    (a column named like text, e.g. ``text`` or ``body``, that is empty in every row is refused even when another
    column holds strings, rather than silently replaced).
    """
    if header is None:
        header = df.attrs.get("header")
    text = _pick(df, text_col, "text", file) if text_col else None
    taken = {text} - {None}
    label = _pick(df, label_col, "label", file) if label_col else \
        None if label_col == "" else _by_name(df, _LABEL_NAMES, taken)
    taken.add(label)
    id_ = _pick(df, id_col, "id", file) if id_col else None if id_col == "" else _by_name(df, _ID_NAMES, taken)
    if text is None:
        not_text = {c for c in df.columns if _name_key(c) in _LABEL_NAMES + _ID_NAMES} | {label, id_}
        text = _guess_text_column(df, file, not_text - {None})
    if label is None and label_col is None and header is False:
        label = _class_like(df, {text, id_})
    return ColumnGuess(text=text, label=label, id=id_)


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
    file = _basename(filename)
    limit = _doc_limit(max_doc_bytes)
    table = _parse(data, file, max_bytes, encoding, limit)
    return _build_corpus(table, file, name=name if name else _stem(file), text_col=text_col,
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


def read_file(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, *,
              max_doc_bytes: int | None = None, encoding: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``: a folder, FIFO, socket or device is
    refused before it is opened (opening a FIFO would wait for a writer forever), and the opened
    descriptor is checked again (the path may have been swapped in between). A TXT file (one document a
    line) is first scanned in steps for a line over ``max_doc_bytes`` (default MAX_DOC_BYTES): a 1 GB
    single-line file is refused after reading its first 10 MB, not loaded."""
    max_bytes = check_max_bytes(max_bytes)
    limit = _doc_limit(max_doc_bytes)
    shown = str(path)
    try:
        st = os.stat(path)
        _check_regular(st.st_mode, shown)
        _check_size(st.st_size, Path(path).name, max_bytes)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            _check_regular(st.st_mode, shown)
            _check_size(st.st_size, Path(path).name, max_bytes)
            if st.st_size > limit and _is_txt_name(Path(path).name):
                head = fh.read(4)
                fh.seek(0)
                _check_txt_lines(head, iter(lambda: fh.read(_SCAN_BYTES), b""), Path(path).name, limit, encoding)
                fh.seek(0)
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


def check_max_bytes(max_bytes: Any) -> int:
    """A byte limit as a positive int (InputError for NaN, infinity, zero, negative or non-numbers)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, float, np.integer, np.floating)):
        raise InputError(f"the size limit must be a number of bytes, got {max_bytes!r}")
    if not math.isfinite(max_bytes) or max_bytes < 1:
        raise InputError(f"the size limit must be a positive finite number, got {max_bytes!r}")
    return int(max_bytes)


# --------------------------------------------------------------------------- format dispatch

def _parse(data: bytes, file: str, max_bytes: int, encoding: str | None = None,
           max_doc_bytes: int | None = None) -> _Table:
    max_bytes = check_max_bytes(max_bytes)
    max_doc_bytes = _doc_limit(max_doc_bytes)
    encoding = _check_encoding_name(encoding, file)
    _check_size(len(data), file, max_bytes)
    if not data:
        raise InputError("the file is empty", file=file)
    fmt = _format_of(file, data)
    if fmt == "gz":
        data = _gunzip(data, file, max_bytes)
        fmt = _format_of(file[:-3] if file.lower().endswith(".gz") else file, data)
        if fmt == "gz":
            raise InputError("a gzip file inside a gzip file is not supported", file=file)
    if not data:
        raise InputError("the file is empty", file=file)
    if fmt == "parquet":
        return _read_parquet(data, file, max_bytes)
    if fmt == "zip":
        return _read_zip(data, file, max_bytes, encoding, max_doc_bytes)
    if fmt == "txt" and len(data) > max_doc_bytes:
        view = memoryview(data)
        _check_txt_lines(data[:4], (view[i:i + _SCAN_BYTES] for i in range(0, len(view), _SCAN_BYTES)), file,
                         max_doc_bytes, encoding)
    text, encoding = _decode(data, file, encoding)
    if not text.strip():
        raise InputError("the file is empty", file=file)
    reader = {"csv": _read_csv, "tsv": _read_tsv, "jsonl": _read_jsonl, "json": _read_json,
              "txt": _read_txt}[fmt]
    table = reader(text, file, max_doc_bytes) if fmt != "txt" else reader(text, file)
    table.encoding = encoding
    return table


def _format_of(file: str, data: bytes) -> str:
    """'gz', or one of FORMATS: magic bytes first (gzip, Parquet, ZIP), then the extension."""
    lower = file.lower()
    if data[:2] == b"\x1f\x8b":
        return "gz"
    if data[:4] == b"PAR1" and (data[-4:] == b"PAR1" or lower.endswith((".parquet", ".pq"))):
        return "parquet"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    ext = lower.rsplit(".", 1)[-1] if "." in lower else ""
    if ext == "gz":
        raise InputError("not a gzip file (it does not start with the gzip magic bytes)", file=file)
    ext = _ALIASES.get(ext, ext)
    if ext == "parquet":
        raise InputError("not a Parquet file (it does not start with the bytes PAR1)", file=file)
    if ext == "zip":
        raise InputError("not a ZIP archive (it does not start with the bytes PK)", file=file)
    if ext in FORMATS:
        return ext
    hint = " (save the sheet as CSV)" if ext in ("xlsx", "xls", "ods") else ""
    shown = f"'.{ext}'" if ext else "without an extension"
    raise InputError(f"unsupported file type {shown}{hint}; supported: {', '.join(FORMATS)} "
                     "(and .gz of the text formats)", file=file)


def _gunzip(data: bytes, file: str, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error):
        raise InputError("the gzip file is damaged or truncated", file=file) from None
    if len(out) > max_bytes:
        raise InputError(f"decompressed, it is over the {_human(max_bytes)} limit "
                         "(set --max-mb to raise it)", file=file)
    return out


def _check_size(size: int, file: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(f"{_human(size)} is over the {_human(max_bytes)} limit "
                         "(set --max-mb to raise it)", file=file)


def _doc_limit(max_doc_bytes: int | None) -> int:
    """The limit for one stored value: MAX_DOC_BYTES unless given (read when called, so it can be lowered)."""
    return check_max_bytes(MAX_DOC_BYTES if max_doc_bytes is None else max_doc_bytes)


def _is_txt_name(file: str) -> bool:
    ext = file.lower().rsplit(".", 1)[-1] if "." in file else ""
    return _ALIASES.get(ext, ext) == "txt"


def _too_long_line(limit: int) -> str:
    return (f"the line is over the {_human(limit)} limit for one document (in a .txt file each line is a "
            "document: split the text over several lines)")


def _wide_encoding(encoding: str | None) -> bool:
    """UTF-16/32: a text's bytes in the file may outnumber its UTF-8 bytes."""
    return bool(encoding) and codecs.lookup(str(encoding)).name.startswith(("utf-16", "utf-32"))


def _line_breaks(arr: np.ndarray, after_cr: bool) -> int:
    """Line breaks (CRLF, CR or LF) in a byte array; `after_cr`: the bytes before it ended with CR."""
    lf, cr = arr == 10, arr == 13
    crlf = int(np.count_nonzero(cr[:-1] & lf[1:]))
    joined = 1 if after_cr and arr.size and arr[0] == 10 else 0
    return int(np.count_nonzero(lf)) + int(np.count_nonzero(cr)) - crlf - joined


def _check_txt_lines(head: bytes, chunks: Iterable[bytes | memoryview], file: str, limit: int,
                     encoding: str | None = None) -> None:
    """InputError naming the row when a line of a TXT file (one document) is over `limit` bytes, found in one
    pass over the chunks (the file's bytes, which start with `head`), stopping at the first such line. In UTF-8
    and the legacy encodings a line's bytes are at most its UTF-8 bytes, so nothing under the limit is refused; a
    gzip/ZIP/Parquet file, or text in UTF-16/32 (a BOM, or the named encoding), is left to the exact check of each
    text."""
    head = bytes(head[:4])
    if _wide_encoding(encoding) or head.startswith(_WIDE_BOMS) or head[:2] == b"\x1f\x8b" or \
            head in (b"PK\x03\x04", b"PK\x05\x06", b"PAR1"):
        return
    run = -len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0   # a BOM is not text
    row, after_cr = 1, False                          # the open line: its bytes so far (run) and its row
    for chunk in chunks:
        arr = np.frombuffer(chunk, dtype=np.uint8)
        if not arr.size:
            continue
        breaks = np.flatnonzero((arr == 10) | (arr == 13))
        starts = np.r_[0, breaks + 1]
        lengths = np.append(breaks, arr.size) - starts      # the pieces of lines in this chunk
        lengths[0] += run
        over = np.flatnonzero(lengths > limit)
        if over.size:
            piece = int(over[0])
            at = row if piece == 0 else row + _line_breaks(arr[:starts[piece]], after_cr)
            raise InputError(_too_long_line(limit), file=file, row=at)
        run = int(lengths[-1])
        row += _line_breaks(arr, after_cr)
        after_cr = bool(arr[-1] == 13)


def _over_limit(value: Any, limit: int) -> bool:
    """Whether a string is over `limit` bytes as UTF-8 (encoded only when its length leaves a doubt)."""
    if not isinstance(value, str) or len(value) * 4 <= limit:
        return False
    return len(value) > limit or len(value.encode("utf-8", "surrogatepass")) > limit


def _check_value_size(value: Any, limit: int, what: str, file: str, row: int, column: str | None) -> None:
    if _over_limit(value, limit):
        unit = "one document (split it into several documents)" if what == "text" else "one stored value"
        raise InputError(f"the {what} is over the {_human(limit)} limit for {unit}", file=file, row=row,
                         column=column)


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = (n / 1024, "KB") if n < 1024 * 1024 else (n / 1024 / 1024, "MB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


# --------------------------------------------------------------------------- decoding

_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def _check_encoding_name(encoding: str | None, file: str) -> str | None:
    if encoding is None or encoding == "":
        return None
    try:
        return codecs.lookup(str(encoding)).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r} (try utf-8, cp1252, cp1251, gb18030, "
                         "shift_jis)", file=file) from None


def _decode(data: bytes, file: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (text, encoding); refuses binary data, broken UTF-8 and undecidable encodings."""
    if encoding is not None:                   # named by the user: exactly that, strictly
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as e:
            raise InputError(f"not valid {encoding} text: bad byte {data[e.start]:#04x} at byte "
                             f"{e.start}, line {_line_of(data, e.start)}", file=file) from None
        return text.removeprefix("\ufeff"), encoding
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(bom_encoding), bom_encoding
            except UnicodeDecodeError as e:
                raise InputError(f"not valid {bom_encoding.upper().removesuffix('-SIG')} text "
                                 f"(bad bytes at byte {e.start})", file=file) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        head = data[:4096]
        utf16 = max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 4
        hint = "UTF-16 without a byte-order mark? save it as UTF-8" if utf16 else "binary data?"
        raise InputError(f"not a text file: it holds NUL bytes ({hint}), the first at byte "
                         f"{nul}, line {_line_of(data, nul)}", file=file)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    sample = data[:1_000_000].decode("utf-8", errors="replace")
    n_bad = sample.count("\ufffd")
    if sum(1 for ch in sample if ord(ch) > 127) - n_bad >= n_bad:   # mostly good UTF-8
        raise InputError(f"not valid UTF-8: bad byte {data[bad]:#04x} at byte {bad}, line "
                         f"{_line_of(data, bad)} (the rest of the file is UTF-8)",
                         file=file)
    encoding = _guess_legacy_encoding(data, file)
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as e:           # the guess came from a sample: the rest disagrees
        raise InputError(f"not valid UTF-8, and not valid {encoding} either (bad byte "
                         f"{data[e.start]:#04x} at byte {e.start}, line {_line_of(data, e.start)});"
                         " save it as UTF-8 or name its encoding (--encoding)", file=file) from None


# Legacy encodings compared when a file is not UTF-8: the Windows code pages, KOI8 and the
# usual CJK ones (charset-normalizer's exotic candidates, mac_* or cp775, only produce ties).
LEGACY_ENCODINGS = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256",
                    "cp1257", "cp1258", "koi8_r", "koi8_u", "gb18030", "big5", "cp932", "euc_jp",
                    "cp949")
_SAMPLE_BYTES = 256 * 1024
# Non-ASCII letters of languages written in Latin script (lower case; upper case is derived).
_LATIN_ALPHABETS = {
    "French": "àâæçéèêëîïôœùûüÿ", "Spanish": "áéíñóúü", "Portuguese": "áâãàçéêíóôõú",
    "Italian": "àèéìíîòóùú", "German": "äöüß", "Dutch": "áéëíïóöúü", "Danish/Norwegian": "åæøéó",
    "Swedish/Finnish": "åäöé", "Icelandic": "áðéíóúýþæö", "Catalan": "àçèéíïòóúü·",
    "Czech/Slovak": "áäčďéěíĺľňóôŕřšťúůýž", "Polish": "ąćęłńóśźż", "Hungarian": "áéíóöőúüű",
    "Romanian": "ăâîșțşţ", "Croatian/Slovene": "čćđšž", "Turkish": "çğıİöşüâîû",
    "Lithuanian/Latvian": "ąčęėįšųūžāēģīķļņ", "Estonian": "äöõüšž", "Albanian": "çë",
}
# Letter repertoires of the Western and Central European code pages, for corpora mixing languages.
_REGIONS = {"Western European": ("French", "Spanish", "Portuguese", "Italian", "German", "Dutch",
                                 "Danish/Norwegian", "Swedish/Finnish", "Icelandic", "Catalan",
                                 "Albanian", "Estonian"),
            "Central European": ("Czech/Slovak", "Polish", "Hungarian", "Romanian",
                                 "Croatian/Slovene", "German")}
_SCRIPT_GROUPS = {"CYRILLIC": "Cyrillic", "GREEK": "Greek", "HEBREW": "Hebrew", "ARABIC": "Arabic",
                  "THAI": "Thai", "HANGUL": "Korean"}


def _letter_languages() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for language, letters in _LATIN_ALPHABETS.items():
        regions = {r for r, members in _REGIONS.items() if language in members}
        for ch in letters:
            for form in {ch, ch.upper()}:
                if len(form) == 1:
                    table.setdefault(form, set()).update({language, *regions})
    return table


_LETTER_LANGUAGES = _letter_languages()
_MIXED_WORD_RE = re.compile(r"[^\W\d_]*[A-Za-z][^\W\d_]*")   # words holding an ASCII letter


def _languages_of(ch: str) -> set[str]:
    """The languages (Latin letters) or scripts a non-ASCII letter belongs to."""
    if ch in _LETTER_LANGUAGES:
        return _LETTER_LANGUAGES[ch]
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK ", "IDEOGRAPHIC")):
        return {"Chinese", "Japanese"}
    if name.startswith(("HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA")):
        return {"Japanese"}
    first = name.split(" ", 1)[0]
    return {_SCRIPT_GROUPS[first]} if first in _SCRIPT_GROUPS else set()


def _text_fit(text: str) -> tuple[float, str, bool]:
    """How plausible a decoding is: (share of its non-ASCII letters that one language's alphabet,
    or one script, covers; that language; whether it is free of control and unassigned characters).
    Two Latin languages together also count, a little less (a bilingual corpus), so a mojibake
    mixing letters of three alphabets scores low."""
    counts: dict[str, int] = {}
    for ch in text:
        if ord(ch) > 127:
            counts[ch] = counts.get(ch, 0) + 1
    odd = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\x0b\x0c")
    letters: dict[str, int] = {}
    marks = 0
    for ch, n in counts.items():
        category = unicodedata.category(ch)
        if category in ("Cc", "Co", "Cn", "Cs"):
            odd += n
        elif category == "Mn":
            marks += n
        elif category.startswith("L"):
            letters[ch] = n
    clean = odd <= len(text) // 1000
    total = sum(letters.values())
    if not total:
        return 1.0, "", clean
    # A letter of another script inside a word of ASCII letters ("cafй") fits no language.
    misfit: dict[str, int] = {}
    if any(not _LETTER_LANGUAGES.get(ch) for ch in letters):
        for word in _MIXED_WORD_RE.findall(text):
            for ch in word:
                if ord(ch) > 127 and ch in letters and ch not in _LETTER_LANGUAGES:
                    misfit[ch] = misfit.get(ch, 0) + 1
    by_language: dict[str, int] = {}
    for ch, n in letters.items():
        for language in _languages_of(ch):
            by_language[language] = by_language.get(language, 0) + n - misfit.get(ch, 0)
    best, best_language = 0.0, ""
    for language, n in by_language.items():
        weight = 0.95 if language in _REGIONS else 1.0      # a region: a little less specific
        if weight * n / total > best:
            best, best_language = weight * n / total, language
    if best < 1.0:                               # two Latin languages together
        latin = [lang for lang in by_language if lang in _LATIN_ALPHABETS]
        for i, a in enumerate(latin):
            for b in latin[i + 1:]:
                n = sum(v for ch, v in letters.items()
                        if a in _languages_of(ch) or b in _languages_of(ch))
                if 0.97 * n / total > best:
                    best, best_language = 0.97 * n / total, f"{a}+{b}"
    if marks > 0.3 * total:                      # more combining marks than a script uses
        best *= 0.5
    return best, best_language, clean


def _guess_legacy_encoding(data: bytes, file: str) -> str:
    """The one legacy encoding that clearly fits a non-UTF-8 file, else InputError naming the
    encodings that fit equally (never a silent guess between readings that differ)."""
    import charset_normalizer

    sample = data[:_SAMPLE_BYTES]
    if len(data) > _SAMPLE_BYTES and b"\n" in sample[len(sample) // 2:]:
        sample = sample[:sample.rindex(b"\n") + 1]      # no multi-byte character cut in two
    scored = []
    for m in charset_normalizer.from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS)):
        try:
            text = codecs.getincrementaldecoder(m.encoding)().decode(sample, final=False)
        except (UnicodeDecodeError, LookupError):
            continue
        fit, language, clean = _text_fit(text)
        same = [codecs.lookup(e).name for e in (m.could_be_from_charset or [m.encoding])]
        name = "cp1252" if "cp1252" in same else codecs.lookup(m.encoding).name
        if clean:
            scored.append((fit, m.chaos, m.coherence, name, language, text))
    if not scored:
        raise InputError("not a text file: the bytes are neither UTF-8 nor text in a known "
                         "encoding (binary data?)", file=file)
    best_fit = max(s[0] for s in scored)
    best_chaos = min(s[1] for s in scored if s[0] >= best_fit - 0.02)
    leaders = [s for s in scored if s[0] >= best_fit - 0.02 and s[1] <= best_chaos + 0.02]
    top_coherence = max(s[2] for s in leaders)
    if len(leaders) > 1 and sum(1 for s in leaders if s[2] >= top_coherence - 0.03) == 1:
        leaders = [s for s in leaders if s[2] >= top_coherence - 0.03]
    texts = {s[5] for s in leaders}
    # Latin code pages tie: Windows-1252, by far the most common. Its chaos may be a little higher on a few lines
    # (an em dash, curly quotes), which must not hand the file to cp1257 ("crème" read as "crčme").
    if best_fit >= 0.9 and any(s[3] == "cp1252" and s[0] >= best_fit - 0.02 and s[1] <= best_chaos + 0.15
                               for s in scored):
        return "cp1252"
    if best_fit >= 0.9 and len(texts) == 1:
        return next((s[3] for s in leaders if s[3] == "cp1252"), leaders[0][3])
    ranked = sorted(scored, key=lambda s: (-round(s[0], 2), s[1], -s[2]))
    names = [f"{s[3]} ({s[4]})" if s[4] else s[3] for s in ranked[:4]]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    raise InputError(f"not UTF-8, and its encoding cannot be told for sure: it could be {listed};"
                     f" save it as UTF-8, or name the encoding (--encoding {ranked[0][3]})",
                     file=file)


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


# --------------------------------------------------------------------------- readers

def _read_csv(text: str, file: str, max_field: int) -> _Table:
    first = _NEWLINE_RE.split(text, maxsplit=1)[0]      # CRLF, CR (old Mac Excel) or LF
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    return _read_delimited(text, file, delimiter, csv.QUOTE_MINIMAL, "csv", max_field)


def _read_tsv(text: str, file: str, max_field: int) -> _Table:
    """TSV with CSV-style quoting; if the quoting is broken, read it as plain tab-separated text."""
    try:
        return _read_delimited(text, file, "\t", csv.QUOTE_MINIMAL, "tsv", max_field)
    except _QuoteError:
        return _read_delimited(text, file, "\t", csv.QUOTE_NONE, "tsv", max_field)


# A line with its break (CRLF, CR or LF), as io.StringIO(newline="") yields them: csv reads the text line by line
# without a copy of the whole text (a StringIO holds 4 bytes a character).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _read_delimited(text: str, file: str, delimiter: str, quoting: int, fmt: str,
                    max_field: int) -> _Table:
    """Records of a CSV/TSV text. A field over `max_field` characters (so over that many bytes of UTF-8) is
    refused where the csv module meets it, before the rest is read."""
    if csv.field_size_limit() != max_field:
        csv.field_size_limit(max_field)
    reader = csv.reader(map(re.Match.group, _LINE_RE.finditer(text)), delimiter=delimiter,
                        quoting=quoting, strict=True)
    names: list[str] | None = None
    header: bool | None = None
    rows: list[list[str | None]] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            row = len(rows) + 1 if names is not None else None
            if "field larger than field limit" in str(e):
                raise InputError(f"a field of the record starting on line {start} is over the "
                                 f"{_human(max_field)} limit for one document or value", file=file,
                                 row=row) from None
            raise _csv_error(e, file, row, start) from None
        if not fields:
            continue                        # a blank line is not a record
        if names is None:
            if len(fields) > MAX_COLUMNS:
                raise InputError(f"{len(fields):,} columns on line {start}, over the limit of "
                                 f"{MAX_COLUMNS:,} (wrong delimiter?)", file=file)
            header = _looks_like_header(fields)
            names = _column_names(fields if header else [""] * len(fields))
            if header:
                continue
        if len(fields) > len(names):
            raise InputError(f"{len(fields)} fields but the {'header' if header else 'first row'} "
                             f"has {len(names)} (line {start}; an unquoted "
                             f"{_delimiter_name(delimiter)} in a text?)", file=file,
                             row=len(rows) + 1)
        fields += [""] * (len(names) - len(fields))
        rows.append([f if f != "" else None for f in fields])
    frame = pd.DataFrame(rows, columns=names, dtype=object) if rows else \
        pd.DataFrame({n: pd.Series([], dtype=object) for n in names or []})
    return _Table(frame, fmt, header=header, raw_strings=True)


class _QuoteError(InputError):
    """A CSV/TSV record the csv module cannot parse (quoting); TSV then retries without quoting."""


def _csv_error(e: csv.Error, file: str, row: int | None, line: int) -> _QuoteError:
    msg = str(e)
    if "unexpected end of data" in msg:
        err = _QuoteError(f"unterminated quoted field: the quote opened in the record starting on "
                         f"line {line} is never closed", file=file, row=row)
    elif "expected after" in msg:
        err = _QuoteError(f"a closing quote is followed by other characters (record starting on "
                         f"line {line}); quotes inside a quoted field must be doubled", file=file,
                         row=row)
    else:
        err = _QuoteError(f"cannot parse the record starting on line {line}: {msg}", file=file,
                         row=row)
    return err


def _delimiter_name(d: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(d, repr(d))


def _looks_like_header(cells: list[str]) -> bool:
    """A first line is a header unless a cell is a number/date, cells repeat, or a cell is long."""
    values = [c.strip() for c in cells if c.strip()]
    if any(_NUMBER_RE.fullmatch(v) or _DATE_RE.fullmatch(v) for v in values):
        return False
    if len(set(values)) < len(values):
        return False
    return not any(len(c) > _HEADER_MAX_LEN or "\n" in c or "\r" in c for c in cells)


def _column_names(cells: list[str]) -> list[str]:
    """Header cells -> unique names; blank cells become col1, col2, ... by position."""
    names: list[str] = []
    for i, cell in enumerate(cells, 1):
        base = cell.strip() or f"col{i}"
        name, k = base, 1
        while name in names:
            name, k = f"{base}.{k}", k + 1
        names.append(name)
    return names


def _read_txt(text: str, file: str) -> _Table:
    lines = _NEWLINE_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()                        # the line break that ends the last line
    return _Table(pd.DataFrame({"text": pd.Series(lines, dtype=object)}), "txt")


class _JsonInt(int):
    """A JSON integer that remembers how it was written (ids are kept as written)."""
    raw: str


class _JsonFloat(float):
    """A JSON number with a fraction or exponent that remembers how it was written."""
    raw: str


def _json_int(literal: str) -> int:
    try:
        value = _JsonInt(literal)
    except ValueError:                 # Python's limit on digits of an int (4300)
        raise _JsonNumberError(literal) from None
    value.raw = literal
    return value


def _json_float(literal: str) -> float:
    value = _JsonFloat(literal)
    value.raw = literal
    return value


class _JsonNumberError(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.digits = len(literal.lstrip("-"))


_JSON_DECODER = json.JSONDecoder(parse_int=_json_int, parse_float=_json_float)
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89abAB]|\\u[dD][c-fC-F]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LONG_NUMBER_RE = re.compile(r"[0-9]{4000,}")


def _json_loads(text: str) -> Any:
    return _JSON_DECODER.decode(text)


def _lone_surrogate(obj: Any, path: str = "") -> str | None:
    """Where a string of a parsed JSON value holds a lone surrogate (an escape like \\ud800 that
    is half of a pair): its key path, else None."""
    stack = [(obj, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _SURROGATE_RE.search(value):
                return where or "(the value)"
        elif isinstance(value, dict):
            for k, v in value.items():
                if _SURROGATE_RE.search(k):
                    return f"{where}.{k!a}".lstrip(".")
                stack.append((v, f"{where}.{k}".lstrip(".")))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return None


def _json_failure(exc: BaseException, file: str, row: int | None, line: int | None) -> InputError:
    at = f"line {line} " if line is not None else ""
    if isinstance(exc, RecursionError):
        return InputError(f"{at}is nested too deeply to read (lists or objects inside each other "
                          f"{sys.getrecursionlimit():,}+ levels)".strip(), file=file, row=row)
    if isinstance(exc, _JsonNumberError):
        return InputError(f"{at}holds an integer of {exc.digits:,} digits, over Python's limit of "
                          f"{sys.get_int_max_str_digits():,}".strip(), file=file, row=row)
    if isinstance(exc, json.JSONDecodeError):
        where = f"line {line}" if line is not None else f"line {exc.lineno}"
        return InputError(f"{where} is not valid JSON: {exc.msg} (character {exc.colno})",
                          file=file, row=row)
    return InputError(f"{at}is not valid JSON: {exc}".strip(), file=file, row=row)


def _check_record_strings(record: dict, limit: int, file: str, row: int) -> None:
    """A JSON record's string values within the limit for one value (refused while reading, before any table)."""
    for key, value in record.items():
        _check_value_size(value, limit, "text" if key == "text" else "value", file, row, key)


def _read_jsonl(text: str, file: str, max_doc_bytes: int) -> _Table:
    records: list[Any] = []
    keys: dict[str, None] = {}
    may_have_surrogates = _SURROGATE_ESCAPE_RE.search(text) is not None
    for line_no, line in enumerate(_NEWLINE_RE.split(text), 1):
        if not line.strip():
            continue
        row = len(records) + 1
        try:
            record = _json_loads(line)
        except (ValueError, RecursionError) as e:
            raise _json_failure(e, file, row, line_no) from None
        if not isinstance(record, dict):
            raise InputError(f"line {line_no} is {_json_type(record)}, expected an object like "
                             '{"text": "..."}', file=file, row=row)
        if may_have_surrogates:
            where = _lone_surrogate(record)
            if where is not None:
                raise InputError(f"line {line_no}: the value at {where} holds a lone surrogate "
                                 "(a \\ud800-\\udfff escape without its pair): not valid Unicode",
                                 file=file, row=row)
        _add_keys(keys, record, file, row)
        if len(line) > max_doc_bytes:
            _check_record_strings(record, max_doc_bytes, file, row)
        records.append(record)
    return _Table(_records_frame(records, file, keys), "jsonl")


def _add_keys(keys: dict[str, None], record: dict, file: str, row: int) -> None:
    for k in record:
        if k not in keys:
            keys[k] = None
            if len(keys) > MAX_COLUMNS:
                raise InputError(f"over {MAX_COLUMNS:,} distinct keys (columns) by this record; "
                                 f"at most {MAX_COLUMNS:,} are read", file=file, row=row)


def _read_json(text: str, file: str, max_doc_bytes: int) -> _Table:
    try:
        obj = _json_loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":          # one object a line: really JSON Lines
            return _read_jsonl(text, file, max_doc_bytes)
        raise InputError(f"not valid JSON: {e.msg} (line {e.lineno}, character {e.colno})",
                         file=file) from None
    except (ValueError, RecursionError) as e:
        line = None
        if isinstance(e, _JsonNumberError):
            m = _LONG_NUMBER_RE.search(text)
            line = text.count("\n", 0, m.start()) + 1 if m else None
        raise _json_failure(e, file, None, line) from None
    shape = ("expected a list of objects, or an object holding one such list "
             '(like {"data": [...]})')
    if isinstance(obj, dict):
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if len(lists) != 1:
            found = f"lists under {', '.join(map(repr, lists))}" if lists else \
                f"an object with keys {', '.join(map(repr, list(obj)[:8])) or '(none)'}"
            raise InputError(f"{shape}; found {found}", file=file)
        obj = obj[lists[0]]
    elif not isinstance(obj, list):
        raise InputError(f"{shape}; found {_json_type(obj)}", file=file)
    keys: dict[str, None] = {}
    check_surrogates = _SURROGATE_ESCAPE_RE.search(text) is not None
    for i, rec in enumerate(obj, 1):
        if not isinstance(rec, dict):
            raise InputError(f"the item is {_json_type(rec)}, expected an object like "
                             '{"text": "..."}', file=file, row=i)
        if check_surrogates:
            where = _lone_surrogate(rec)
            if where is not None:
                raise InputError(f"the value at {where} holds a lone surrogate (a \\ud800-\\udfff "
                                 "escape without its pair): not valid Unicode", file=file, row=i)
        _add_keys(keys, rec, file, i)
        if len(text) > max_doc_bytes:
            _check_record_strings(rec, max_doc_bytes, file, i)
    return _Table(_records_frame(obj, file, keys), "json")


def _records_frame(records: list[Any], file: str, keys: dict[str, None] | None = None
                   ) -> pd.DataFrame:
    """Records -> a frame of object columns holding the parsed values as they are (no type
    inference: an int column with a missing value stays ints, and missing is None)."""
    if keys is None:
        keys = {}
        for i, rec in enumerate(records, 1):
            if not isinstance(rec, dict):
                raise InputError(f"the item is {_json_type(rec)}, expected an object like "
                                 '{"text": "..."}', file=file, row=i)
            _add_keys(keys, rec, file, i)
    if not records:
        return pd.DataFrame()
    return pd.DataFrame({k: pd.Series([rec.get(k) for rec in records], dtype=object)
                         for k in keys})


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _read_parquet(data: bytes, file: str, max_bytes: int = DEFAULT_MAX_BYTES) -> _Table:
    """A Parquet file, decoded batch by batch while counting the decoded bytes: a small file that
    expands (dictionary or run-length encoding, compression) past ``max_bytes`` is refused as soon
    as it does, before the whole table is in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < 12 or data[-4:] != b"PAR1":
        raise InputError("the Parquet file is damaged or truncated", file=file)
    over = (f"decoded, it is over the {_human(max_bytes)} limit (set --max-mb to raise it)")
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        meta = pf.metadata
        if meta.num_columns > MAX_COLUMNS:
            raise InputError(f"{meta.num_columns:,} columns, over the limit of {MAX_COLUMNS:,}",
                             file=file)
        declared = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        if declared > max_bytes:
            raise InputError(over, file=file)
        batches, decoded = [], 0
        rows_per_batch = max(1, min(65_536, 8 * 1024 * 1024 // max(1, meta.num_columns * 64)))
        schema = _dense_schema(pf.schema_arrow)
        for batch in pf.iter_batches(batch_size=rows_per_batch, use_pandas_metadata=True):
            if any(pa.types.is_dictionary(f.type) for f in batch.schema):
                # what the values really take (a dictionary column is counted expanded)
                batch = pa.RecordBatch.from_arrays(
                    [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
                     for c in batch.columns], schema=schema)
            decoded += batch.nbytes
            if decoded > max_bytes:
                raise InputError(over, file=file)
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=schema)
        # Integer columns with nulls stay Python ints (never floats: ids must not change).
        frame = table.to_pandas(integer_object_nulls=True)
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError) as e:
        raise InputError(f"the Parquet file is damaged or cannot be read "
                         f"({' '.join(str(e).split())[:200]})", file=file) from None
    if len(frame.columns) > MAX_COLUMNS:
        raise InputError(f"{len(frame.columns):,} columns, over the limit of {MAX_COLUMNS:,}",
                         file=file)
    if any(n is not None for n in frame.index.names):
        frame = frame.reset_index()        # a named pandas index is a real column
    else:
        frame = frame.reset_index(drop=True)
    return _Table(frame, "parquet")


def _dense_schema(schema):
    """The schema with dictionary columns as their value type (pandas metadata kept)."""
    import pyarrow as pa

    fields = [pa.field(f.name, f.type.value_type, f.nullable, f.metadata)
              if pa.types.is_dictionary(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _zip_entry_count(data: bytes) -> int | None:
    """The entry count the archive's end record declares (read before parsing the whole central
    directory, which may be huge); None when it cannot be read."""
    try:
        end = zipfile._EndRecData(io.BytesIO(data))       # stdlib's private reader, stable for decades
    except (OSError, ValueError, IndexError, struct.error):
        return None
    return None if not end else int(end[4])


def _read_zip(data: bytes, file: str, max_bytes: int, encoding: str | None = None,
              max_doc_bytes: int | None = None) -> _Table:
    """One document per .txt member (sorted by path); folders, __MACOSX/ and dot files skipped.
    Members are inflated in 1 MB steps and their real bytes counted: headers that understate a
    member's size cannot make it use more memory than ``max_bytes``, and a member over
    ``max_doc_bytes`` (one document; not UTF-16/32) is refused as soon as it is."""
    doc_limit = _doc_limit(max_doc_bytes)
    damaged = "the ZIP archive is damaged or truncated"
    declared = _zip_entry_count(data)
    if declared is not None and declared > MAX_ZIP_MEMBERS:
        raise InputError(f"the ZIP archive holds {declared:,} entries, over the limit of "
                         f"{MAX_ZIP_MEMBERS:,}", file=file)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error):
        raise InputError(damaged, file=file) from None
    over = (f"unpacked, its .txt files make over the {_human(max_bytes)} limit "
            "(set --max-mb to raise it)")
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise InputError(f"the ZIP archive holds {len(infos):,} entries, over the limit of "
                             f"{MAX_ZIP_MEMBERS:,}", file=file)
        members = [m for m in infos if not m.is_dir() and _zip_keeps(m.filename)]
        texts_ = [m for m in members if m.filename.lower().endswith(".txt")]
        if not texts_:
            others = ", ".join(m.filename for m in members[:5])
            raise InputError("the ZIP archive holds no .txt files"
                             + (f" (it holds {others}{', ...' if len(members) > 5 else ''})"
                                if others else ""), file=file)
        total = sum(m.file_size for m in texts_)
        if total > max_bytes:
            raise InputError(f"unpacked, its .txt files make {_human(total)}, over the "
                             f"{_human(max_bytes)} limit (set --max-mb to raise it)", file=file)
        texts_.sort(key=lambda m: m.filename)
        paths, folders, texts = [], [], []
        unpacked = 0
        for row, m in enumerate(texts_, 1):
            where = f"{file}:{m.filename}"
            if m.flag_bits & 0x1:
                raise InputError("the ZIP member is encrypted", file=where)
            parts = []
            size, wide = 0, _wide_encoding(encoding)
            try:
                with archive.open(m) as fh:
                    while True:
                        piece = fh.read(1 << 20)
                        if not piece:
                            break
                        unpacked += len(piece)
                        if unpacked > max_bytes:
                            raise InputError(over, file=file)
                        wide = wide or (not size and piece.startswith(_WIDE_BOMS))
                        size += len(piece)
                        if size > doc_limit + 3 and not wide:       # (+3: a UTF-8 BOM is not text)
                            raise InputError(f"the file is over the {_human(doc_limit)} limit for one document "
                                             "(split it into several files)", file=where, row=row)
                        parts.append(piece)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                    RuntimeError, ValueError, struct.error):
                raise InputError(damaged, file=where) from None
            raw = b"".join(parts)
            text = _decode(raw, where, encoding)[0] if raw else ""
            paths.append(m.filename)
            parent = str(PurePosixPath(m.filename).parent)
            folders.append(None if parent == "." else parent)
            texts.append(text[:-2] if text.endswith("\r\n") else
                         text[:-1] if text.endswith(("\n", "\r")) else text)
    frame = pd.DataFrame({"doc_id": pd.Series(paths, dtype=object),
                          "text": pd.Series(texts, dtype=object)})
    if any(folders):
        frame["folder"] = pd.Series(folders, dtype=object)
    return _Table(frame, "zip")


def _zip_keeps(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and parts[0] != "__MACOSX" and not any(p.startswith(".") for p in parts)


# --------------------------------------------------------------------------- columns

def _infer_numbers(df: pd.DataFrame) -> pd.DataFrame:
    """CSV strings -> numbers for columns whose every value is an integer (Int64) or a number."""
    out = df.copy()
    for col in out.columns:
        s = out[col].dropna()
        if s.empty:
            continue
        s = s.astype(str)
        if s.str.fullmatch(_INT).all():
            out[col] = pd.to_numeric(out[col]).astype("Int64")
        elif s.str.fullmatch(_FLOAT).all():
            out[col] = pd.to_numeric(out[col]).astype("float64")
    return out


def _text_stats(s: pd.Series) -> tuple[bool, bool, float] | None:
    """Ranking key of a candidate text column (holds non-blank text, mostly words, mean length); None if the column
    holds no strings."""
    values = s.dropna()
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if values.empty or kind not in ("string", "mixed", "mixed-integer"):
        return None
    if kind == "string":
        strings = values.astype(str)
    else:
        is_str = values.map(lambda v: isinstance(v, str))
        if is_str.mean() <= 0.5:
            return None
        strings = values[is_str].astype(str)
    nonblank = strings[strings.str.strip() != ""]
    if not nonblank.empty and nonblank.str.strip().str.fullmatch(_NUMBER_RE.pattern).all():
        return None
    sample = nonblank.head(1000)
    wordy = bool(sample.str.contains(r"\s", regex=True).mean() >= 0.5)
    mean_len = float(strings.str.len().sum()) / len(s)
    return not nonblank.empty, wordy, mean_len


def _name_key(column: Any) -> str:
    """A column name as the guesses compare it: " Label " and "LABEL" are "label"."""
    return str(column).strip().lower()


def _empty_in_every_row(s: pd.Series) -> bool:
    """Every value missing, empty or whitespace-only."""
    return all(_missing(v) or (isinstance(v, str) and not v.strip()) for v in s.tolist())


def _guess_text_column(df: pd.DataFrame, file: str | None, not_text: set[str]) -> str:
    """The best text column outside `not_text` (label- and id-like columns); InputError naming the column when
    the only candidates, or a column named like text, are empty in every row."""
    candidates = [c for c in df.columns if c not in not_text]
    for col in candidates:
        if _name_key(col) in _TEXT_NAMES and _empty_in_every_row(df[col]):
            raise InputError(_empty_text_message(df, not_text), file=file, column=col)
    best, best_key = None, None
    for col in candidates:
        stats = _text_stats(df[col])
        if stats is not None and (best_key is None or stats > best_key):
            best, best_key = col, stats
    if best is not None and best_key[0]:
        return str(best)
    empty = next((c for c in candidates if _empty_in_every_row(df[c])), None)
    if empty is not None:
        raise InputError(_empty_text_message(df, not_text), file=file, column=empty)
    cols = ", ".join(map(str, df.columns)) or "(none)"
    raise InputError(f"no text column: none of the columns ({cols}) holds text{_not_text_note(df, not_text)}; "
                     "name the text column (--text-col)", file=file)


def _empty_text_message(df: pd.DataFrame, not_text: set[str]) -> str:
    return (f"empty in every row, so it cannot be the text{_not_text_note(df, not_text)}; name the text column "
            "(--text-col)")


def _not_text_note(df: pd.DataFrame, not_text: set[str]) -> str:
    """Which columns were passed over as label or id columns (only those holding strings matter)."""
    passed = [c for c in df.columns if c in not_text and _text_stats(df[c]) is not None]
    if not passed:
        return ""
    return f" ({', '.join(map(repr, passed))} {'is' if len(passed) == 1 else 'are'} named like a label or an id, " \
           "never taken as the text)"


def _pick(df: pd.DataFrame, wanted: str | None, role: str, file: str) -> str | None:
    """Check that a named column exists (InputError listing the columns if not)."""
    if wanted is None or wanted == "":
        return None
    if wanted not in df.columns:
        cols = ", ".join(repr(str(c)) for c in df.columns) or "(none)"
        raise InputError(f"no such column (named as the {role} column); the columns are: {cols}",
                         file=file, column=wanted)
    return wanted


def _by_name(df: pd.DataFrame, names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {_name_key(c): str(c) for c in reversed(df.columns) if c not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _class_like(df: pd.DataFrame, exclude: set[str]) -> str | None:
    """Header-less files: the first column with 2..100 distinct short values, each seen twice
    on average (like AG News' class index)."""
    for col in df.columns:
        if col in exclude:
            continue
        values = df[col].dropna()
        distinct = values.nunique()
        if 2 <= distinct <= 100 and distinct * 2 <= len(values) and \
                values.astype(str).str.len().max() <= 50:
            return str(col)
    return None


# --------------------------------------------------------------------------- corpus

def _build_corpus(table: _Table, file: str, *, name: str, text_col: str | None,
                  label_col: str | None, id_col: str | None,
                  meta_cols: list[str] | None, max_doc_bytes: int | None = None) -> Corpus:
    limit = _doc_limit(max_doc_bytes)
    df = table.frame
    df.columns = [str(c) for c in df.columns]
    n = len(df)
    if n == 0:
        what = "only a header row" if table.header else "no rows"
        raise InputError(f"no documents: the file has {what}", file=file)
    guess = guess_columns(df, file=file, header=table.header, text_col=text_col, label_col=label_col,
                          id_col=id_col)
    text_col, label_col, id_col = guess.text, guess.label, guess.id
    used = {text_col, label_col, id_col}
    if meta_cols is None:
        meta_cols = [c for c in df.columns if c not in used]
    else:
        meta_cols = [c for c in (_pick(df, m, "metadata", file) for m in meta_cols)
                     if c not in used]
    if len(meta_cols) > MAX_META_COLS:
        raise InputError(f"{len(meta_cols):,} metadata columns, over the limit of {MAX_META_COLS}:"
                         f" choose at most {MAX_META_COLS} to keep (--meta-cols a,b,c; "
                         "--meta-cols '' keeps none)", file=file)
    meta_df = df[meta_cols]
    if table.raw_strings:
        meta_df = _infer_numbers(meta_df)

    raw_texts = df[text_col].tolist()
    raw_labels = df[label_col].tolist() if label_col else None
    raw_ids = df[id_col].tolist() if id_col else None
    meta_values = [meta_df[c].tolist() for c in meta_cols]
    texts: list[str] = []
    doc_ids: list[str] = []
    labels: list[str | None] = []
    metas: list[dict[str, Any]] = []
    rows: list[int] = []
    skipped: list[Skip] = []
    for i in range(n):
        row = i + 1
        text = _text_value(raw_texts[i], file, row, text_col)
        if not text:
            skipped.append(Skip(row, "empty text"))
            continue
        if not text.strip():
            skipped.append(Skip(row, "only whitespace"))
            continue
        _check_value_size(text, limit, "text", file, row, text_col)
        if raw_ids is not None:
            doc_id = _id_str(raw_ids[i])
            if doc_id is None:
                raise InputError("the id is empty", file=file, row=row, column=id_col)
            _check_value_size(doc_id, limit, "id", file, row, id_col)
        else:
            doc_id = str(i)
        texts.append(text)
        doc_ids.append(doc_id)
        rows.append(row)
        if raw_labels is not None:
            labels.append(_scalar_str(raw_labels[i]))
            _check_value_size(labels[-1], limit, "label", file, row, label_col)
        try:
            metas.append({c: _meta_value(vals[i]) for c, vals in zip(meta_cols, meta_values)})
        except (RecursionError, ValueError):
            raise InputError("a metadata value is nested too deeply to store", file=file,
                             row=row) from None
        for c, v in metas[-1].items():
            _check_value_size(v, limit, "value", file, row, c)
    if not texts:
        raise InputError(f"empty in every row ({n:,} rows): no documents to ingest", file=file, column=text_col)
    if raw_ids is not None:
        _check_unique_ids(doc_ids, rows, file, id_col)
    return Corpus(name=name, source=file, texts=texts, doc_ids=doc_ids,
                  labels=labels if raw_labels is not None else None, metas=metas,
                  text_col=text_col, label_col=label_col, id_col=id_col,
                  meta_cols=list(meta_cols), skipped=skipped)


def _check_unique_ids(doc_ids: list[str], rows: list[int], file: str, id_col: str | None) -> None:
    if len(set(doc_ids)) == len(doc_ids):
        return
    seen: dict[str, list[int]] = {}
    for doc_id, row in zip(doc_ids, rows):
        seen.setdefault(doc_id, []).append(row)
    dups = [(k, r) for k, r in seen.items() if len(r) > 1]
    if not dups:
        return
    shown = "; ".join(f"{k!r} in rows {', '.join(map(str, r[:5]))}{', ...' if len(r) > 5 else ''}"
                      for k, r in dups[:3])
    more = f" (and {len(dups) - 3} more repeated ids)" if len(dups) > 3 else ""
    raise InputError(f"duplicate ids: {shown}{more}", file=file, row=dups[0][1][1], column=id_col)


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _text_value(v: Any, file: str, row: int, col: str) -> str | None:
    if type(v) is str:
        return v
    if _missing(v):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bool, int, float)):
        return _scalar_str(v)
    kind = _json_type(v) if isinstance(v, (list, dict)) else type(v).__name__
    raise InputError(f"the text is {kind}, not a string", file=file, row=row, column=col)


def _id_str(v: Any) -> str | None:
    """A doc id as written: the cell's string (stripped), or a JSON number's literal text."""
    if isinstance(v, (_JsonInt, _JsonFloat)):
        return v.raw
    return _scalar_str(v)


def _scalar_str(v: Any) -> str | None:
    """A label or id as a stripped string (3 and 3.0 -> "3"); None when missing or blank."""
    if type(v) is str:
        return v.strip() or None
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, (list, dict, np.ndarray)):
        s = json.dumps(v, ensure_ascii=False, default=_json_default)
    else:
        s = str(v).strip()
    return s or None


def _meta_value(v: Any) -> Any:
    """Scalars kept (numpy -> Python), dates as ISO text, anything else as JSON text."""
    if type(v) is str:
        return v
    if isinstance(v, (np.ndarray, list, dict, tuple)):
        return json.dumps(v, ensure_ascii=False, default=_json_default)
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, _JsonInt):
        return int(v)
    if isinstance(v, _JsonFloat):
        return float(v)
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (_dt.date, _dt.datetime, pd.Timestamp)):
        return v.isoformat()
    return json.dumps(v, ensure_ascii=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (_dt.date, _dt.datetime)):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.decode("utf-8", errors="replace")
    return str(o)


def _basename(filename: str) -> str:
    return PurePosixPath(str(filename).replace("\\", "/")).name or str(filename)


def _stem(file: str) -> str:
    name = file[:-3] if file.lower().endswith(".gz") else file
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
