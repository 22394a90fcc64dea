"""Read the lake's Iceberg tables with pandas (their current snapshot's data files), write scratch Parquet."""

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lake_platform.adapters.catalog import ICEBERG_ZONES, Catalog
from lake_platform.adapters.storage import ObjectStore


def read_partitions(store: ObjectStore, catalog: Catalog, zone: str, table: str, values, columns=None) -> pd.DataFrame:
    """The partitions `values` (e.g. days) of a daily Iceberg table, those that have rows, as one DataFrame:
    the data files PyIceberg plans for the table's current snapshot and those partitions
    (`Catalog.data_files`; each file holds the partition column). None of them: an empty frame of the table's
    columns. A clear LookupError for a table that does not exist yet."""
    if zone not in ICEBERG_ZONES:
        raise ValueError(f"{catalog.database(zone)}.{table} is not an Iceberg table ({sorted(ICEBERG_ZONES)})")
    info = catalog.get(zone, table)
    if info is None:
        catalog.location(zone, table)  # raises the clear "materialize its asset first" LookupError
    parts = [_read_file(store, f, columns) for f in catalog.data_files(zone, table, sorted(set(values)))]
    if not parts:
        return pd.DataFrame(columns=columns or [name for name, _ in info.columns])
    # Permissive: writers differ in physical types of one Iceberg type (Spark string, PyIceberg large_string).
    return pa.concat_tables(parts, promote_options="permissive").to_pandas()


def _read_file(store: ObjectStore, location: str, columns=None) -> pa.Table:
    """One Parquet file: a local path, or an `s3://` URI read through the store. Of `columns`, those the file
    has (a file written before a column was added has none of it: the concatenation fills it with nulls)."""
    source = location
    if location.startswith("s3://"):
        root = store.uri("")
        if not location.startswith(root):
            raise ValueError(f"{location} is outside the lake ({root})")
        source = io.BytesIO(store.get_bytes(location[len(root) :]))
    parquet = pq.ParquetFile(source)
    present = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
    return parquet.read(columns=present)


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
