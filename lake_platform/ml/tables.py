"""Read and write the lake's Parquet tables with pandas, from a catalog location or a store key."""

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lake_platform.adapters.storage import ObjectStore


def read_table(store: ObjectStore, location: str, columns=None, filters=None) -> pd.DataFrame:
    """A table's Parquet files as one DataFrame; `filters` are pyarrow's (pushed into the file scan).

    A local location is a folder pandas reads directly (through the catalog's symlink); an `s3://`
    location is read object by object through the store, so the same code runs against moto in tests.
    """
    if not location.startswith("s3://"):
        return pd.read_parquet(location, columns=columns, filters=filters)
    root = store.uri("")
    prefix = location[len(root) :].rstrip("/") + "/"
    tables = [
        pq.read_table(io.BytesIO(store.get_bytes(o.key)), columns=columns, filters=filters)
        for o in store.list(prefix)
        if o.key.endswith(".parquet") and not o.key.rsplit("/", 1)[-1].startswith(("_", "."))
    ]
    if not tables:
        raise FileNotFoundError(f"no Parquet files under {location}")
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def write_parquet(store: ObjectStore, key: str, frame: pd.DataFrame, schema: pa.Schema | None = None) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), buffer)
    store.put_bytes(key, buffer.getvalue())


def write_chunks(store: ObjectStore, prefix: str, frame: pd.DataFrame, rows_per_file: int) -> list[str]:
    """`frame` as numbered Parquet files of at most `rows_per_file` rows; returns their keys."""
    keys = []
    for number, start in enumerate(range(0, max(len(frame), 1), rows_per_file)):
        key = f"{prefix.rstrip('/')}/part-{number:05d}.parquet"
        write_parquet(store, key, frame.iloc[start : start + rows_per_file])
        keys.append(key)
    return keys
