"""Listing sensors: one per landing source, turning the objects that land under its prefix into runs.

Both deployments list the landing zone through the `store` resource (a directory locally, S3 on AWS),
with the cursor of `cursor.py`. Cost of a tick: reading objects and building run requests grows with
the new objects only. Listing grows with the prefix's size for unordered layouts (S3 returns 1,000 keys
per ListObjectsV2 call: a 10,000-object prefix is 10 calls, cheap at a 30 s interval); for arrival-
ordered layouts (DMS) the listing starts after the last handled key and grows with new objects only.
For O(new) on every layout, use the S3 event notifications sensor (`notifications.py`).
"""

from __future__ import annotations

import dagster as dg

from lake_platform.adapters.storage import ObjectStore
from lake_platform.raw.copy import read_manifest
from lake_platform.sensors.cursor import ListingCursor, ListingLimits, scan
from lake_platform.sensors.requests import run_requests
from lake_platform.sensors.sources import LandingSource

INTERVAL_SECONDS = 30


def raw_baseline(store: ObjectStore, source: LandingSource) -> dict[str, str]:
    """Landing key -> ETag of the objects raw has already copied (its manifest)."""
    current = read_manifest(store, source.name)["current"]
    return {key: entry["etag"] for key, entry in current.items()}


def landing_sensor(
    source: LandingSource,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    limits: ListingLimits = ListingLimits(),
) -> dg.SensorDefinition:
    @dg.sensor(
        name=source.sensor_name,
        target=dg.AssetSelection.assets(*source.selection),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=default_status,
        description=(
            f"New or overwritten objects under `{source.prefix}` ({source.service}) -> a run of "
            + ", ".join(k.to_user_string() for k in source.selection)
            + (" for the days their records touch" if source.contract else "")
            + ". Lists landing with a cursor; on its first tick, objects raw already holds count as done."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, store: ObjectStore):
        cursor = ListingCursor.from_json(context.cursor)
        listing = store.list(source.prefix, start_after=cursor.after) if cursor.after else store.list(source.prefix)
        baseline = raw_baseline(store, source) if context.cursor is None else None
        result = scan(listing, cursor, limits, source.ordered, baseline)
        requests = run_requests(source, result.new, store, context.log)
        if result.deferred:
            context.log.info(f"{result.deferred} more new object(s) left for the next tick")
        next_cursor = result.cursor.to_json()
        if not requests:
            return dg.SensorResult(skip_reason=f"no new object under {source.prefix}", cursor=next_cursor)
        context.log.info(f"{len(result.new)} new object(s) under {source.prefix}: {len(requests)} run(s)")
        return dg.SensorResult(run_requests=requests, cursor=next_cursor)

    return _sensor


def landing_sensors(
    sources: list[LandingSource], default_status: dg.DefaultSensorStatus, limits: ListingLimits = ListingLimits()
) -> list[dg.SensorDefinition]:
    return [landing_sensor(source, default_status, limits) for source in sources]
