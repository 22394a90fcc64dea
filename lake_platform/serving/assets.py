"""Serving layer (DynamoDB): the delay predictions as one item per flight, for low-latency lookups.

(No `from __future__ import annotations`: dagster reads the `context` annotation at definition time.)
"""

import dagster as dg

from lake_platform import partitions
from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.serving import KeyValueTable
from lake_platform.adapters.storage import ObjectStore

KEY = "flight_id"
DATE = "flight_date"
PREDICTIONS = dg.AssetKey(["ml", "delay_predictions"])


def prediction_items(store: ObjectStore, catalog: Catalog, days: list[str]) -> list[dict]:
    """The published predictions of `days` as items, one per flight_id (none for a day without predictions)."""
    from lake_platform.ml.tables import read_partitions  # pandas: not loaded with the code location

    frame = read_partitions(store, catalog, *PREDICTIONS.path, days)
    return frame.to_dict(orient="records")


@dg.asset(
    key=["serving", "delay_predictions"],
    deps=[PREDICTIONS],
    group_name="serving",
    kinds={"dynamodb"},
    automation_condition=partitions.ON_UPSTREAM_UPDATE,
    partitions_def=partitions.DAILY,
    backfill_policy=partitions.SINGLE_RUN,
)
def serving_delay_predictions(
    context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, serving: KeyValueTable
) -> dg.MaterializeResult:
    """The run's days of `ml.delay_predictions`, loaded into the serving table (DynamoDB; locally an embedded
    SQLite item store) keyed by flight_id, with flight_date as an ISO date string. A reload of a range of days
    makes those days' items exactly the predictions: same rows for the same predictions, and flights of those
    days no longer predicted are removed. Items of other days are not touched."""
    days = context.partition_keys
    first, last = days[0], days[-1]
    items = prediction_items(store, catalog, days)
    report = serving.replace_range(items, key_name=KEY, first=first, last=last, date_name=DATE)
    context.log.info(
        f"{serving.describe()}, {first} .. {last}: wrote {report.written} items, deleted {report.deleted} stale ones"
    )
    sample = serving.get(items[0][KEY]) if items else None
    metadata = {
        "days": f"{first} .. {last} ({len(days)} days)",
        "items_written": dg.MetadataValue.int(report.written),
        "stale_items_deleted": dg.MetadataValue.int(report.deleted),
        "items_in_range": dg.MetadataValue.int(report.in_range),
        "table": serving.describe(),
        "sample_item": dg.MetadataValue.json(sample or {}),
    }
    if report.total is not None:
        metadata["items_in_table"] = dg.MetadataValue.int(report.total)
    return dg.MaterializeResult(metadata=metadata)


serving_assets = [serving_delay_predictions]
