"""The warehouse layer: every dbt model as an asset `warehouse/<model>`, its dbt tests as asset checks.

`dbt build` runs models and their tests in dependency order; dagster-dbt turns each test into an
asset check on the model it tests (DagsterDbtTranslatorSettings.enable_asset_checks defaults to
True), so a failing test fails the check and, with severity `error`, blocks the models downstream.
"""

# No `from __future__ import annotations`: dagster reads the `context` annotation at definition time
# and rejects it as a string.
import os
from contextlib import contextmanager

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets

from lake_platform.warehouse.project import DBT_PROJECT, LakeDbtCliResource, require_manifest
from lake_platform.warehouse.translator import LakeDbtTranslator


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


def build_warehouse_assets(target: str, project: DbtProject = DBT_PROJECT) -> dg.AssetsDefinition:
    """The dbt models of `project` as assets running on `target` (`duckdb` or `redshift`)."""

    @dbt_assets(
        manifest=require_manifest(project),
        project=project,
        dagster_dbt_translator=LakeDbtTranslator(target),
        name="warehouse_dbt_models",
    )
    def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: LakeDbtCliResource):
        """Builds the warehouse with dbt: staging views over the lake, then facts, dimensions and marts."""
        # A backfill or the automation sensor may build the dimensions in an earlier run than the facts
        # (the facts wait for the daily partitions). dbt's default (eager) indirect selection would then run
        # the facts' relationship tests with the dimensions, before the fact tables exist; cautious runs a
        # test only when all the models it reads are selected. Dagster's own override (empty) still wins.
        with _env_default("DBT_INDIRECT_SELECTION", "cautious"):
            yield from dbt.cli(["build", *dbt.lake_vars()], context=context).stream()

    return warehouse_dbt_models
