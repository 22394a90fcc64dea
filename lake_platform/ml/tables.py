"""Read and write the lake's Parquet tables with pandas, from a catalog location or a store key."""

import io
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lake_platform.adapters.catalog import ICEBERG_ZONES, Catalog
from lake_platform.adapters.storage import ObjectStore


def read_table(store: ObjectStore, location: str, columns=None, filters=None) -> pd.DataFrame:
    """A table's Parquet files as one DataFrame; `filters` are pyarrow's (pushed into the file scan).

    A local location is a folder pandas reads directly (through the catalog's symlink); an `s3://`
    location is read object by object through the store, so the same code runs against moto in tests.
    """
    return _read_arrow(store, location, columns, filters).to_pandas()


def read_partitions(store: ObjectStore, catalog: Catalog, zone: str, table: str, values, columns=None) -> pd.DataFrame:
    """The partitions `values` (e.g. days) of a partitioned cataloged table, those that exist, as one DataFrame
    with the partition column (as dates, taken from the partition, as Hive and Athena do).

    Each partition is read from its own location as the catalog gives it, never from the table's location: on
    Glue the partitions of one table live in different version folders under the table's location (which also
    holds superseded versions kept for in-flight readers), so only the partition locations are the table.
    A value with no partition (a day with no rows) is skipped; none at all gives an empty frame.

    An Iceberg table (the curated zone) is read from its current snapshot's data files of those partitions
    (`Catalog.data_files`), which hold the partition column themselves.
    """
    info = catalog.get(zone, table)
    if info is None:
        catalog.location(zone, table)  # raises the clear "materialize its asset first" LookupError
    if zone in ICEBERG_ZONES:
        files = catalog.data_files(zone, table, sorted(set(values)))
        parts = [_read_file(store, f, columns) for f in files]
        if not parts:
            return pd.DataFrame(columns=columns or [name for name, _ in info.columns])
        # Permissive: writers differ in physical types of one Iceberg type (Spark string, PyIceberg large_string).
        return pa.concat_tables(parts, promote_options="permissive").to_pandas()
    if not info.partition_keys:
        raise ValueError(f"{catalog.database(zone)}.{table} is not partitioned: read it with read_table")
    column = info.partition_keys[0]
    locations = catalog.partitions(zone, table)
    in_files = None if columns is None else [c for c in columns if c != column]
    parts = []
    for value in sorted(set(values) & set(locations)):
        part = _with_day(_read_arrow(store, locations[value], in_files), column, value)
        parts.append(part.select(columns) if columns else part)
    if not parts:
        return pd.DataFrame(columns=columns or [name for name, _ in info.columns])
    return pa.concat_tables(parts, promote_options="default").to_pandas()


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


def _read_arrow(store: ObjectStore, location: str, columns=None, filters=None) -> pa.Table:
    if not location.startswith("s3://"):
        dataset = ds.dataset(location, format="parquet", partitioning=_hive_dates(Path(location)),
                             ignore_prefixes=["_", "."])
        expression = pq.filters_to_expression(filters) if filters else None
        return dataset.to_table(columns=columns, filter=expression)
    root = store.uri("")
    prefix = location[len(root) :].rstrip("/") + "/"
    tables = []
    for o in store.list(prefix):
        if not o.key.endswith(".parquet") or o.key.rsplit("/", 1)[-1].startswith(("_", ".")):
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(o.key)))
        for part in o.key[len(prefix) :].split("/")[:-1]:  # Hive-style `<column>=<day>` folders
            name, _, value = part.partition("=")
            if value:
                table = _with_day(table, name, value)
        table = table.filter(pq.filters_to_expression(filters)) if filters else table
        tables.append(table.select(columns) if columns else table)
    if not tables:
        raise FileNotFoundError(f"no Parquet files under {location}")
    return pa.concat_tables(tables, promote_options="default")


def _with_day(table: pa.Table, column: str, value: str) -> pa.Table:
    """`table` with the date column of its Hive-style partition `<column>=<value>` (files do not hold it)."""
    if column in table.column_names:
        return table
    return table.append_column(column, pa.array([date.fromisoformat(value)] * table.num_rows, pa.date32()))


def _hive_dates(folder: Path):
    """The lake's partition folders are `<date column>=YYYY-MM-DD`: read them back as date32 columns."""
    names = sorted({p.name.split("=", 1)[0] for p in folder.iterdir() if "=" in p.name}) if folder.is_dir() else []
    return ds.partitioning(pa.schema([(n, pa.date32()) for n in names]), flavor="hive") if names else None


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
