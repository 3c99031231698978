"""Size limits of ingestion: the file, every decoded form of it, one stored value (a document's text, a label, an id, a
metadata value), and the scan of a TXT file's lines before it is read whole."""
from __future__ import annotations

import codecs
import math
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np

from embedlab.errors import InputError
from embedlab.ingest.decoding import WIDE_BOMS, wide_encoding

DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# One stored value at most (a document's text, a label, an id, a metadata value), as UTF-8: a book is 1-3 MB, and
# SQLite refuses values over 1e9 bytes. A TXT line over it is refused while the file is scanned, before it is read.
MAX_DOC_BYTES = 10 * 1024 * 1024
MAX_COLUMNS = 1_000            # columns of a table, distinct keys of JSON records
MAX_META_COLS = 50             # metadata columns kept per document
MAX_ZIP_MEMBERS = 500_000      # entries of a ZIP archive
SCAN_BYTES = 16 * 1024 * 1024   # step of the line-length scan of TXT files


def check_max_bytes(max_bytes: Any) -> int:
    """A byte limit as a positive int (InputError for NaN, infinity, zero, negative or non-numbers)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, float, np.integer, np.floating)):
        raise InputError(f"the size limit must be a number of bytes, got {max_bytes!r}")
    if not math.isfinite(max_bytes) or max_bytes < 1:
        raise InputError(f"the size limit must be a positive finite number, got {max_bytes!r}")
    return int(max_bytes)


def doc_limit(max_doc_bytes: int | None) -> int:
    """The limit for one stored value: MAX_DOC_BYTES unless given (read when called, so it can be lowered)."""
    return check_max_bytes(MAX_DOC_BYTES if max_doc_bytes is None else max_doc_bytes)


def check_size(size: int, file: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(f"{human(size)} is over the {human(max_bytes)} limit "
                         "(set --max-mb to raise it)", file=file)


def human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = (n / 1024, "KB") if n < 1024 * 1024 else (n / 1024 / 1024, "MB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def _over_limit(value: Any, limit: int) -> bool:
    """Whether a string is over `limit` bytes as UTF-8 (encoded only when its length leaves a doubt)."""
    if not isinstance(value, str) or len(value) * 4 <= limit:
        return False
    return len(value) > limit or len(value.encode("utf-8", "surrogatepass")) > limit


def check_value_size(value: Any, limit: int, what: str, file: str, row: int, column: str | None) -> None:
    if _over_limit(value, limit):
        unit = "one document (split it into several documents)" if what == "text" else "one stored value"
        raise InputError(f"the {what} is over the {human(limit)} limit for {unit}", file=file, row=row,
                         column=column)


def _too_long_line(limit: int) -> str:
    return (f"the line is over the {human(limit)} limit for one document (in a .txt file each line is a "
            "document: split the text over several lines)")


def _line_breaks(arr: np.ndarray, after_cr: bool) -> int:
    """Line breaks (CRLF, CR or LF) in a byte array; `after_cr`: the bytes before it ended with CR."""
    lf, cr = arr == 10, arr == 13
    crlf = int(np.count_nonzero(cr[:-1] & lf[1:]))
    joined = 1 if after_cr and arr.size and arr[0] == 10 else 0
    return int(np.count_nonzero(lf)) + int(np.count_nonzero(cr)) - crlf - joined


def check_txt_lines(head: bytes, chunks: Iterable[bytes | memoryview], file: str, limit: int,
                     encoding: str | None = None) -> None:
    """InputError naming the row when a line of a TXT file (one document) is over `limit` bytes, found in one
    pass over the chunks (the file's bytes, which start with `head`), stopping at the first such line. In UTF-8
    and the legacy encodings a line's bytes are at most its UTF-8 bytes, so nothing under the limit is refused; a
    gzip/ZIP/Parquet file, or text in UTF-16/32 (a BOM, or the named encoding), is left to the exact check of each
    text."""
    head = bytes(head[:4])
    if wide_encoding(encoding) or head.startswith(WIDE_BOMS) or head[:2] == b"\x1f\x8b" or \
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


def check_txt_file(fh: BinaryIO, file: str, limit: int, encoding: str | None = None) -> None:
    """`check_txt_lines` over an open file, read in steps of SCAN_BYTES (read when called, so it can be changed);
    the file is left at its start."""
    head = fh.read(4)
    fh.seek(0)
    check_txt_lines(head, iter(lambda: fh.read(SCAN_BYTES), b""), file, limit, encoding)
    fh.seek(0)


def check_txt_bytes(data: bytes, file: str, limit: int, encoding: str | None = None) -> None:
    """`check_txt_lines` over a file's bytes in memory, in steps of SCAN_BYTES."""
    view = memoryview(data)
    check_txt_lines(data[:4], (view[i:i + SCAN_BYTES] for i in range(0, len(view), SCAN_BYTES)), file, limit,
                    encoding)
