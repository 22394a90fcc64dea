"""The warehouse layer: every dbt model as an asset `warehouse/<model>`, its dbt tests as asset checks.

`dbt build` runs models and their tests in dependency order; dagster-dbt turns each test into an
asset check on the model it tests (DagsterDbtTranslatorSettings.enable_asset_checks defaults to
True), so a failing test fails the check and, with severity `error`, blocks the models downstream.

The project is three assets definitions, in dependency order (each one dbt call per run):
- `warehouse_reference` (unpartitioned): the staging views (over the reference tables and over the daily
  lake tables: a view has no days, it always reads its table's current data) and the dimensions;
- `warehouse_daily` (daily partitions, tag `daily`): the facts `fct_flights`, `fct_route_performance_daily`,
  incremental by day: a run over a range of days is one dbt call that replaces exactly those days
  (`--vars first_day/last_day`, macros/lake_days.sql). Each fact also depends, day for day, on the lake
  table under its staging view (translator.py), which is how it follows that table's days;
- `warehouse_aggregates` (unpartitioned, tag `aggregate`): marts over all days, refreshed once after any
  day changed.
Three, not two: the facts depend on the dimensions (their relationship tests) and the monthly mart on both,
so one unpartitioned definition holding dimensions and marts would form a cycle with the daily one.
"""

# No `from __future__ import annotations`: dagster reads the `context` annotation at definition time
# and rejects it as a string.
import os
from contextlib import contextmanager

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets

from lake_platform import partitions
from lake_platform.warehouse.project import DBT_PROJECT, LakeDbtCliResource, require_manifest
from lake_platform.warehouse.translator import DAILY_TAG, LakeDbtTranslator

DAILY_SELECT = f"tag:{DAILY_TAG}"
AGGREGATE_SELECT = "tag:aggregate"


@contextmanager
def _env_default(name: str, value: str):
    """`name` set to `value` unless already set, for the duration (dagster-dbt reads it from the process
    environment); restored after, so nothing else in the process (tests, other steps) inherits it."""
    previous = os.environ.get(name)
    os.environ.setdefault(name, value)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)


def _build(context: dg.AssetExecutionContext, dbt: LakeDbtCliResource, days: tuple[str, str] | None = None):
    # Indirect selection `buildable`: a test runs when every model it reads is selected or upstream of the
    # selection. The facts' relationship tests (facts + dimensions, upstream) run with the facts; the monthly
    # mart's reconciliation test (mart + fct_flights, upstream) with the mart; no test runs in a call that
    # does not build one of its models, so none reads a table that may not exist yet. Dagster's own override
    # (`empty`, when it selects checks by name) still wins.
    with _env_default("DBT_INDIRECT_SELECTION", "buildable"):
        yield from dbt.cli(["build", *dbt.lake_vars(days)], context=context).stream()


def build_warehouse_assets(target: str, project: DbtProject = DBT_PROJECT) -> list[dg.AssetsDefinition]:
    """The dbt models of `project` as assets running on `target` (`duckdb` or `redshift`)."""
    manifest = require_manifest(project)
    translator = LakeDbtTranslator(target)

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name="warehouse_reference",
        exclude=f"{DAILY_SELECT} {AGGREGATE_SELECT}",
    )
    def warehouse_reference(context: dg.AssetExecutionContext, dbt: LakeDbtCliResource):
        """Builds the staging views and the dimensions."""
        yield from _build(context, dbt)

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name="warehouse_daily",
        select=DAILY_SELECT,
        partitions_def=partitions.DAILY,
        backfill_policy=partitions.SINGLE_RUN,
    )
    def warehouse_daily(context: dg.AssetExecutionContext, dbt: LakeDbtCliResource):
        """Builds the daily facts for the run's days (one day, or a backfill's whole range in one dbt call)."""
        window = context.partition_key_range
        yield from _build(context, dbt, (window.start, window.end))

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name="warehouse_aggregates",
        select=AGGREGATE_SELECT,
    )
    def warehouse_aggregates(context: dg.AssetExecutionContext, dbt: LakeDbtCliResource):
        """Builds the marts that aggregate every day (the monthly on-time mart)."""
        yield from _build(context, dbt)

    return [warehouse_reference, warehouse_daily, warehouse_aggregates]
