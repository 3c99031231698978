"""Vectors that come with the texts: a column of the table, or a matrix file beside it, row-aligned.

Forms
-----
* a column of the table holding one list of numbers per row: a Parquet list or fixed-size-list column, a JSON/JSONL
  field holding an array (``vectors_col``);
* a matrix file beside the table (``vectors_data``): ``.npy``; ``.npz`` (its only array, or the one named by
  ``vectors_col``); or the TensorFlow Projector's ``vectors.tsv`` (one vector a line, values separated by tabs, no
  header) beside its ``metadata.tsv`` (the table, with a header).

Alignment: vector row i belongs to the table's data row i (rows count from 1, as ingestion counts them); a row
whose document is skipped (empty text) drops its vector too, so the file's row counts must be equal, before
skipping. Checked, each refused in one line naming file, row and column: a row count that differs, rows of different
lengths, a value that is not a number (text, null, a nested list), NaN or infinity (the row is named), 0 or more
than `MAX_DIM` dimensions, an ``.npy``/``.npz`` array of another dtype than numbers (an object array is refused from
its header and never unpickled: the file is read with our own header check and ``np.frombuffer``, never
``np.load``), an ``.npz`` of several arrays when none is named. All-zero rows are kept and reported (cosine
similarity treats them as similar to nothing). Nothing is written: every function here is pure.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from embedlab.corpus import Corpus
from embedlab.embedding.imported import MAX_DIM, normalised
from embedlab.errors import InputError
from embedlab.ingest.columns import pick
from embedlab.ingest.decoding import decode_text
from embedlab.ingest.formats import NEWLINE_RE, Table, basename
from embedlab.ingest.limits import DEFAULT_MAX_BYTES, human

VECTOR_FILE_TYPES = ("npy", "npz", "tsv")
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER_KINDS = "fiu"


@dataclass
class CorpusVectors:
    """A corpus and its vectors: one L2-normalised float32 row per document, in document order."""
    corpus: Corpus
    vectors: np.ndarray
    source: str                                           # where the vectors came from: "FILE" or "FILE, column C"
    zero_rows: list[int] = field(default_factory=list)   # the file rows (from 1) whose vector is all zero

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def zero_note(self) -> str:
        """One line on the all-zero vectors kept, or ""."""
        if not self.zero_rows:
            return ""
        shown = ", ".join(map(str, self.zero_rows[:5])) + (", ..." if len(self.zero_rows) > 5 else "")
        n = len(self.zero_rows)
        return (f"{n:,} all-zero vector{'s' if n > 1 else ''} (row{'s' if n > 1 else ''} {shown}) kept, skipped "
                "for cosine work: similar to nothing")


# --- a column of the table ---------------------------------------------------------------------------------------


def pop_vectors_column(table: Table, column: str, file: str) -> np.ndarray:
    """Take the vectors column out of the table (so it is neither text nor metadata) and read it as a matrix."""
    table.frame.columns = [str(c) for c in table.frame.columns]
    if column in table.matrices:       # a Parquet column of numeric lists, read by Arrow (`read_parquet`)
        matrix = table.matrices.pop(column)
        _check_dim(matrix.shape[1], file, column)
        return matrix
    col = pick(table.frame, column, "vectors", file)
    values = table.frame[col].tolist()
    table.frame = table.frame.drop(columns=[col])
    return column_matrix(values, file, col)


def column_matrix(values: Sequence[Any], file: str, column: str) -> np.ndarray:
    """One list of numbers per row -> a 2-D matrix (checked: every row a list of the same length, only numbers)."""
    rows: list[np.ndarray] = []
    dim = None
    for i, value in enumerate(values):
        row = _row_vector(value, file, i + 1, column)
        if dim is None:
            dim = len(row)
            _check_dim(dim, file, column)
        elif len(row) != dim:
            raise InputError(f"a vector of {len(row):,} values, row 1 has {dim:,}: every vector must have the same "
                             "length", file=file, row=i + 1, column=column)
        rows.append(row)
    if not rows:
        raise InputError("no vectors: the table has no rows", file=file, column=column)
    return np.stack(rows)


def _row_vector(value: Any, file: str, row: int, column: str) -> np.ndarray:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise InputError("no vector in this row (the vectors column is empty here)", file=file, row=row,
                         column=column)
    if isinstance(value, str):
        raise InputError("holds text, not a list of numbers (name the column that holds the vectors)",
                         file=file, row=row, column=column)
    if isinstance(value, dict):
        raise InputError("holds an object, not a list of numbers", file=file, row=row, column=column)
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise InputError(f"holds {type(value).__name__} {value!r}, not a list of numbers (name the column that "
                         "holds the vectors)", file=file, row=row, column=column)
    try:
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    except ValueError:                      # nested lists of different lengths
        arr = np.empty(0, dtype=object)
    if arr.dtype.kind in _NUMBER_KINDS and arr.ndim == 1:
        return arr
    for k, item in enumerate(value):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, float, np.integer, np.floating)):
            shown = "null" if item is None else repr(item) if not isinstance(item, (list, tuple, np.ndarray)) \
                else "a list"
            raise InputError(f"value {k + 1} of the vector is {shown}, not a number", file=file, row=row,
                             column=column)
    raise InputError("not a flat list of numbers", file=file, row=row, column=column)


# --- a matrix file -----------------------------------------------------------------------------------------------


def read_vectors(data: bytes, filename: str, *, array: str | None = None, max_bytes: int | None = None
                 ) -> np.ndarray:
    """A matrix file's bytes (.npy, .npz or a Projector vectors.tsv) -> a 2-D numeric array, checked."""
    file = basename(filename)
    ext = file.lower().rsplit(".", 1)[-1] if "." in file else ""
    if not data:
        raise InputError("the file is empty", file=file)
    is_npz = ext == "npz" or data[:4] == b"PK\x03\x04"
    if array is not None and not is_npz:
        raise InputError(f"{array!r} names an array, but only an .npz holds several: this file is one matrix (give "
                         "--vectors FILE or --vectors-col COLUMN, not both)", file=file)
    if ext == "npy" or data[:6] == b"\x93NUMPY":
        return _npy(data, file, column=None)
    if is_npz:
        return _npz(data, file, array, max_bytes or DEFAULT_MAX_BYTES)
    if ext == "tsv":
        return _tsv(data, file)
    raise InputError(f"unsupported vectors file {('.' + ext) if ext else 'without an extension'}; supported: .npy, "
                     ".npz, .tsv (the TensorFlow Projector's vectors.tsv)", file=file)


