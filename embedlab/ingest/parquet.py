"""The Parquet reader: decoded batch by batch while counting the decoded bytes."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.ingest.formats import Table
from embedlab.ingest.limits import DEFAULT_MAX_BYTES, MAX_COLUMNS, human


def read_parquet(data: bytes, file: str, max_bytes: int = DEFAULT_MAX_BYTES, *,
                 matrix_col: str | None = None) -> Table:
    """A Parquet file, decoded batch by batch while counting the decoded bytes: a small file that
    expands (dictionary or run-length encoding, compression) past ``max_bytes`` is refused as soon
    as it does, before the whole table is in memory.

    ``matrix_col`` (the vectors column asked for): when it is a regular column of numeric lists (list or
    fixed-size list of ints or floats, no nulls, every row the same length), it is read straight from Arrow into a
    2-D array in ``Table.matrices`` and left out of the frame: no Python list per row (1M x 384: seconds, and one
    copy). Anything else stays in the frame, where `embedlab.ingest.vectors` reads it row by row and names what is
    wrong."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < 12 or data[-4:] != b"PAR1":
        raise InputError("the Parquet file is damaged or truncated", file=file)
    over = (f"decoded, it is over the {human(max_bytes)} limit (set --max-mb to raise it)")
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        meta = pf.metadata
        if meta.num_columns > MAX_COLUMNS:
            raise InputError(f"{meta.num_columns:,} columns, over the limit of {MAX_COLUMNS:,}",
                             file=file)
        declared = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        if declared > max_bytes:
            raise InputError(over, file=file)
        batches, decoded = [], 0
        rows_per_batch = max(1, min(65_536, 8 * 1024 * 1024 // max(1, meta.num_columns * 64)))
        schema = _dense_schema(pf.schema_arrow)
        for batch in pf.iter_batches(batch_size=rows_per_batch, use_pandas_metadata=True):
            if any(pa.types.is_dictionary(f.type) for f in batch.schema):
                # what the values really take (a dictionary column is counted expanded)
                batch = pa.RecordBatch.from_arrays(
                    [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
                     for c in batch.columns], schema=schema)
            decoded += batch.nbytes
            if decoded > max_bytes:
                raise InputError(over, file=file)
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=schema)
        del batches
        matrices = {}
        if matrix_col is not None and matrix_col in table.column_names:
            matrix = _numeric_lists(table.column(matrix_col))
            if matrix is not None:
                matrices[matrix_col] = matrix
                table = table.drop_columns([matrix_col])
        # Integer columns with nulls stay Python ints (never floats: ids must not change).
        frame = table.to_pandas(integer_object_nulls=True)
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError) as e:
        raise InputError(f"the Parquet file is damaged or cannot be read "
                         f"({' '.join(str(e).split())[:200]})", file=file) from None
    if len(frame.columns) > MAX_COLUMNS:
        raise InputError(f"{len(frame.columns):,} columns, over the limit of {MAX_COLUMNS:,}",
                         file=file)
    if any(n is not None for n in frame.index.names):
        frame = frame.reset_index()        # a named pandas index is a real column
    else:
        frame = frame.reset_index(drop=True)
    return Table(frame, "parquet", matrices=matrices)


def _numeric_lists(column) -> np.ndarray | None:
    """A chunked column of equal-length numeric lists without nulls as a 2-D array (its own dtype), else None."""
    import pyarrow as pa

    kind = column.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return None
    value = kind.value_type
    if not (pa.types.is_floating(value) or pa.types.is_integer(value)) or pa.types.is_float16(value):
        return None
    if column.null_count or len(column) == 0:
        return None
    dim = None
    parts = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        if pa.types.is_fixed_size_list(kind):
            lengths = np.full(len(chunk), kind.list_size)
        else:
            offsets = chunk.offsets.to_numpy(zero_copy_only=False)
            lengths = np.diff(offsets)
        if lengths.size and (lengths.min() != lengths.max() or (dim is not None and lengths[0] != dim)):
            return None
        dim = int(lengths[0])
        values = chunk.flatten()          # the values of these rows only (slices and offsets honoured)
        if values.null_count:
            return None
        parts.append((len(chunk), values))
    if not dim:
        return None
    out = np.empty((len(column), dim), dtype=parts[0][1].type.to_pandas_dtype())
    start = 0
    for rows, values in parts:
        out[start:start + rows] = values.to_numpy(zero_copy_only=False).reshape(rows, dim)
        start += rows
    return out


def _dense_schema(schema):
    """The schema with dictionary columns as their value type (pandas metadata kept)."""
    import pyarrow as pa

    fields = [pa.field(f.name, f.type.value_type, f.nullable, f.metadata)
              if pa.types.is_dictionary(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)
