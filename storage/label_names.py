"""Names for a corpus's label values (`label_names`: AG News' "1" -> "World"), shown wherever labels are.

A label's colour belongs to its value, not its name (see `embedlab.map_colours.label_palette`): renaming a
label never changes its colour. Labels are listed in their natural order (`natural_key`: "2" before "10")."""
from __future__ import annotations

import csv
import io
import re
from typing import Iterable, Mapping

import sqlite_utils

from storage.errors import InputError
from storage.locks import transaction

MAX_NAME_CHARS = 100
MAX_NAMES = 10_000


def natural_key(value: str) -> tuple:
    """Sort key that orders "2" before "10" and "label 9" before "label 10" (case-insensitive)."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in parts if p != ""), str(value)


def get_label_names(db: sqlite_utils.Database, corpus_id: int) -> dict[str, str]:
    """label value -> name for the corpus's named labels."""
    return {r[0]: r[1] for r in db.execute("SELECT label, name FROM label_names WHERE corpus_id = ? ORDER BY label",
                                           [int(corpus_id)])}


def set_label_names(db: sqlite_utils.Database, corpus_id: int, names: Mapping[str, str | None]) -> dict[str, str]:
    """Replace the corpus's label names by `names` (one transaction); a blank name or one equal to its label
    removes that label's name. Returns what is stored."""
    clean = clean_label_names(names)
    with transaction(db) as conn:
        conn.execute("DELETE FROM label_names WHERE corpus_id = ?", [int(corpus_id)])
        conn.executemany("INSERT INTO label_names (corpus_id, label, name) VALUES (?,?,?)",
                         [(int(corpus_id), label, name) for label, name in clean.items()])
    return clean


def clean_label_names(names: Mapping[str, str | None]) -> dict[str, str]:
    """Names stripped and checked: one line, at most MAX_NAME_CHARS characters; blank ones dropped."""
    if len(names) > MAX_NAMES:
        raise InputError(f"{len(names):,} label names: at most {MAX_NAMES:,}")
    clean: dict[str, str] = {}
    for label, name in names.items():
        text = " ".join(str(name or "").split())
        if not text or text == str(label):
            continue
        if len(text) > MAX_NAME_CHARS:
            raise InputError(f"the name for label {str(label)[:40]!r} has {len(text)} characters; "
                             f"at most {MAX_NAME_CHARS}")
        clean[str(label)] = text
    return clean


def parse_label_names(text: str, labels: Iterable[str]) -> dict[str, str]:
    """Label names from a small file: `label,name` rows (CSV or TSV, a header row is skipped when its first
    field is not a label), or one name per line in label order — line i names the i-th label in natural
    sorted order, as AG News' classes.txt does for labels 1-4. Names for labels the corpus lacks are
    ignored; an unreadable file raises InputError."""
    known = sorted({str(v) for v in labels if v is not None and str(v) != ""}, key=natural_key)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError("the label-names file is empty")
    dialect = "\t" if any("\t" in line for line in lines[:5]) else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=dialect))
    if all(len(r) >= 2 for r in rows):
        pairs = {r[0].strip(): r[1].strip() for r in rows if r[0].strip() in known}
        if not pairs:
            raise InputError("no row of the label-names file starts with one of this corpus's labels "
                             f"({', '.join(known[:5])}{'…' if len(known) > 5 else ''})")
        return clean_label_names(pairs)
    if len(lines) != len(known):
        raise InputError(f"the file has {len(lines)} names, one per line, but the corpus has {len(known)} labels: "
                         "give one name per label in label order, or `label,name` rows")
    return clean_label_names(dict(zip(known, (line.strip() for line in lines))))
