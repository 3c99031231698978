"""The line-based readers: CSV and TSV (the header rule, the delimiter of a `.csv`, quoting errors by line) and TXT
(one document a line)."""
from __future__ import annotations

import csv
import re

import pandas as pd

from embedlab.errors import InputError
from embedlab.ingest.columns import NUMBER_RE
from embedlab.ingest.formats import NEWLINE_RE, Table
from embedlab.ingest.limits import MAX_COLUMNS, human

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}.*|[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}")
_HEADER_MAX_LEN = 100


def read_csv(text: str, file: str, max_field: int) -> Table:
    first = NEWLINE_RE.split(text, maxsplit=1)[0]      # CRLF, CR (old Mac Excel) or LF
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    return _read_delimited(text, file, delimiter, csv.QUOTE_MINIMAL, "csv", max_field)


def read_tsv(text: str, file: str, max_field: int) -> Table:
    """TSV with CSV-style quoting; if the quoting is broken, read it as plain tab-separated text."""
    try:
        return _read_delimited(text, file, "\t", csv.QUOTE_MINIMAL, "tsv", max_field)
    except _QuoteError:
        return _read_delimited(text, file, "\t", csv.QUOTE_NONE, "tsv", max_field)


# A line with its break (CRLF, CR or LF), as io.StringIO(newline="") yields them: csv reads the text line by line
# without a copy of the whole text (a StringIO holds 4 bytes a character).
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _read_delimited(text: str, file: str, delimiter: str, quoting: int, fmt: str,
                    max_field: int) -> Table:
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
                                 f"{human(max_field)} limit for one document or value", file=file,
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
    return Table(frame, fmt, header=header, raw_strings=True)


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
    if any(NUMBER_RE.fullmatch(v) or _DATE_RE.fullmatch(v) for v in values):
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


def read_txt(text: str, file: str) -> Table:
    lines = NEWLINE_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()                        # the line break that ends the last line
    return Table(pd.DataFrame({"text": pd.Series(lines, dtype=object)}), "txt")
