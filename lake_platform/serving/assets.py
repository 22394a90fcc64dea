"""Serving layer (DynamoDB): the delay predictions as one item per flight, for low-latency lookups.

(No `from __future__ import annotations`: dagster reads the `context` annotation at definition time.)
"""

import dagster as dg

from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.serving import KeyValueTable
from lake_platform.adapters.storage import ObjectStore

KEY = "flight_id"


def prediction_items(store: ObjectStore, location: str) -> list[dict]:
    """The published predictions table as items, one per flight_id."""
    from lake_platform.ml.tables import read_table  # pandas: not loaded with the code location

    return read_table(store, location).to_dict(orient="records")


@dg.asset(
    key=["serving", "delay_predictions"],
    deps=[dg.AssetKey(["ml", "delay_predictions"])],
    group_name="serving",
    kinds={"dynamodb"},
)
def serving_delay_predictions(
    context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, serving: KeyValueTable
) -> dg.MaterializeResult:
    """The current `ml.delay_predictions`, loaded into the serving table (DynamoDB; locally an embedded
    SQLite item store) keyed by flight_id. A reload replaces the table's contents: same rows for the same
    predictions, and flights no longer predicted are removed."""
    items = prediction_items(store, catalog.location("ml", "delay_predictions"))
    report = serving.replace_all(items, key_name=KEY)
    context.log.info(f"{serving.describe()}: wrote {report.written} items, deleted {report.deleted} stale ones")
    sample = serving.get(items[0][KEY]) if items else None
    return dg.MaterializeResult(
        metadata={
            "items_written": dg.MetadataValue.int(report.written),
            "stale_items_deleted": dg.MetadataValue.int(report.deleted),
            "items_in_table": dg.MetadataValue.int(report.total),
            "table": serving.describe(),
            "sample_item": dg.MetadataValue.json(sample or {}),
        }
    )


serving_assets = [serving_delay_predictions]
