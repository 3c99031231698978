"""The ZIP reader: one document per `.txt` member, inflated in steps with its real bytes counted."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import PurePosixPath

import pandas as pd

from embedlab.errors import InputError
from embedlab.ingest.decoding import WIDE_BOMS, decode_text, wide_encoding
from embedlab.ingest.formats import Table
from embedlab.ingest.limits import MAX_ZIP_MEMBERS, doc_limit, human


def _zip_entry_count(data: bytes) -> int | None:
    """The entry count the archive's end record declares (read before parsing the whole central
    directory, which may be huge); None when it cannot be read."""
    try:
        end = zipfile._EndRecData(io.BytesIO(data))       # stdlib's private reader, stable for decades
    except (OSError, ValueError, IndexError, struct.error):
        return None
    return None if not end else int(end[4])


def read_zip(data: bytes, file: str, max_bytes: int, encoding: str | None = None,
              max_doc_bytes: int | None = None) -> Table:
    """One document per .txt member (sorted by path); folders, __MACOSX/ and dot files skipped.
    Members are inflated in 1 MB steps and their real bytes counted: headers that understate a
    member's size cannot make it use more memory than ``max_bytes``, and a member over
    ``max_doc_bytes`` (one document; not UTF-16/32) is refused as soon as it is."""
    limit = doc_limit(max_doc_bytes)
    damaged = "the ZIP archive is damaged or truncated"
    declared = _zip_entry_count(data)
    if declared is not None and declared > MAX_ZIP_MEMBERS:
        raise InputError(f"the ZIP archive holds {declared:,} entries, over the limit of "
                         f"{MAX_ZIP_MEMBERS:,}", file=file)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error):
        raise InputError(damaged, file=file) from None
    over = (f"unpacked, its .txt files make over the {human(max_bytes)} limit "
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
            raise InputError(f"unpacked, its .txt files make {human(total)}, over the "
                             f"{human(max_bytes)} limit (set --max-mb to raise it)", file=file)
        texts_.sort(key=lambda m: m.filename)
        paths, folders, texts = [], [], []
        unpacked = 0
        for row, m in enumerate(texts_, 1):
            where = f"{file}:{m.filename}"
            if m.flag_bits & 0x1:
                raise InputError("the ZIP member is encrypted", file=where)
            parts = []
            size, wide = 0, wide_encoding(encoding)
            try:
                with archive.open(m) as fh:
                    while True:
                        piece = fh.read(1 << 20)
                        if not piece:
                            break
                        unpacked += len(piece)
                        if unpacked > max_bytes:
                            raise InputError(over, file=file)
                        wide = wide or (not size and piece.startswith(WIDE_BOMS))
                        size += len(piece)
                        if size > limit + 3 and not wide:       # (+3: a UTF-8 BOM is not text)
                            raise InputError(f"the file is over the {human(limit)} limit for one document "
                                             "(split it into several files)", file=where, row=row)
                        parts.append(piece)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                    RuntimeError, ValueError, struct.error):
                raise InputError(damaged, file=where) from None
            raw = b"".join(parts)
            text = decode_text(raw, where, encoding)[0] if raw else ""
            paths.append(m.filename)
            parent = str(PurePosixPath(m.filename).parent)
            folders.append(None if parent == "." else parent)
            texts.append(text[:-2] if text.endswith("\r\n") else
                         text[:-1] if text.endswith(("\n", "\r")) else text)
    frame = pd.DataFrame({"doc_id": pd.Series(paths, dtype=object),
                          "text": pd.Series(texts, dtype=object)})
    if any(folders):
        frame["folder"] = pd.Series(folders, dtype=object)
    return Table(frame, "zip")


def _zip_keeps(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and parts[0] != "__MACOSX" and not any(p.startswith(".") for p in parts)
