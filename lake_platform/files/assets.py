"""Shared files (EFS): the daily route performance as one CSV per day, for consumers that read files.

(No `from __future__ import annotations`: dagster reads the `context` annotation at definition time.)
"""

import dagster as dg

from lake_platform import partitions
from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.shared_files import SharedFiles
from lake_platform.adapters.storage import ObjectStore

ROUTE_PERFORMANCE = dg.AssetKey(["curated", "route_performance_daily"])
FOLDER = "route_performance_daily"
DATE = "flight_date"
# A day's rows are one per route: ordered by the route, then by the other columns (a stable order whatever the
# order of the table's data files).
ROW_ORDER = ["origin", "dest"]
# Integer columns are written as integers even when they hold nulls (pandas would read them as floats: `3.0`).
INTEGER_TYPES = frozenset({"tinyint", "smallint", "int", "integer", "bigint", "long"})


def day_file(day: str) -> str:
    """The file of a day, relative to the shared files root: `route_performance_daily/<YYYY-MM-DD>.csv`."""
    return f"{FOLDER}/{day}.csv"


def route_performance_csvs(store: ObjectStore, catalog: Catalog, days: list[str]) -> dict[str, tuple[bytes, int]]:
    """{day: (CSV bytes, rows)} of `days` of `curated.route_performance_daily`: a header row of the table's
    columns in its schema order, then the day's rows in ROW_ORDER; UTF-8, `\\n` line ends, no index, empty fields
    for nulls, dates as YYYY-MM-DD, floats as Python's shortest exact form. A day without rows is the header
    alone."""
    import pandas as pd  # not loaded with the code location

    from lake_platform.ml.tables import read_partitions

    zone, table = ROUTE_PERFORMANCE.path
    frame = read_partitions(store, catalog, zone, table, days)  # a clear LookupError before the table exists
    types = dict(catalog.get(zone, table).columns)
    columns = list(types)
    for column in columns:
        if types[column] in INTEGER_TYPES:
            frame[column] = frame[column].astype("Int64")
    order = ROW_ORDER + [c for c in columns if c not in ROW_ORDER]
    frame = frame[columns].sort_values(order, kind="stable", na_position="last")
    frame_days = pd.to_datetime(frame[DATE]).dt.strftime("%Y-%m-%d")
    out = {}
    for day in days:
        rows = frame[frame_days == day]
        out[day] = (rows.to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%d").encode(), len(rows))
    return out


@dg.asset(
    key=["files", "route_performance_daily"],
    deps=[ROUTE_PERFORMANCE],
    group_name="files",
    kinds={"efs", "csv"},
    automation_condition=partitions.ON_UPSTREAM_UPDATE,
    partitions_def=partitions.DAILY,
    backfill_policy=partitions.SINGLE_RUN,
)
def files_route_performance_daily(
    context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, shared_files: SharedFiles
) -> dg.MaterializeResult:
    """The run's days of `curated.route_performance_daily`, one CSV per day at
    `route_performance_daily/<YYYY-MM-DD>.csv` of the shared files (EFS on AWS; locally <LAKE_ROOT>/shared).
    Each file is replaced atomically (a reader sees the previous file or the new one, never a partial one) with
    exactly the day's rows: re-materializing a day rewrites its file from the table as it is then. A day with no
    rows gets a header-only file, not none: consumers can tell "published, no flights" from "not published yet".
    Files of other days are not touched."""
    days = context.partition_keys
    first, last = days[0], days[-1]
    files, rows_in_run, empty_days = {}, 0, 0
    for day, (data, rows) in route_performance_csvs(store, catalog, days).items():
        written = shared_files.write_bytes(day_file(day), data)
        files[day] = {"path": str(written.path), "rows": rows, "bytes": written.size, "sha256": written.sha256}
        rows_in_run += rows
        empty_days += rows == 0
    context.log.info(
        f"{shared_files.describe()}, {first} .. {last}: wrote {len(files)} files, {rows_in_run} rows"
        f" ({empty_days} days without rows: header only)"
    )
    metadata = {
        **partitions.row_count(context, rows_in_run),
        "days": f"{first} .. {last} ({len(days)} days)",
        "folder": dg.MetadataValue.path(str(shared_files.path(FOLDER))),
        "files_written": dg.MetadataValue.int(len(files)),
        "header_only_files": dg.MetadataValue.int(empty_days),
        "files": dg.MetadataValue.json(files),
    }
    if len(days) == 1:
        (only,) = files.values()
        metadata |= {
            "path": dg.MetadataValue.path(only["path"]),
            "bytes": dg.MetadataValue.int(only["bytes"]),
            "sha256": dg.MetadataValue.text(only["sha256"]),
        }
    return dg.MaterializeResult(metadata=metadata)


files_assets = [files_route_performance_daily]
