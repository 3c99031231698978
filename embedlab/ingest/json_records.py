"""The JSON and JSON Lines readers: numbers keep their literal text (ids stay exact), lone surrogates and numbers past
Python's limit are refused with the line."""
from __future__ import annotations

import json
import re
import sys
from typing import Any

import pandas as pd

from embedlab.errors import InputError
from embedlab.ingest.formats import NEWLINE_RE, Table
from embedlab.ingest.limits import MAX_COLUMNS, check_value_size


class JsonInt(int):
    """A JSON integer that remembers how it was written (ids are kept as written)."""
    raw: str


class JsonFloat(float):
    """A JSON number with a fraction or exponent that remembers how it was written."""
    raw: str


def _json_int(literal: str) -> int:
    try:
        value = JsonInt(literal)
    except ValueError:                 # Python's limit on digits of an int (4300)
        raise _JsonNumberError(literal) from None
    value.raw = literal
    return value


def _json_float(literal: str) -> float:
    value = JsonFloat(literal)
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
        check_value_size(value, limit, "text" if key == "text" else "value", file, row, key)


def read_jsonl(text: str, file: str, max_doc_bytes: int) -> Table:
    records: list[Any] = []
    keys: dict[str, None] = {}
    may_have_surrogates = _SURROGATE_ESCAPE_RE.search(text) is not None
    for line_no, line in enumerate(NEWLINE_RE.split(text), 1):
        if not line.strip():
            continue
        row = len(records) + 1
        try:
            record = _json_loads(line)
        except (ValueError, RecursionError) as e:
            raise _json_failure(e, file, row, line_no) from None
        if not isinstance(record, dict):
            raise InputError(f"line {line_no} is {json_type(record)}, expected an object like "
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
    return Table(_records_frame(records, file, keys), "jsonl")


def _add_keys(keys: dict[str, None], record: dict, file: str, row: int) -> None:
    for k in record:
        if k not in keys:
            keys[k] = None
            if len(keys) > MAX_COLUMNS:
                raise InputError(f"over {MAX_COLUMNS:,} distinct keys (columns) by this record; "
                                 f"at most {MAX_COLUMNS:,} are read", file=file, row=row)


def read_json(text: str, file: str, max_doc_bytes: int) -> Table:
    try:
        obj = _json_loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":          # one object a line: really JSON Lines
            return read_jsonl(text, file, max_doc_bytes)
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
        raise InputError(f"{shape}; found {json_type(obj)}", file=file)
    keys: dict[str, None] = {}
    check_surrogates = _SURROGATE_ESCAPE_RE.search(text) is not None
    for i, rec in enumerate(obj, 1):
        if not isinstance(rec, dict):
            raise InputError(f"the item is {json_type(rec)}, expected an object like "
                             '{"text": "..."}', file=file, row=i)
        if check_surrogates:
            where = _lone_surrogate(rec)
            if where is not None:
                raise InputError(f"the value at {where} holds a lone surrogate (a \\ud800-\\udfff "
                                 "escape without its pair): not valid Unicode", file=file, row=i)
        _add_keys(keys, rec, file, i)
        if len(text) > max_doc_bytes:
            _check_record_strings(rec, max_doc_bytes, file, i)
    return Table(_records_frame(obj, file, keys), "json")


def _records_frame(records: list[Any], file: str, keys: dict[str, None] | None = None
                   ) -> pd.DataFrame:
    """Records -> a frame of object columns holding the parsed values as they are (no type
    inference: an int column with a missing value stays ints, and missing is None)."""
    if keys is None:
        keys = {}
        for i, rec in enumerate(records, 1):
            if not isinstance(rec, dict):
                raise InputError(f"the item is {json_type(rec)}, expected an object like "
                                 '{"text": "..."}', file=file, row=i)
            _add_keys(keys, rec, file, i)
    if not records:
        return pd.DataFrame()
    return pd.DataFrame({k: pd.Series([rec.get(k) for rec in records], dtype=object)
                         for k in keys})


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


# A BEIR corpus (corpus.jsonl: "_id", "title", "text") is embedded and indexed as title + " " + text, stripped (what
# BEIR's dense models and MTEB embed and BEIR's BM25 indexes; `embedlab.retrieval.beir.BeirDataset.corpus_texts`).
BEIR_TEXT_COL = "title + text"
_BEIR_FIELDS = ("_id", "title", "text")


def add_beir_text(table: Table) -> None:
    """Give a BEIR corpus table a first column `BEIR_TEXT_COL` (title and text joined by a space, stripped; a missing
    one as ""), which the column guess then takes as the text (the longest). Other tables, and tables whose title or
    text holds anything but strings, are left as they are."""
    df = table.frame
    if not all(c in df.columns for c in _BEIR_FIELDS) or BEIR_TEXT_COL in df.columns:
        return
    titles, bodies = df["title"].tolist(), df["text"].tolist()
    if not all(v is None or isinstance(v, str) or _missing(v) for v in (*titles, *bodies)):
        return
    joined = [f"{t if isinstance(t, str) else ''} {b if isinstance(b, str) else ''}".strip()
              for t, b in zip(titles, bodies)]
    df.insert(0, BEIR_TEXT_COL, pd.Series(joined, index=df.index, dtype=object))


def _missing(v: Any) -> bool:
    return isinstance(v, float) and v != v
