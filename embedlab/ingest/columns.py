"""Which columns hold the text, the labels and the ids (`guess_columns`: the one guess the CLI's ingest and the
Corpora page share), and numbers read from CSV strings."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embedlab.errors import InputError

_LABEL_NAMES = ("label", "labels", "class", "category", "intent", "target", "topic")
_ID_NAMES = ("id", "_id", "doc_id")

# A column named like this that is empty in every row is refused, never silently replaced by another column.
_TEXT_NAMES = ("text", "texts", "document", "content", "body", "sentence")
_INT = r"0|-?[1-9][0-9]{0,14}"
_FLOAT = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"   # "03" stays text
NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


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
    text = pick(df, text_col, "text", file) if text_col else None
    taken = {text} - {None}
    label = pick(df, label_col, "label", file) if label_col else \
        None if label_col == "" else _by_name(df, _LABEL_NAMES, taken)
    taken.add(label)
    id_ = pick(df, id_col, "id", file) if id_col else None if id_col == "" else _by_name(df, _ID_NAMES, taken)
    if text is None:
        not_text = {c for c in df.columns if _name_key(c) in _LABEL_NAMES + _ID_NAMES} | {label, id_}
        text = _guess_text_column(df, file, not_text - {None})
    if label is None and label_col is None and header is False:
        label = _class_like(df, {text, id_})
    return ColumnGuess(text=text, label=label, id=id_)


def infer_numbers(df: pd.DataFrame) -> pd.DataFrame:
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
    if not nonblank.empty and nonblank.str.strip().str.fullmatch(NUMBER_RE.pattern).all():
        return None
    sample = nonblank.head(1000)
    wordy = bool(sample.str.contains(r"\s", regex=True).mean() >= 0.5)
    mean_len = float(strings.str.len().sum()) / len(s)
    return not nonblank.empty, wordy, mean_len


def _name_key(column: Any) -> str:
    """A column name as the guesses compare it: " Label " and "LABEL" are "label"."""
    return str(column).strip().lower()


def is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _empty_in_every_row(s: pd.Series) -> bool:
    """Every value missing, empty or whitespace-only."""
    return all(is_missing(v) or (isinstance(v, str) and not v.strip()) for v in s.tolist())


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


def pick(df: pd.DataFrame, wanted: str | None, role: str, file: str) -> str | None:
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
