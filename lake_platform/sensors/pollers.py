"""Ingest pollers: request a landing run when a source system has data that landing does not.

On AWS, DMS replicates continuously and Data Exchange announces new revisions; locally their stand-ins
act only when `landing/flights` or `landing/weather` materializes. These sensors stand in for that push:
- `dms_changes_sensor`: the source database has changes past DMS's position (or no full load yet);
  on AWS, the replication task is stopped and `start_if_stopped` lets a run resume it;
- `data_exchange_revisions_sensor`: the data set has revisions not yet exported to landing.
A poller requests nothing while a run it requested is still queued or in progress, and asks again for
the same pending work only after `RETRY_AFTER_SECONDS` (so a failing ingest is retried, not hammered).
"""

from __future__ import annotations

import hashlib
import json
import time

import dagster as dg

from lake_platform.adapters.ingest import DataExchange, DmsReplication
from lake_platform.adapters.storage import ObjectStore

INTERVAL_SECONDS = 30
RETRY_AFTER_SECONDS = 600
SENSOR_NAME_TAG = "dagster/sensor_name"  # set by Dagster on every run a sensor requests
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def in_flight(instance: dg.DagsterInstance, sensor_name: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: sensor_name}, statuses=IN_FLIGHT), limit=1)
    return bool(runs)


def request_if_pending(
    context: dg.SensorEvaluationContext, sensor_name: str, asset_key: dg.AssetKey, pending: list[str]
) -> dg.SensorResult | dg.SkipReason:
    if not pending:
        return dg.SkipReason("nothing waiting in the source")
    if in_flight(context.instance, sensor_name):
        return dg.SkipReason(f"waiting: {len(pending)} item(s), and a run of {asset_key.to_user_string()} in flight")
    fingerprint = hashlib.sha256("\n".join(pending).encode()).hexdigest()[:16]
    last = json.loads(context.cursor or "{}")
    now = time.time()
    if last.get("fingerprint") == fingerprint and now - last.get("at", 0) < RETRY_AFTER_SECONDS:
        return dg.SkipReason(f"already requested for this work; asking again {RETRY_AFTER_SECONDS} s after")
    context.log.info(f"waiting in the source: {'; '.join(pending[:10])}")
    request = dg.RunRequest(asset_selection=[asset_key], tags={"lake/pending": str(len(pending))})
    return dg.SensorResult(run_requests=[request], cursor=json.dumps({"fingerprint": fingerprint, "at": now}))


LANDING_FLIGHTS = dg.AssetKey(["landing", "flights"])
LANDING_WEATHER = dg.AssetKey(["landing", "weather"])


def dms_changes_sensor(default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    name = "dms_changes_sensor"

    @dg.sensor(
        name=name,
        target=[LANDING_FLIGHTS],
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=default_status,
        description="Materializes landing/flights when the operations database has changes DMS has not replicated.",
    )
    def _sensor(context: dg.SensorEvaluationContext, dms: DmsReplication, store: ObjectStore):
        return request_if_pending(context, name, LANDING_FLIGHTS, dms.pending(store))

    return _sensor


def data_exchange_revisions_sensor(default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    name = "data_exchange_revisions_sensor"

    @dg.sensor(
        name=name,
        target=[LANDING_WEATHER],
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=default_status,
        description="Materializes landing/weather when the weather data set has revisions not exported yet.",
    )
    def _sensor(context: dg.SensorEvaluationContext, data_exchange: DataExchange, store: ObjectStore):
        return request_if_pending(context, name, LANDING_WEATHER, data_exchange.pending(store))

    return _sensor
