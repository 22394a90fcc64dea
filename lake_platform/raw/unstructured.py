"""Raw for any kind of object: the file share's documents, photos and audio, and the inventory that
describes every object of the raw zone (README, principle 3)."""

import dagster as dg

from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.datasync import SHARE_PREFIX
from lake_platform.adapters.storage import ObjectStore
from lake_platform.raw.assets import copy_metadata, raw_assets
from lake_platform.raw.copy import copy_to_raw
from lake_platform.raw.inventory import COLUMNS, update_inventory


@dg.asset(key=["raw", "share"], deps=[dg.AssetKey(["landing", "share"])], group_name="raw", kinds={"s3"})
def raw_share(store: ObjectStore) -> dg.MaterializeResult:
    """Immutable copies of every file DataSync landed from the maintenance share (documents, photos,
    audio), by content, with SHA-256 checksums: a file changed on the share gets a new raw copy."""
    report = copy_to_raw(store, "share", SHARE_PREFIX)
    return dg.MaterializeResult(metadata=copy_metadata(store, "share", report))


@dg.asset(
    key=["raw", "object_inventory"],
    deps=[*(a.key for a in raw_assets), raw_share.key],
    group_name="raw",
    kinds={"parquet"},
)
def object_inventory(context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog):
    """One row per object in the raw zone, of every dataset: key, size, SHA-256, content type (by signature,
    then extension) and, per type, image width/height, audio duration and sample rate, PDF pages or text
    lines. Incremental: only objects not yet described are read. Query it as `stg_lake__object_inventory`."""
    report = update_inventory(store, catalog, context.run_id)
    kinds = report.table.group_by("content_type").aggregate([("key", "count")]).to_pylist()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.table.num_rows,
            "objects_inspected": len(report.inspected),
            "version": report.version or "unchanged",
            "location": catalog.location("raw", "object_inventory"),
            "content_types": dg.MetadataValue.md(
                "| content type | objects |\n|---|---|\n"
                + "\n".join(f"| `{k['content_type']}` | {k['key_count']:,} |" for k in kinds)
            ),
            "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in COLUMNS]),
        }
    )
