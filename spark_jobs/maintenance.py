"""Glue job: routine maintenance of the lake's Apache Iceberg tables, with Iceberg's own Spark procedures.

For each table, in this order:
1. compact (`rewrite_data_files`, binpack): files smaller than 75% of the target size are rewritten into files of
   about the target size, only in a partition (a file group) holding at least `min_input_files` of them, or
   more than a target's worth; a partition written once per run (one file a day) is left as it is. Partial
   progress is on: the rewrite commits file groups in several commits, so a concurrent write that conflicts
   with one group fails that group only (reported as `failed_data_files`, retried on the next run).
2. expire snapshots (`expire_snapshots`) older than `retain_days`, keeping at least the last `retain_last`
   of the current snapshot's history whatever their age, and delete the data, manifest and manifest-list files
   only they referenced. It runs after the compaction, so the small files a compaction replaced are released
   as soon as their snapshots age out.
3. remove orphan files (`remove_orphan_files`): files under the table's location that no snapshot or metadata
   file references (leftovers of failed or killed writes), only those last modified more than
   `orphan_age_hours` ago: a write in flight has written files it has not committed yet, and they must not
   be taken for orphans. Paths whose scheme or authority differ from the metadata's fail the table
   (Iceberg's prefix_mismatch_mode ERROR), rather than risk deleting live files.

params:
  tables            ["<catalog>.<database>.<table>", ...]: the Spark identifiers of the tables
  retain_days       7: a week of time travel and rollback (and of the snapshot ids materializations record)
  retain_last       5: the last five commits stay even on a table not written for more than retain_days
  orphan_age_hours  72 (Iceberg's own default, 3 days): far longer than any write (a Glue job times out after
                    60 min) and leaves a failed job's files for an operator to look at; at least 24, the floor
                    Iceberg's remove_orphan_files procedure itself enforces (1.7: "Cannot remove orphan files with
                    an interval less than 24 hours"), checked here before any table is touched
  compact           {"target_file_size_bytes": 128 MiB, "min_input_files": 5}, or null to skip compaction
                    (128 MiB: a split of Athena, Redshift Spectrum and Spark reads; Iceberg's min-input-files
                    default 5)

Returns per-table figures and their totals. A table that fails (any step) is reported with its error and the
others are still maintained; the job then raises `MaintenanceFailed` naming the failed tables.
Only pyspark and the standard library: the file is shipped to Glue as it is.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

DEFAULTS = {
    "retain_days": 7,
    "retain_last": 5,
    "orphan_age_hours": 72,
    "compact": {"target_file_size_bytes": 128 * 1024 * 1024, "min_input_files": 5},
}
# Iceberg's remove_orphan_files procedure refuses a shorter interval: files of a write in flight could be taken
# for orphans (RemoveOrphanFilesProcedure, 1.7.1). Checked up front, so a bad setting fails before any table.
MIN_ORPHAN_AGE_HOURS = 24
ORPHAN_SAMPLE = 20  # orphan paths listed per table in the report (the count is exact)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){2}$")

# Figures of a table that add up into the totals.
FIGURES = (
    "snapshots_expired",
    "data_files_deleted",
    "delete_files_deleted",
    "manifest_files_deleted",
    "manifest_lists_deleted",
    "orphan_files_removed",
    "data_files_rewritten",
    "data_files_added",
    "bytes_rewritten",
    "failed_data_files",
)


class MaintenanceFailed(RuntimeError):
    """Some tables failed; `report` is what run() would have returned (every table's figures and errors)."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def settings(params: dict[str, Any]) -> dict[str, Any]:
    """The params with the defaults filled in, checked."""
    out = {key: params.get(key, default) for key, default in DEFAULTS.items()}
    if "compact" in params and params["compact"] is None:
        out["compact"] = None
    elif out["compact"] is not None:
        out["compact"] = {**DEFAULTS["compact"], **out["compact"]}
        if int(out["compact"]["min_input_files"]) < 1 or int(out["compact"]["target_file_size_bytes"]) < 1:
            raise ValueError(f"compact: min_input_files and target_file_size_bytes must be positive: {out['compact']}")
    if float(out["retain_days"]) < 0:
        raise ValueError(f"retain_days must be >= 0, not {out['retain_days']}")
    if int(out["retain_last"]) < 1:
        raise ValueError(f"retain_last must be >= 1 (the current snapshot is always kept), not {out['retain_last']}")
    if float(out["orphan_age_hours"]) < MIN_ORPHAN_AGE_HOURS:
        raise ValueError(
            f"orphan_age_hours must be >= {MIN_ORPHAN_AGE_HOURS}, not {out['orphan_age_hours']}: younger files "
            "may belong to a write still in flight"
        )
    return out


def timestamp(moment: datetime) -> str:
    """A Spark TIMESTAMP literal for an instant, with its offset: independent of the session's time zone."""
    return f"TIMESTAMP '{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S.%f}+00:00'"


def split(identifier: str) -> tuple[str, str]:
    """`catalog.database.table` -> (catalog, `database.table`): a procedure runs in the table's catalog."""
    if not IDENTIFIER.match(identifier):
        raise ValueError(f"{identifier!r} is not a <catalog>.<database>.<table> identifier")
    catalog, name = identifier.split(".", 1)
    return catalog, name


def state(spark, identifier: str) -> dict[str, int]:
    """Snapshots, and the current snapshot's data files, bytes and rows (from Iceberg's metadata tables)."""
    snapshots = spark.sql(f"select count(*) from {identifier}.snapshots").first()[0]
    files = spark.sql(
        f"select count(*), coalesce(sum(file_size_in_bytes), 0), coalesce(sum(record_count), 0) "
        f"from {identifier}.files where content = 0"
    ).first()
    return {"snapshots": int(snapshots), "data_files": int(files[0]), "bytes": int(files[1]), "rows": int(files[2])}


def compact(spark, catalog: str, name: str, options: dict[str, Any]) -> dict[str, int]:
    opts = {
        "target-file-size-bytes": int(options["target_file_size_bytes"]),
        "min-input-files": int(options["min_input_files"]),
        "partial-progress.enabled": "true",
    }
    literal = ", ".join(f"'{k}', '{v}'" for k, v in opts.items())
    row = spark.sql(
        f"CALL {catalog}.system.rewrite_data_files(table => '{name}', strategy => 'binpack', options => map({literal}))"
    ).first()
    return {
        "data_files_rewritten": int(row["rewritten_data_files_count"]),
        "data_files_added": int(row["added_data_files_count"]),
        "bytes_rewritten": int(row["rewritten_bytes_count"]),
        "failed_data_files": int(row["failed_data_files_count"]),
    }


def snapshot_counts(spark, identifier: str, older_than: datetime) -> tuple[int, int]:
    """(snapshots, snapshots committed before `older_than`)."""
    row = spark.sql(
        f"select count(*), count_if(committed_at < {timestamp(older_than)}) from {identifier}.snapshots"
    ).first()
    return int(row[0]), int(row[1])


def expire(spark, identifier: str, older_than: datetime, retain_last: int) -> dict[str, int]:
    """Expire, unless no snapshot can go (none older than the cut-off, or no more than retain_last in all):
    the procedure compares the files reachable before and after in Spark jobs (seconds even on a small
    table), which the common case of a table with no snapshot to expire does not need."""
    catalog, name = split(identifier)
    total, old = snapshot_counts(spark, identifier, older_than)
    if old == 0 or total <= retain_last:
        return {"snapshots_expired": 0, "expire_skipped": True}
    # stream_results stays off (Iceberg's default): it fetches the deleted files' list one Spark partition at
    # a time, which only helps a driver that could not hold millions of paths, and costs a job per partition.
    row = spark.sql(
        f"CALL {catalog}.system.expire_snapshots(table => '{name}', older_than => {timestamp(older_than)}, "
        f"retain_last => {int(retain_last)})"
    ).first()
    return {
        "snapshots_expired": max(0, total - snapshot_counts(spark, identifier, older_than)[0]),
        "data_files_deleted": int(row["deleted_data_files_count"]),
        "delete_files_deleted": int(row["deleted_position_delete_files_count"])
        + int(row["deleted_equality_delete_files_count"]),
        "manifest_files_deleted": int(row["deleted_manifest_files_count"]),
        "manifest_lists_deleted": int(row["deleted_manifest_lists_count"]),
    }


def remove_orphans(spark, catalog: str, name: str, older_than: datetime) -> dict[str, Any]:
    rows = spark.sql(
        f"CALL {catalog}.system.remove_orphan_files(table => '{name}', older_than => {timestamp(older_than)})"
    ).collect()
    paths = sorted(r["orphan_file_location"] for r in rows)
    return {"orphan_files_removed": len(paths), "orphan_files": paths[:ORPHAN_SAMPLE]}


def error_text(error: BaseException) -> str:
    """The error's first line (Spark's messages carry a JVM stack trace), at most 500 characters."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= 500 else text[:497] + "..."


def maintain(spark, identifier: str, conf: dict[str, Any], expire_before: datetime, orphans_before: datetime):
    """One table's maintenance: each step runs even when an earlier one failed (a failed compaction does not
    keep old snapshots or orphans around); each step's failure is recorded in `errors`."""
    started = time.monotonic()
    result: dict[str, Any] = {"table": identifier, "status": "ok", "errors": {}}
    result.update({figure: 0 for figure in FIGURES})
    result.update(orphan_files=[], expire_skipped=False)
    try:
        catalog, name = split(identifier)
        before = state(spark, identifier)  # also tells a missing table before any procedure runs
    except Exception as error:  # noqa: BLE001 - reported per table, raised at the end of the job
        result.update(status="failed", errors={"load": error_text(error)}, seconds=round(time.monotonic() - started, 1))
        return result
    result.update({f"{k}_before": v for k, v in before.items()})
    steps = [
        ("compact", (lambda: compact(spark, catalog, name, conf["compact"])) if conf["compact"] else None),
        ("expire_snapshots", lambda: expire(spark, identifier, expire_before, conf["retain_last"])),
        ("remove_orphan_files", lambda: remove_orphans(spark, catalog, name, orphans_before)),
    ]
    result["step_seconds"] = {}
    for step, call in steps:
        if call is None:
            continue
        step_started = time.monotonic()
        try:
            result.update(call())
        except Exception as error:  # noqa: BLE001 - reported per table, raised at the end of the job
            result["errors"][step] = error_text(error)
        result["step_seconds"][step] = round(time.monotonic() - step_started, 1)
    try:
        result.update({f"{k}_after": v for k, v in state(spark, identifier).items()})
    except Exception as error:  # noqa: BLE001
        result["errors"]["state"] = error_text(error)
    if result["errors"]:
        result["status"] = "failed"
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def run(spark, params: dict[str, Any]) -> dict[str, Any]:
    conf = settings(params)
    tables = list(dict.fromkeys(params.get("tables") or []))  # in order, once each
    now = datetime.now(timezone.utc)  # both cut-offs from the job's start: the conservative side
    expire_before = now - timedelta(days=float(conf["retain_days"]))
    orphans_before = now - timedelta(hours=float(conf["orphan_age_hours"]))
    results = []
    for identifier in tables:
        result = maintain(spark, identifier, conf, expire_before, orphans_before)
        print(f"maintenance {identifier}: {summary_line(result)}", flush=True)  # the driver's log (Glue: CloudWatch)
        results.append(result)
    failed = [r["table"] for r in results if r["status"] != "ok"]
    report = {
        "tables": results,
        "totals": {
            "tables": len(results),
            "tables_failed": len(failed),
            **{figure: sum(r[figure] for r in results) for figure in FIGURES},
        },
        "failed": failed,
        "settings": {**conf, "expired_before": now_iso(expire_before), "orphans_before": now_iso(orphans_before)},
    }
    if failed:
        lines = [f"{r['table']}: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items()) for r in results
                 if r["status"] != "ok"]
        done = [r["table"] for r in results if r["status"] == "ok"]
        raise MaintenanceFailed(
            f"Iceberg maintenance failed for {len(failed)} of {len(results)} tables: {', '.join(failed)}\n"
            + "\n".join(lines)
            + f"\nmaintained all the same: {', '.join(done) if done else 'none'}",
            report,
        )
    return report


def now_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def summary_line(result: dict[str, Any]) -> str:
    if result["status"] != "ok" and "load" in result["errors"]:
        return f"FAILED {result['errors']['load']}"
    text = (
        f"{result['snapshots_expired']} snapshots expired, {result['data_files_deleted']} data files deleted, "
        f"{result['orphan_files_removed']} orphan files removed, {result['data_files_rewritten']} files "
        f"compacted into {result['data_files_added']}"
    )
    return text if result["status"] == "ok" else f"FAILED {result['errors']} ({text})"


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
