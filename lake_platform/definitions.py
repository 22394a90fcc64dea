"""The lake_platform code location: the whole platform, one `Definitions`.

ingest -> raw -> clean (Glue) -> curated (EMR Serverless) -> warehouse (dbt) -> ml (SageMaker)
-> serving (DynamoDB) / exports (S3) / files (EFS). `LAKE_ENV` picks the resources; the graph is the same.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from lake_platform import partitions, settings
from lake_platform.clean.assets import clean_assets
from lake_platform.curated.assets import flight_features, route_performance_daily
from lake_platform.exports import build_export_assets
from lake_platform.files.assets import files_assets
from lake_platform.ml.assets import ml_assets
from lake_platform.serving.assets import serving_assets
from lake_platform.ingest.assets import landing_flights, landing_reference, landing_weather
from lake_platform.ingest.share import landing_share
from lake_platform.maintenance import maintenance_assets, maintenance_schedule
from lake_platform.raw.assets import raw_assets
from lake_platform.raw.unstructured import object_inventory, raw_share
from lake_platform.resources import resources_for
from lake_platform.sensors import sensors_for
from lake_platform.warehouse import build_warehouse_assets, warehouse_target

materialize_everything = dg.define_asset_job(
    "materialize_everything",
    # Table maintenance keeps the lake, it does not build it: its daily schedule runs it.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("maintenance"),
    description="Every asset of the lake but its maintenance, in dependency order: what `make run` and `lake run` "
    "execute.",
)


# Retrain on a schedule, not after every new day: a week of new days is what moves the model.
RETRAIN = (dg.AutomationCondition.cron_tick_passed("0 4 * * 1") & ~dg.AutomationCondition.in_progress()).with_label(
    "weekly retrain, Mondays 04:00"
)


def with_automation_conditions(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Declarative automation downstream of the sensors (which request raw + clean for the days that new data
    touches):
    - a daily-partitioned asset runs a day when that day of a daily dependency changed
      (`partitions.on_upstream_update`); its unpartitioned dependencies (reference data, dimensions, the model)
      are read as of the day's processing and do not rerun history when they change. An asset that sets its
      own condition keeps it.
    - an unpartitioned asset below daily ones (aggregates: the monthly mart, its export, the object inventory;
      the staging views, re-created and re-tested over their changed tables)
      refreshes once after any upstream day or dependency changed, once its unpartitioned dependencies exist
      (no predictions before a first model); it cannot wait for every day of a daily dependency, most of which
      have no data and never will.
    - the model retrains weekly (RETRAIN).
    Assets with no dependencies in the lake (landing) are left to the sensors and schedules.
    """
    unpartitioned = dg.AssetSelection.assets(*[key for a in assets if a.partitions_def is None for key in a.keys])
    daily = partitions.on_upstream_update(ignore=unpartitioned)
    follow = partitions.AFTER_ANY_UPSTREAM_DAY & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.missing()
    ).allow(unpartitioned)
    follow = follow.with_label("after any upstream day, once its unpartitioned dependencies exist")
    derived_groups = {"curated", "warehouse", "ml", "serving", "exports", "files"}

    def condition(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key == dg.AssetKey(["ml", "delay_model"]):
            return spec.replace_attributes(automation_condition=RETRAIN)
        if spec.automation_condition is not None:
            return spec
        if spec.group_name in derived_groups or spec.key == dg.AssetKey(["raw", "object_inventory"]):
            return spec.replace_attributes(automation_condition=daily if spec.partitions_def else follow)
        return spec

    return dg.map_asset_specs(condition, assets)


def automation_sensor(running: bool) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions above. Locally it starts RUNNING with the landing sensors, so a
    `lake simulate` day flows through `dagster dev` on its own; on AWS an operator turns it on."""
    return dg.AutomationConditionSensorDefinition(
        "lake_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=30,
    )


def share_sync_schedule(running: bool) -> dg.ScheduleDefinition:
    """DataSync tasks run on a schedule (a share has no change events): hourly, like a DataSync task schedule.
    What it lands is picked up by the share's landing sensor."""
    return dg.ScheduleDefinition(
        name="share_sync_hourly",
        target=dg.AssetSelection.assets(["landing", "share"]),
        cron_schedule="0 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
    )


def build_definitions(deployment: str, lake_root: Path, automation: bool | None = None) -> dg.Definitions:
    """`automation`: whether sensors, automation and schedule start running (default: locally yes)."""
    running = deployment == "local" if automation is None else automation
    target = warehouse_target(deployment)
    assets = [
        landing_flights,
        landing_weather,
        landing_reference,
        landing_share,
        *raw_assets,
        raw_share,
        object_inventory,
        *clean_assets,
        flight_features,
        route_performance_daily,
        *build_warehouse_assets(target),
        *build_export_assets(target),
        *ml_assets,
        *serving_assets,
        *files_assets,
        *maintenance_assets,
    ]
    return dg.Definitions(
        assets=with_automation_conditions(assets),
        jobs=[materialize_everything],
        schedules=[share_sync_schedule(running), maintenance_schedule(running)],
        sensors=[*sensors_for(deployment, running), automation_sensor(running)],
        resources=resources_for(deployment, lake_root),
        # Local: every step in one process, so the SparkSession (a 5-10 s JVM start) is shared and steps
        # cost ~0.2 s instead of ~4.5 s each under the multiprocess executor (measured; see README).
        executor=dg.in_process_executor if deployment == "local" else dg.multiprocess_executor,
    )


_settings = settings.current()
defs = build_definitions(_settings.deployment, _settings.lake_root, _settings.automation)
