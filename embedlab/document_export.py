"""Documents exported as a table, CSV or JSONL: the Atlas's selection and bookmark downloads. Documents are
dicts as from `storage.corpora.load_documents` (idx, doc_id, label, text, meta)."""
from __future__ import annotations

import io
import json
from typing import Any, Mapping, Sequence

_BASE_COLUMNS = ("idx", "doc_id", "label", "text")


def selection_frame(docs: Sequence[Mapping[str, Any]]):
    """Documents (as from `storage.corpora.load_documents`) as a DataFrame: idx, doc_id, label, text and one
    column per metadata key (prefixed `meta.` where a key clashes with those)."""
    import pandas as pd

    rows = []
    for d in docs:
        row = {k: d.get(k) for k in _BASE_COLUMNS}
        for key, value in (d.get("meta") or {}).items():
            row[f"meta.{key}" if key in _BASE_COLUMNS else key] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(_BASE_COLUMNS))


def to_csv_bytes(docs: Sequence[Mapping[str, Any]]) -> bytes:
    """The documents as UTF-8 CSV, one column per metadata key (see `selection_frame`)."""
    buf = io.StringIO()
    selection_frame(docs).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def to_jsonl_bytes(docs: Sequence[Mapping[str, Any]]) -> bytes:
    """The documents as UTF-8 JSON lines: idx, doc_id, label, text and the metadata as one `meta` object."""
    lines = [json.dumps({"idx": d.get("idx"), "doc_id": d.get("doc_id"), "label": d.get("label"),
                         "text": d.get("text"), "meta": d.get("meta") or {}}, ensure_ascii=False, default=str)
             for d in docs]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def bookmark_documents(bookmarks: Sequence[Mapping[str, Any]], texts: Sequence[str],
                       labels: Sequence[Any] | None = None) -> list[dict]:
    """Bookmarks (idx, tag, note, as from `storage.bookmarks.list_bookmarks`) as documents to export: the
    full text and label, with tag and note as metadata. Bookmarks past the corpus's end are skipped."""
    return [{"idx": b["idx"], "label": None if labels is None else labels[b["idx"]], "text": texts[b["idx"]],
             "meta": {"tag": b["tag"], "note": b["note"]}} for b in bookmarks if 0 <= b["idx"] < len(texts)]
