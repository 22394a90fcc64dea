"""Maintenance of the Iceberg tables (AWS Glue): expire old snapshots, remove orphan files, compact small files.

Every write to an Iceberg table adds a snapshot and, copy-on-write, rewrites whole files: the files a snapshot
replaced stay for time travel until the snapshot is expired; a killed write leaves files no snapshot references
(orphans); appends and merges can leave a partition in many small files. `maintenance/iceberg_tables` runs
Iceberg's own Spark procedures over every table of the Iceberg zones (spark_jobs/maintenance.py), daily at
03:00 UTC (`iceberg_maintenance_schedule`), and records what each table gave back.

It depends on no asset: it maintains whichever tables exist when it runs (none: it says so and succeeds).
"""

from typing import Any

import dagster as dg
from pydantic import Field

from lake_platform.adapters.catalog import ICEBERG_ZONES, Catalog
from lake_platform.adapters.spark import SparkJobs

MAINTENANCE_KEY = dg.AssetKey(["maintenance", "iceberg_tables"])
JOB = "maintenance"
MIN_ORPHAN_AGE_HOURS = 24  # Iceberg's remove_orphan_files refuses less (spark_jobs/maintenance.py)


class MaintenanceConfig(dg.Config):
    """What to keep and what to compact; the defaults are explained in spark_jobs/maintenance.py."""

    retain_days: int = Field(
        default=7, ge=0,
        description="Expire snapshots older than this many days: the time travel and rollback window (and how "
        "long the snapshot ids the clean assets record stay readable).",
    )
    retain_last: int = Field(
        default=5, ge=1,
        description="Keep at least this many of the latest snapshots whatever their age (a table not written "
        "for longer than retain_days keeps its last commits).",
    )
    orphan_age_hours: int = Field(
        default=72, ge=MIN_ORPHAN_AGE_HOURS,
        description="Remove only orphan files last modified longer ago than this: files of a write in flight "
        "are not committed yet and must not be taken for orphans. At least 24 (Iceberg's floor).",
    )
    compact: bool = Field(default=True, description="Compact small data files (rewrite_data_files, binpack).")
    target_file_size_bytes: int = Field(
        default=128 * 1024 * 1024, ge=1024 * 1024,
        description="Size of the compacted files; files under 75% of it count as small.",
    )
    min_input_files: int = Field(
        default=5, ge=2,
        description="Compact a partition only when it holds at least this many small files (or more than a "
        "target file's worth): a day written once per run keeps its single file.",
    )

    def job_params(self, tables: list[str]) -> dict[str, Any]:
        compact = (
            {"target_file_size_bytes": self.target_file_size_bytes, "min_input_files": self.min_input_files}
            if self.compact
            else None
        )
        return {
            "tables": tables,
            "retain_days": self.retain_days,
            "retain_last": self.retain_last,
            "orphan_age_hours": self.orphan_age_hours,
            "compact": compact,
        }


def iceberg_table_names(catalog: Catalog) -> list[str]:
    """The Spark identifiers of every table of every Iceberg zone, zone by zone, in name order."""
    return [
        catalog.iceberg_table(zone, info.name)
        for zone in sorted(ICEBERG_ZONES)
        for info in sorted(catalog.tables(zone), key=lambda i: i.name)
    ]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def report_markdown(report: dict[str, Any]) -> str:
    """A row per table and a totals row."""
    header = (
        "| table | status | snapshots expired | data files deleted | manifests / lists deleted | orphan files removed "
        "| files compacted | data files | rows | seconds |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    rows = []
    for r in report["tables"]:
        if r["status"] == "ok":
            status = "ok"
        else:
            status = "**FAILED** " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items()).replace("|", "\\|")
        files = f"{r['data_files_before']} → {r['data_files_after']}" if "data_files_after" in r else ""
        rows.append(
            f"| `{r['table']}` | {status} | {r['snapshots_expired']} | {r['data_files_deleted']} "
            f"| {r['manifest_files_deleted']} / {r['manifest_lists_deleted']} | {r['orphan_files_removed']} "
            f"| {r['data_files_rewritten']} → {r['data_files_added']} ({_size(r['bytes_rewritten'])}) | {files} "
            f"| {r.get('rows_after', '')} | {r.get('seconds', '')} |"
        )
    t = report["totals"]
    rows.append(
        f"| **total: {t['tables']} tables** | {t['tables'] - t['tables_failed']} ok | **{t['snapshots_expired']}** "
        f"| **{t['data_files_deleted']}** | **{t['manifest_files_deleted']} / {t['manifest_lists_deleted']}** "
        f"| **{t['orphan_files_removed']}** | **{t['data_files_rewritten']} → {t['data_files_added']}** "
        f"({_size(t['bytes_rewritten'])}) | | | |"
    )
    return "\n".join([header, *rows])


