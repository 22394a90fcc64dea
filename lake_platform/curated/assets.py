"""Curated (Spark on EMR Serverless): datasets built from the clean tables, as Apache Iceberg tables.

A curated job reads the clean tables' days of its run and commits its own table (spark_jobs/lake_tables.py):
the run's days are replaced in one commit (copy-on-write), other days are kept, and readers see the previous
snapshot or the new one. The materialization records the snapshot id it committed.
"""

import dagster as dg

from lake_platform import partitions
from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.spark import SparkJobs

KINDS = {"spark", "emrserverless", "iceberg"}
PARTITION_COLUMN = "flight_date"

PARTITIONED = dict(partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN)


def run_curated_job(context, catalog, emr, table: str, job: str, inputs: dict[str, str], description: str):
    """Run the job over this run's days (daily partitions by flight_date); it replaces those days of the table."""
    days = context.partition_keys
    params = {k: catalog.spark_input("clean", v, days) for k, v in inputs.items()}
    identifier = catalog.iceberg_table("curated", table)
    params["output"] = {
        "iceberg": identifier,
        "partition_column": PARTITION_COLUMN,
        "replace": {"first": days[0], "last": days[-1]},
        "description": description,
    }
    meta = emr.run(context, job, params)
    stats = {k: v for k, v in meta.items() if k not in ("schema", "rows", "snapshot_id")}
    return dg.MaterializeResult(
        metadata={
            **partitions.row_count(context, meta["rows"]),
            **stats,
            "table": identifier,
            "snapshot_id": dg.MetadataValue.text(str(meta["snapshot_id"])),
            "location": f"{identifier} @ snapshot {meta['snapshot_id']}",
            "days": f"{days[0]} .. {days[-1]} ({len(days)})",
            "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in meta["schema"]]),
        }
    )


@dg.asset(
    key=["curated", "flight_features"],
    deps=[dg.AssetKey(["clean", t]) for t in ("flights", "weather", "planes")],
    group_name="curated",
    kinds=KINDS,
    # A day's features keep the plane attributes known when the day was processed (no leak of later
    # registry changes into history): a planes update does not reprocess every day.
    automation_condition=partitions.on_upstream_update(ignore=[dg.AssetKey(["clean", "planes"])]),
    **PARTITIONED,
)
def flight_features(context: dg.AssetExecutionContext, catalog: Catalog, emr: SparkJobs):
    """One row per flight with the weather at its origin airport and scheduled hour, and its plane's
    attributes: the features of the arrival-delay model."""
    return run_curated_job(
        context, catalog, emr, "flight_features", "curated_features",
        {"flights": "flights", "weather": "weather", "planes": "planes"},
        "flights joined with origin weather at the scheduled hour and plane attributes",
    )


@dg.asset(
    key=["curated", "route_performance_daily"],
    deps=[dg.AssetKey(["clean", "flights"])],
    group_name="curated",
    kinds=KINDS,
    automation_condition=partitions.ON_UPSTREAM_UPDATE,
    **PARTITIONED,
)
def route_performance_daily(context: dg.AssetExecutionContext, catalog: Catalog, emr: SparkJobs):
    """Per day and route (origin, destination): flights, cancellations, arrivals, late arrivals
    (> 15 min), on-time rate and mean delays."""
    return run_curated_job(
        context, catalog, emr, "route_performance_daily", "route_performance",
        {"flights": "flights"},
        "daily performance of every route",
    )
