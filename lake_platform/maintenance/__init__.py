"""Maintenance: the routine upkeep of the lake's Apache Iceberg tables (expire snapshots, remove orphan files,
compact small files), run daily by a schedule on Glue (locally on the in-process Spark session)."""

from lake_platform.maintenance.assets import (
    MAINTENANCE_KEY,
    MaintenanceConfig,
    iceberg_tables,
    maintenance_assets,
    maintenance_schedule,
)

__all__ = ["MAINTENANCE_KEY", "MaintenanceConfig", "iceberg_tables", "maintenance_assets", "maintenance_schedule"]