def report_metadata(report: dict[str, Any]) -> dict[str, Any]:
    totals = report["totals"]
    orphans = {r["table"]: r["orphan_files"] for r in report["tables"] if r["orphan_files"]}
    return {
        "tables": dg.MetadataValue.int(totals["tables"]),
        "tables_failed": dg.MetadataValue.int(totals["tables_failed"]),
        "report": dg.MetadataValue.md(report_markdown(report)),
        # The totals as numbers, which the UI plots across materializations.
        "snapshots_expired": dg.MetadataValue.int(totals["snapshots_expired"]),
        "data_files_deleted": dg.MetadataValue.int(totals["data_files_deleted"]),
        "manifest_files_deleted": dg.MetadataValue.int(totals["manifest_files_deleted"]),
        "manifest_lists_deleted": dg.MetadataValue.int(totals["manifest_lists_deleted"]),
        "orphan_files_removed": dg.MetadataValue.int(totals["orphan_files_removed"]),
        "data_files_rewritten": dg.MetadataValue.int(totals["data_files_rewritten"]),
        "data_files_added": dg.MetadataValue.int(totals["data_files_added"]),
        "bytes_rewritten": dg.MetadataValue.int(totals["bytes_rewritten"]),
        "failed_data_files": dg.MetadataValue.int(totals["failed_data_files"]),
        **({"orphan_files": dg.MetadataValue.json(orphans)} if orphans else {}),
        "per_table": dg.MetadataValue.json(report["tables"]),
        "settings": dg.MetadataValue.json(report["settings"]),
    }


@dg.asset(
    key=MAINTENANCE_KEY,
    group_name="maintenance",
    kinds={"iceberg", "spark", "glue"},
    description="Daily upkeep of every Iceberg table (clean, quarantine): expire snapshots older than retain_days "
    "(keeping the last retain_last), remove orphan files older than orphan_age_hours, compact partitions of many "
    "small files. The report lists what each table gave back.",
)
def iceberg_tables(
    context: dg.AssetExecutionContext, config: MaintenanceConfig, catalog: Catalog, glue: SparkJobs
) -> dg.MaterializeResult:
    tables = iceberg_table_names(catalog)
    databases = ", ".join(catalog.database(z) for z in sorted(ICEBERG_ZONES))
    if not tables:
        context.log.info(f"no Iceberg tables in {databases}: nothing to maintain")
        return dg.MaterializeResult(
            metadata={
                "tables": dg.MetadataValue.int(0),
                "report": dg.MetadataValue.md(f"No Iceberg tables in {databases} yet: nothing to maintain."),
            }
        )
    context.log.info(f"maintaining {len(tables)} Iceberg tables: {', '.join(tables)}")
    try:
        report = glue.run(context, JOB, config.job_params(tables))
    except Exception as error:
        # Locally the job's MaintenanceFailed carries the whole report: attach it to the failure, so the UI
        # shows what each table did beside which ones failed. (On Glue the job run's error names the tables.)
        partial = getattr(error, "report", None)
        if isinstance(partial, dict):
            raise dg.Failure(description=str(error), metadata=report_metadata(partial)) from error
        raise
    return dg.MaterializeResult(metadata=report_metadata(report))


def maintenance_schedule(running: bool) -> dg.ScheduleDefinition:
    """Daily at 03:00 UTC. Its default status follows the other schedules and sensors
    (definitions.py `running`: on locally, off on AWS until an operator turns it on)."""
    return dg.ScheduleDefinition(
        name="iceberg_maintenance_schedule",
        target=dg.AssetSelection.assets(MAINTENANCE_KEY),
        cron_schedule="0 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description="Expire snapshots, remove orphan files and compact small files of every Iceberg table.",
    )


maintenance_assets = [iceberg_tables]
