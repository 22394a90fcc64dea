"""Ingest from the maintenance file share, copied into landing by AWS DataSync."""

import dagster as dg

from lake_platform.adapters.datasync import SHARE_PREFIX, FileShareSync
from lake_platform.adapters.storage import ObjectStore
from lake_platform.ingest.assets import landing_metadata


@dg.asset(key=["landing", "share"], group_name="ingest", kinds={"datasync", "s3"})
def landing_share(context: dg.AssetExecutionContext, datasync: FileShareSync, store: ObjectStore):
    """Maintenance documents, engine photos and cockpit audio from the file share, copied by an AWS DataSync
    task execution: only new or changed files, each verified by checksum; files deleted from the share stay."""
    report = datasync.sync(context, store)
    return dg.MaterializeResult(metadata=landing_metadata(report, store, SHARE_PREFIX))
