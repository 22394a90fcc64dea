"""Test helper: publish a DataFrame as a daily-partitioned lake table, laid out as Spark and the ML asset write it."""

import io
from pathlib import Path

import pandas as pd

from lake_platform.adapters.catalog import version_key


def publish_days(store, catalog, zone: str, table: str, version: str, frame: pd.DataFrame, replaced: list[str],
                 part: str = "part-00000.parquet") -> None:
    """One `flight_date=YYYY-MM-DD/<part>` folder per day (the date not inside the files), `_SUCCESS`, then a
    partitioned publish responsible for the days `replaced`."""
    folder = version_key(zone, table, version)
    for day, rows in frame.groupby("flight_date"):
        buffer = io.BytesIO()
        rows.drop(columns=["flight_date"]).to_parquet(buffer, index=False)
        store.put_bytes(f"{folder}/flight_date={day.isoformat()}/{part}", buffer.getvalue())
    store.put_bytes(f"{folder}/_SUCCESS", b"")
    columns = [("flight_id", "bigint"), ("flight_date", "date")]
    catalog.publish(zone, table, version, columns, "", "flight_date", replaced)


def commit_days(catalog, zone: str, table: str, frame: pd.DataFrame, replaced: list[str],
                location: str | None = None) -> None:
    """Commit `frame` to the Iceberg table `<zone>.<table>` of `catalog` (LocalCatalog or GlueCatalog) as a daily
    Spark job does: created on first use, identity-partitioned by flight_date; the days `replaced` are
    replaced in one snapshot (copy-on-write), other days kept. `location`: the new table's (Glue has no default)."""
    import pyarrow as pa
    from pyiceberg.expressions import In

    from lake_platform.adapters.catalog import LocalCatalog
    from lake_platform.adapters.iceberg import LocalIcebergCatalog

    if isinstance(catalog, LocalCatalog):  # a new lake has no catalog database yet: Spark's first write makes it
        LocalIcebergCatalog(Path(catalog.store.root).resolve()).initialize()
    with catalog.pyiceberg() as iceberg:
        namespace = catalog.database(zone)
        iceberg.create_namespace_if_not_exists(namespace)
        name = f"{namespace}.{table}"
        if iceberg.table_exists(name):  # the table's types (an empty frame's object columns have none)
            schema = iceberg.load_table(name).schema().as_arrow()
            schema = pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in schema])
            rows = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        else:
            rows = pa.Table.from_pandas(frame, preserve_index=False)
            # Spark writes microseconds; pandas' nanoseconds are not an Iceberg type.
            rows = rows.cast(pa.schema([
                f.with_type(pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f for f in rows.schema
            ]))
            created = iceberg.create_table(name, schema=rows.schema, location=location)
            with created.update_spec() as spec:
                spec.add_identity("flight_date")
        iceberg.load_table(name).overwrite(rows, overwrite_filter=In("flight_date", set(replaced)))
