"""Curated (Spark on EMR Serverless): datasets built from the clean tables."""

import dagster as dg

from lake_platform import partitions
from lake_platform.adapters.catalog import Catalog, new_version, version_key
from lake_platform.adapters.spark import SparkJobs
from lake_platform.adapters.storage import ObjectStore

KINDS = {"spark", "emrserverless", "parquet"}


PARTITIONED = dict(partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN)


def run_curated_job(context, store, catalog, emr, table: str, job: str, inputs: dict[str, str], description: str):
    """Run the job over this run's days (daily partitions by flight_date) and publish those days."""
    version = new_version(context.run_id)
    days = context.partition_keys
    params = {k: catalog.spark_input("clean", v, days) for k, v in inputs.items()}
    params["output"] = store.uri(version_key("curated", table, version))
    meta = emr.run(context, job, params)
    info = catalog.publish(
        "curated", table, version, [tuple(c) for c in meta["schema"]], description, "flight_date", days
    )
    stats = {k: v for k, v in meta.items() if k not in ("schema", "rows")}
    return dg.MaterializeResult(
        metadata={
            **partitions.row_count(context, meta["rows"]),
            **stats,
            "version": version,
            "location": info.location,
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
def flight_features(context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, emr: SparkJobs):
    """One row per flight with the weather at its origin airport and scheduled hour, and its plane's
    attributes: the features of the arrival-delay model."""
    return run_curated_job(
        context, store, catalog, emr, "flight_features", "curated_features",
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
def route_performance_daily(context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, emr: SparkJobs):
    """Per day and route (origin, destination): flights, cancellations, arrivals, late arrivals
    (> 15 min), on-time rate and mean delays."""
    return run_curated_job(
        context, store, catalog, emr, "route_performance_daily", "route_performance",
        {"flights": "flights"},
        "daily performance of every route",
    )
