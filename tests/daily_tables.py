"""Test helper: commit a DataFrame as days of a daily Iceberg lake table, as the daily assets and Spark jobs do."""

import pandas as pd
import pyarrow as pa


def commit_days(catalog, zone: str, table: str, frame: pd.DataFrame, replaced: list[str]) -> int:
    """Commit `frame` to the Iceberg table `<zone>.<table>` of `catalog` (LocalCatalog or GlueCatalog) with
    `Catalog.commit`: created on first use, identity-partitioned by flight_date; the days min(replaced) ..
    max(replaced) are replaced in one snapshot (copy-on-write), other days kept. Returns the snapshot id."""
    with catalog.pyiceberg() as iceberg:
        existing = None
        if iceberg is not None and iceberg.table_exists(f"{catalog.database(zone)}.{table}"):
            existing = iceberg.load_table(f"{catalog.database(zone)}.{table}").schema().as_arrow()
    if existing is not None:  # the table's types (an empty frame's object columns have none)
        schema = pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in existing])
        rows = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    else:
        rows = pa.Table.from_pandas(frame, preserve_index=False)
        # Spark writes microseconds; pandas' nanoseconds are not an Iceberg type.
        rows = rows.cast(pa.schema([
            f.with_type(pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f for f in rows.schema
        ]))
    return catalog.commit(zone, table, rows, "flight_date", {"first": min(replaced), "last": max(replaced)})
