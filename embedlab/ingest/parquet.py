"""The Parquet reader: decoded batch by batch while counting the decoded bytes."""
from __future__ import annotations

from embedlab.errors import InputError
from embedlab.ingest.formats import Table
from embedlab.ingest.limits import DEFAULT_MAX_BYTES, MAX_COLUMNS, human


def read_parquet(data: bytes, file: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Table:
    """A Parquet file, decoded batch by batch while counting the decoded bytes: a small file that
    expands (dictionary or run-length encoding, compression) past ``max_bytes`` is refused as soon
    as it does, before the whole table is in memory."""
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
    return Table(frame, "parquet")


def _dense_schema(schema):
    """The schema with dictionary columns as their value type (pandas metadata kept)."""
    import pyarrow as pa

    fields = [pa.field(f.name, f.type.value_type, f.nullable, f.metadata)
              if pa.types.is_dictionary(f.type) else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)