def _npy(data: bytes, file: str, column: str | None) -> np.ndarray:
    """An .npy file read with a header check and `np.frombuffer`: never unpickled, never larger than its bytes."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise InputError(f"an .npy file of format version {version[0]}.{version[1]}, which holds a structured "
                             "array: save a plain numeric matrix (np.save of a float array)", file=file, column=column)
    except InputError:
        raise
    except (ValueError, EOFError, OSError, SyntaxError) as exc:
        raise InputError(f"not a valid .npy file ({' '.join(str(exc).split())[:160]})", file=file,
                         column=column) from None
    _check_dtype(dtype, file, column)
    if len(shape) != 2:
        what = f"a {len(shape)}-D array of shape {tuple(shape)}"
        raise InputError(f"{what}: vectors are a 2-D matrix, one row per document", file=file, column=column)
    rows, dim = (int(s) for s in shape)
    _check_dim(dim, file, column)
    need = rows * dim * dtype.itemsize
    have = len(data) - fp.tell()
    if have < need:
        raise InputError(f"the file is truncated: its header says {rows:,} x {dim:,} values ({human(need)}), it "
                         f"holds {human(max(0, have))}", file=file, column=column)
    flat = np.frombuffer(data, dtype=dtype, count=rows * dim, offset=fp.tell())
    return flat.reshape((rows, dim), order="F" if fortran else "C")


def _npz(data: bytes, file: str, array: str | None, max_bytes: int) -> np.ndarray:
    """An .npz archive's one array (or the one named `array`), read as an .npy file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError("not a valid .npz file (a damaged ZIP archive)", file=file) from None
    if not members:
        raise InputError("the .npz file holds no array", file=file)
    listed = ", ".join(map(repr, sorted(members)))
    if array is None:
        if len(members) > 1:
            raise InputError(f"the .npz file holds {len(members)} arrays ({listed}): name the one that holds the "
                             "vectors (--vectors-col NAME)", file=file)
        array = next(iter(members))
    if array not in members:
        raise InputError(f"no array {array!r} in the .npz file; it holds {listed}", file=file)
    info = members[array]
    if info.file_size > max_bytes:
        raise InputError(f"array {array!r} is {human(info.file_size)} unpacked, over the {human(max_bytes)} limit "
                         "(set --max-mb to raise it)", file=file)
    try:
        with archive.open(info) as fh:
            raw = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise InputError(f"array {array!r} of the .npz file is damaged", file=file) from None
    return _npy(raw, file, column=array)


