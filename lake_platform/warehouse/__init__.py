"""Warehouse layer: the dbt project as assets (DuckDB locally, Redshift Serverless on AWS)."""

from lake_platform.warehouse.assets import build_warehouse_assets
from lake_platform.warehouse.project import DBT_PROJECT, dbt_resource, warehouse_target
from lake_platform.warehouse.resources import warehouse_resources
from lake_platform.warehouse.translator import LakeDbtTranslator

__all__ = [
    "DBT_PROJECT",
    "LakeDbtTranslator",
    "build_warehouse_assets",
    "dbt_resource",
    "warehouse_resources",
    "warehouse_target",
]
