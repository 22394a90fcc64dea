"""The warehouse layer's resources (`dbt`, `warehouse`) for each deployment, with the same keys."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from lake_platform.adapters.warehouse import DuckDBWarehouse, RedshiftWarehouse, Warehouse
from lake_platform.settings import Deployment
from lake_platform.warehouse.project import LakeDbtCliResource, dbt_resource, warehouse_target


def duckdb_path(lake_root: str | Path) -> Path:
    """Where dbt-duckdb keeps the local warehouse (profiles.yml: `<lake_root>/warehouse/lake.duckdb`)."""
    return Path(lake_root) / "warehouse" / "lake.duckdb"


def warehouse_resources(deployment: Deployment, lake_root: str | Path) -> dict[str, dg.ConfigurableResource]:
    """`dbt` runs the project on the deployment's target; `warehouse` queries and exports its tables.

    AWS names come from the environment at run time (LAKE_REDSHIFT_WORKGROUP, LAKE_REDSHIFT_DATABASE,
    LAKE_REDSHIFT_UNLOAD_ROLE, LAKE_KMS_KEY_ID, LAKE_AWS_REGION); building these needs no credentials or network.
    """
    dbt: LakeDbtCliResource = dbt_resource(warehouse_target(deployment), lake_root)
    warehouse: Warehouse
    if deployment == "local":
        warehouse = DuckDBWarehouse(path=str(duckdb_path(lake_root)))
    else:
        warehouse = RedshiftWarehouse(
            workgroup=dg.EnvVar("LAKE_REDSHIFT_WORKGROUP"),
            database=dg.EnvVar("LAKE_REDSHIFT_DATABASE"),
            iam_role=dg.EnvVar("LAKE_REDSHIFT_UNLOAD_ROLE"),
            kms_key_id=dg.EnvVar("LAKE_KMS_KEY_ID"),
            region_name=dg.EnvVar("LAKE_AWS_REGION"),
        )
    return {"dbt": dbt, "warehouse": warehouse}