def _tsv(data: bytes, file: str) -> np.ndarray:
    """The TensorFlow Projector's vectors.tsv: one vector a line, values separated by tabs, no header."""
    text, _ = decode_text(data, file)
    lines = NEWLINE_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputError("the file is empty", file=file)
    dim = lines[0].count("\t") + 1
    _check_dim(dim, file, None)
    for i, line in enumerate(lines):
        if not line.strip():
            raise InputError("an empty line: vectors.tsv holds one vector a line", file=file, row=i + 1)
        n = line.count("\t") + 1
        if n != dim:
            raise InputError(f"a vector of {n:,} values, row 1 has {dim:,}: every vector must have the same length",
                             file=file, row=i + 1)
    try:    # the C parser first (fast); it reads no "nan" or "inf", which numpy's conversion does
        return pd.read_csv(io.StringIO(text), sep="\t", header=None, dtype=np.float64, engine="c",
                           skip_blank_lines=False, na_filter=False).to_numpy()
    except (ValueError, pd.errors.ParserError):
        pass
    try:
        return np.array([line.split("\t") for line in lines], dtype=np.float64)
    except ValueError:
        raise _first_bad_cell(lines, file) from None


def _first_bad_cell(lines: list[str], file: str) -> InputError:
    for i, line in enumerate(lines):
        for k, cell in enumerate(line.split("\t")):
            try:
                float(cell)
            except ValueError:
                hint = " (vectors.tsv has no header: one vector a line)" if i == 0 else ""
                return InputError(f"value {k + 1} is {cell[:40]!r}, not a number{hint}", file=file, row=i + 1)
    return InputError("cannot be read as numbers separated by tabs", file=file)


# --- checks and alignment ----------------------------------------------------------------------------------------


def _check_dtype(dtype: np.dtype, file: str, column: str | None) -> None:
    if dtype.hasobject:
        raise InputError("holds Python objects (dtype object): refused, never unpickled; save a numeric matrix",
                         file=file, column=column)
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _NUMBER_KINDS:
        raise InputError(f"holds values of dtype {dtype.str!r}, not numbers: save a float matrix", file=file,
                         column=column)


def _check_dim(dim: int, file: str, column: str | None) -> None:
    if dim < 1:
        raise InputError("vectors of 0 dimensions", file=file, column=column)
    if dim > MAX_DIM:
        raise InputError(f"vectors of {dim:,} dimensions, over the limit of {MAX_DIM:,}", file=file, column=column)


def check_values(matrix: np.ndarray, file: str, column: str | None = None) -> None:
    """Every value finite (and within float32's range, as they are stored): InputError naming the first bad row."""
    step = max(1, (1 << 22) // max(1, matrix.shape[1]))
    for start in range(0, len(matrix), step):
        block = np.asarray(matrix[start:start + step])
        if block.dtype.kind != "f":
            continue
        bad = ~np.isfinite(block) | (np.abs(block) > FLOAT32_MAX)
        if bad.any():
            r = int(np.argmax(bad.any(axis=1)))
            value = block[r][bad[r]][0]
            what = "NaN" if np.isnan(value) else "an infinite value" if np.isinf(value) else \
                f"{value:g}, beyond float32's range"
            raise InputError(f"the vector holds {what}: every value must be a finite number", file=file,
                             row=start + r + 1, column=column)


def align(matrix: np.ndarray, corpus: Corpus, n_rows: int, *, file: str, table_file: str,
          column: str | None = None, header: bool | None = None) -> tuple[np.ndarray, list[int]]:
    """(the vectors of the corpus's documents, L2-normalised float32; the file rows of all-zero ones). The matrix
    has one row per data row of the table; skipped documents drop theirs."""
    if len(matrix) != n_rows:
        hint = ""
        if header and len(matrix) == n_rows + 1:
            hint = f" ({table_file}'s first line was read as a header: a table beside vectors needs one)"
        raise InputError(f"{len(matrix):,} vectors for {n_rows:,} data rows of {table_file}: vectors align with "
                         f"the file's rows (skipped empty texts included){hint}", file=file, column=column)
    check_values(matrix, file, column)
    skipped = {s.row for s in corpus.skipped}
    kept = np.array([r - 1 for r in range(1, n_rows + 1) if r not in skipped], dtype=np.int64)
    vectors, zero = normalised(matrix[kept] if skipped else matrix)
    return vectors, [int(kept[i]) + 1 for i in np.flatnonzero(zero)]
