"""Which format a file is (magic bytes first, then the extension), gzip, and the parsed table every reader returns."""
from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from embedlab.errors import InputError
from embedlab.ingest.limits import human

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "txt", "zip")
_ALIASES = {"ndjson": "jsonl", "tab": "tsv", "pq": "parquet", "text": "txt"}
NEWLINE_RE = re.compile(r"\r\n|\r|\n")


@dataclass
class Table:
    """A parsed file: its columns, and how it was read."""
    frame: pd.DataFrame
    fmt: str
    encoding: str | None = None
    header: bool | None = None       # CSV/TSV: whether the first line was a header
    raw_strings: bool = False        # CSV/TSV: values are the strings as read, numbers not inferred
    # Parquet: a column of numeric lists asked for as vectors, read straight into a 2-D array (not in `frame`)
    matrices: dict = field(default_factory=dict)


def format_of(file: str, data: bytes) -> str:
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


def is_txt_name(file: str) -> bool:
    ext = file.lower().rsplit(".", 1)[-1] if "." in file else ""
    return _ALIASES.get(ext, ext) == "txt"


def gunzip(data: bytes, file: str, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error):
        raise InputError("the gzip file is damaged or truncated", file=file) from None
    if len(out) > max_bytes:
        raise InputError(f"decompressed, it is over the {human(max_bytes)} limit "
                         "(set --max-mb to raise it)", file=file)
    return out


def basename(filename: str) -> str:
    return PurePosixPath(str(filename).replace("\\", "/")).name or str(filename)


def stem(file: str) -> str:
    name = file[:-3] if file.lower().endswith(".gz") else file
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
