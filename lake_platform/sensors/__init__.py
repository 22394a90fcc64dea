"""Sensors: new data in landing becomes runs of raw and clean, partition by partition.

- one listing sensor per landing source (`<dataset>_landing_sensor`, see `landing.py`), in both deployments;
- `landing_notifications_sensor` (AWS): the same runs from S3 event notifications read from SQS;
- `dms_changes_sensor`, `data_exchange_revisions_sensor`: ingest pollers that materialize landing/flights
  and landing/weather when the source systems have new data (see `pollers.py`).

Locally they start RUNNING: they list a directory every 30 s, cost nothing, and are how `lake simulate`
shows new days flowing through (runs queue one at a time, dagster.yaml's max_concurrent_runs). On AWS
they start STOPPED: an operator picks listing or notifications and turns them on (both would double-run).
"""

from __future__ import annotations

import dagster as dg

from lake_platform.sensors.landing import landing_sensors
from lake_platform.sensors.notifications import QueueSettings, notification_sensor
from lake_platform.sensors.pollers import data_exchange_revisions_sensor, dms_changes_sensor
from lake_platform.sensors.sources import landing_sources


def sensors_for(deployment: str, running: bool | None = None) -> list[dg.SensorDefinition]:
    """`running`: the sensors' default status (settings' LAKE_AUTOMATION); default: running locally only."""
    local = deployment == "local"
    running = local if running is None else running
    status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    sources = landing_sources()
    sensors = [*landing_sensors(sources, status), dms_changes_sensor(status), data_exchange_revisions_sensor(status)]
    if not local:
        queue = QueueSettings(queue_url=dg.EnvVar("LAKE_LANDING_QUEUE_URL"), region_name=dg.EnvVar("LAKE_AWS_REGION"))
        sensors.append(notification_sensor(queue, sources, status))
    return sensors
