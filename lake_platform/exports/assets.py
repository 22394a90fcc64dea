"""Exports zone: datasets for consumers outside the platform, unloaded from the warehouse to S3.

(No `from __future__ import annotations`: dagster reads the `context` annotation at definition time.)
"""

import dagster as dg

from lake_platform.adapters.catalog import Catalog, new_version
from lake_platform.adapters.storage import ObjectStore
from lake_platform.adapters.warehouse import Warehouse
from lake_platform.exports.publish import export_table

CARRIER_ONTIME_MART = dg.AssetKey(["warehouse", "mart_carrier_ontime_monthly"])


def build_export_assets(warehouse_kind: str) -> list[dg.AssetsDefinition]:
    """The export assets; `warehouse_kind` (`duckdb` or `redshift`) is the engine that unloads them."""

    @dg.asset(
        key=["exports", "carrier_ontime_monthly"],
        group_name="exports",
        kinds={"s3", warehouse_kind},
        deps=[CARRIER_ONTIME_MART],
    )
    def carrier_ontime_monthly(
        context: dg.AssetExecutionContext, warehouse: Warehouse, store: ObjectStore, catalog: Catalog
    ) -> dg.MaterializeResult:
        """Monthly on-time performance per carrier as Parquet in the exports zone (table
        `exports.carrier_ontime_monthly`), for partners and BI tools outside the platform.
        Each materialization is a new immutable version; the table switches to it in one step."""
        published = export_table(
            warehouse,
            store,
            catalog,
            table="mart_carrier_ontime_monthly",
            name="carrier_ontime_monthly",
            version=new_version(context.run_id),
            order_by="carrier, year, month",
            description="On-time performance per carrier and month (exported from the warehouse).",
        )
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(published["rows"]),
                "dagster/row_count": dg.MetadataValue.int(published["rows"]),
                "files": dg.MetadataValue.int(published["files"]),
                "location": dg.MetadataValue.path(published["location"]),
                "version": published["version"],
                "preview": dg.MetadataValue.md(published["preview"]),
            }
        )

    return [carrier_ontime_monthly]
