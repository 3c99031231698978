"""A parsed table -> a validated `Corpus`: texts, ids, labels and metadata values, each checked and converted."""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import numpy as np
import pandas as pd

from embedlab.corpus import Corpus, Skip
from embedlab.errors import InputError
from embedlab.ingest.columns import guess_columns, infer_numbers, is_missing, pick
from embedlab.ingest.formats import Table
from embedlab.ingest.json_records import BEIR_TEXT_COL, JsonFloat, JsonInt, json_type
from embedlab.ingest.limits import MAX_META_COLS, check_value_size, doc_limit


def build_corpus(table: Table, file: str, *, name: str, text_col: str | None,
                  label_col: str | None, id_col: str | None,
                  meta_cols: list[str] | None, max_doc_bytes: int | None = None) -> Corpus:
    limit = doc_limit(max_doc_bytes)
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
    if meta_cols is None:   # a BEIR corpus's joined text is never metadata, nor its text once joined into the text
        beir = {BEIR_TEXT_COL} | ({"text"} if text_col == BEIR_TEXT_COL else set())
        meta_cols = [c for c in df.columns if c not in used | beir]
    else:
        meta_cols = [c for c in (pick(df, m, "metadata", file) for m in meta_cols)
                     if c not in used]
    if len(meta_cols) > MAX_META_COLS:
        raise InputError(f"{len(meta_cols):,} metadata columns, over the limit of {MAX_META_COLS}:"
                         f" choose at most {MAX_META_COLS} to keep (--meta-cols a,b,c; "
                         "--meta-cols '' keeps none)", file=file)
    meta_df = df[meta_cols]
    if table.raw_strings:
        meta_df = infer_numbers(meta_df)

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
        check_value_size(text, limit, "text", file, row, text_col)
        if raw_ids is not None:
            doc_id = _id_str(raw_ids[i])
            if doc_id is None:
                raise InputError("the id is empty", file=file, row=row, column=id_col)
            check_value_size(doc_id, limit, "id", file, row, id_col)
        else:
            doc_id = str(i)
        texts.append(text)
        doc_ids.append(doc_id)
        rows.append(row)
        if raw_labels is not None:
            labels.append(_scalar_str(raw_labels[i]))
            check_value_size(labels[-1], limit, "label", file, row, label_col)
        try:
            metas.append({c: _meta_value(vals[i]) for c, vals in zip(meta_cols, meta_values)})
        except (RecursionError, ValueError):
            raise InputError("a metadata value is nested too deeply to store", file=file,
                             row=row) from None
        for c, v in metas[-1].items():
            check_value_size(v, limit, "value", file, row, c)
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


def _text_value(v: Any, file: str, row: int, col: str) -> str | None:
    if type(v) is str:
        return v
    if is_missing(v):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bool, int, float)):
        return _scalar_str(v)
    kind = json_type(v) if isinstance(v, (list, dict)) else type(v).__name__
    raise InputError(f"the text is {kind}, not a string", file=file, row=row, column=col)


def _id_str(v: Any) -> str | None:
    """A doc id as written: the cell's string (stripped), or a JSON number's literal text."""
    if isinstance(v, (JsonInt, JsonFloat)):
        return v.raw
    return _scalar_str(v)


def _scalar_str(v: Any) -> str | None:
    """A label or id as a stripped string (3 and 3.0 -> "3"); None when missing or blank."""
    if type(v) is str:
        return v.strip() or None
    if is_missing(v):
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
    if is_missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, JsonInt):
        return int(v)
    if isinstance(v, JsonFloat):
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
