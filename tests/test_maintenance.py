"""Iceberg table maintenance (spark_jobs/maintenance.py, lake_platform/maintenance): expire, orphans, compaction."""

import os
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_platform.adapters.iceberg import use_lake
from lake_platform.adapters.spark import SparkJobs, load_job
from lake_platform.definitions import build_definitions
from lake_platform.maintenance import MAINTENANCE_KEY, MaintenanceConfig, iceberg_tables
from lake_platform.resources import local_resources

# As spark_jobs/lake_tables.py creates the lake's tables: format v2, copy-on-write.
PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "copy-on-write",
    "write.update.mode": "copy-on-write",
    "write.merge.mode": "copy-on-write",
}
FLIGHTS = "lake.lake_clean.flights"
HOUR = 3600


def create_table(spark, identifier: str, partitioned: bool = True) -> None:
    spark.sql(f"create namespace if not exists {identifier.rsplit('.', 1)[0]}")
    props = ", ".join(f"'{k}'='{v}'" for k, v in PROPERTIES.items())
    spark.sql(
        f"create table {identifier} (flight_id bigint, flight_date date, carrier string) using iceberg "
        f"{'partitioned by (flight_date)' if partitioned else ''} tblproperties ({props})"
    )


def commit_rows(spark, identifier: str, day: str, ids) -> None:
    """One commit per row: a file per commit, the small files a stream of small writes leaves."""
    for i in ids:
        spark.sql(f"insert into {identifier} values ({i}, date'{day}', 'UA')")


def rows(spark, identifier: str) -> list[tuple]:
    return [tuple(r) for r in spark.sql(f"select * from {identifier} order by flight_id").collect()]


def snapshot_ids(spark, identifier: str) -> list[int]:
    return [r[0] for r in spark.sql(f"select snapshot_id from {identifier}.snapshots order by committed_at").collect()]


def data_files(spark, identifier: str) -> dict[str, int]:
    """Data files of the current snapshot per day."""
    found = spark.sql(f"select partition.flight_date d, count(*) n from {identifier}.files group by 1").collect()
    return {str(r["d"]): r["n"] for r in found}


def orphan(folder: Path, name: str, age_seconds: float) -> Path:
    path = folder / name
    pq.write_table(pa.table({"flight_id": [999]}), path)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture(scope="module")
def maintained(spark, tmp_path_factory):
    """A daily table after eight one-row commits (six on one day, two on the next) and with two orphan files, then
    maintained keeping no history (retain_days 0, retain_last 1)."""
    root = tmp_path_factory.mktemp("maintenance_lake")
    use_lake(spark, root)
    create_table(spark, FLIGHTS)
    commit_rows(spark, FLIGHTS, "2013-01-01", range(1, 7))
    commit_rows(spark, FLIGHTS, "2013-01-02", range(7, 9))
    before = {
        "rows": rows(spark, FLIGHTS), "snapshots": snapshot_ids(spark, FLIGHTS), "files": data_files(spark, FLIGHTS)
    }
    a_file = spark.sql(f"select file_path from {FLIGHTS}.files where partition.flight_date = '2013-01-01'").first()[0]
    folder = Path(a_file.removeprefix("file:")).parent
    orphans = {
        "old": orphan(folder, "orphan-of-a-killed-write.parquet", 3 * 24 * HOUR),
        "fresh": orphan(folder, "file-of-a-write-in-flight.parquet", 12 * HOUR),
    }
    params = {
        "tables": [FLIGHTS], "retain_days": 0, "retain_last": 1, "orphan_age_hours": 24,
        "compact": {"min_input_files": 3},
    }
    started = time.monotonic()
    report = load_job("maintenance").run(spark, params)
    return {"root": root, "before": before, "orphans": orphans, "folder": folder, "report": report,
            "seconds": time.monotonic() - started}


def test_old_snapshots_are_expired_and_the_current_rows_unchanged(spark, maintained):
    use_lake(spark, maintained["root"])
    before = maintained["before"]
    assert len(before["snapshots"]) == 8
    after = snapshot_ids(spark, FLIGHTS)
    assert len(after) == 1 and not set(after) & set(before["snapshots"])  # only the compaction's snapshot is left
    assert rows(spark, FLIGHTS) == before["rows"] and len(before["rows"]) == 8
    (table,) = maintained["report"]["tables"]
    assert table["status"] == "ok" and table["snapshots_expired"] == 8
    assert table["data_files_deleted"] == 6  # the small files the compaction replaced, released by the expiry
    assert table["manifest_lists_deleted"] == 8


def test_an_old_orphan_is_removed_and_a_recent_one_kept(maintained):
    old, fresh = maintained["orphans"]["old"], maintained["orphans"]["fresh"]
    assert not old.exists()
    assert fresh.exists()  # younger than orphan_age_hours: it may belong to a write still in flight
    (table,) = maintained["report"]["tables"]
    assert table["orphan_files_removed"] == 1
    assert [Path(p).name for p in table["orphan_files"]] == [old.name]


def test_only_a_day_of_many_small_files_is_compacted(spark, maintained):
    use_lake(spark, maintained["root"])
    assert maintained["before"]["files"] == {"2013-01-01": 6, "2013-01-02": 2}
    # min_input_files 3: the first day's six files become one, the second day's two stay as they are.
    assert data_files(spark, FLIGHTS) == {"2013-01-01": 1, "2013-01-02": 2}
    (table,) = maintained["report"]["tables"]
    assert (table["data_files_rewritten"], table["data_files_added"]) == (6, 1)
    assert table["bytes_rewritten"] > 0
    assert (table["data_files_before"], table["data_files_after"]) == (8, 3)
    assert table["rows_before"] == table["rows_after"] == 8
    # On disk: the replaced files are gone (expired), the compacted file and the recent orphan are there.
    assert len(list(maintained["folder"].glob("*.parquet"))) == 2


def test_the_report_totals_the_tables(maintained):
    report = maintained["report"]
    totals = report["totals"]
    assert totals["tables"] == 1 and totals["tables_failed"] == 0 and report["failed"] == []
    (table,) = report["tables"]
    for figure in ("snapshots_expired", "data_files_deleted", "orphan_files_removed", "data_files_rewritten"):
        assert totals[figure] == table[figure]
    print(f"maintenance of one table took {maintained['seconds']:.1f} s: {table['step_seconds']}")


def test_a_failing_table_is_reported_and_the_others_still_maintained(spark, tmp_path):
    use_lake(spark, tmp_path)
    quarantine = "lake.lake_quarantine.flights"
    create_table(spark, quarantine, partitioned=False)
    commit_rows(spark, quarantine, "2013-01-01", range(3))
    job = load_job("maintenance")
    missing = "lake.lake_clean.does_not_exist"
    with pytest.raises(job.MaintenanceFailed, match=r"failed for 1 of 2 tables: lake\.lake_clean\.does_not_exist"):
        job.run(spark, {"tables": [missing, quarantine], "retain_days": 0, "retain_last": 1, "compact": None})
    # The failing table came first: the next one was maintained all the same.
    assert len(snapshot_ids(spark, quarantine)) == 1
    assert [r[0] for r in rows(spark, quarantine)] == [0, 1, 2]


def test_the_failure_carries_every_tables_report(spark, tmp_path):
    use_lake(spark, tmp_path)
    job = load_job("maintenance")
    with pytest.raises(job.MaintenanceFailed) as failed:
        job.run(spark, {"tables": ["lake.lake_clean.nope"], "compact": None})
    report = failed.value.report
    assert report["failed"] == ["lake.lake_clean.nope"]
    assert "TABLE_OR_VIEW_NOT_FOUND" in report["tables"][0]["errors"]["load"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"orphan_age_hours": 1}, "orphan_age_hours must be >= 24"),
        ({"retain_last": 0}, "retain_last must be >= 1"),
        ({"retain_days": -1}, "retain_days must be >= 0"),
    ],
)
def test_unsafe_settings_are_refused_before_any_table_is_touched(params, message):
    with pytest.raises(ValueError, match=message):
        load_job("maintenance").run(None, {"tables": [FLIGHTS], **params})  # no Spark needed: it fails first


def test_a_table_name_that_is_not_an_identifier_is_refused_not_spliced_into_sql():
    job = load_job("maintenance")
    result = job.maintain(None, "lake.db.t'); drop table x; --", job.settings({}), None, None)
    assert result["status"] == "failed" and "not a <catalog>.<database>.<table>" in result["errors"]["load"]


def test_timestamps_are_literals_with_their_offset():
    from datetime import datetime, timedelta, timezone

    job = load_job("maintenance")
    moment = datetime(2024, 5, 1, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert job.timestamp(moment) == "TIMESTAMP '2024-05-01 03:00:00.000000+00:00'"


def materialization(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("maintenance__iceberg_tables")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_the_asset_maintains_every_table_of_the_iceberg_zones_and_reports_each(spark, tmp_path):
    use_lake(spark, tmp_path)
    create_table(spark, "lake.lake_clean.airlines", partitioned=False)
    commit_rows(spark, "lake.lake_clean.airlines", "2013-01-01", range(4))
    create_table(spark, "lake.lake_quarantine.airlines", partitioned=False)
    commit_rows(spark, "lake.lake_quarantine.airlines", "2013-01-01", range(1))
    config = MaintenanceConfig(retain_days=0, retain_last=2, min_input_files=2)
    result = dg.materialize(
        [iceberg_tables],
        resources=local_resources(tmp_path),
        run_config={"ops": {"maintenance__iceberg_tables": {"config": config.model_dump()}}},
    )
    assert result.success
    meta = materialization(result)
    assert meta["tables"] == 2 and meta["tables_failed"] == 0
    report = meta["report"]
    assert "`lake.lake_clean.airlines`" in report and "`lake.lake_quarantine.airlines`" in report
    assert "**total: 2 tables**" in report
    # Four commits, then a compaction: retain_last 2 keeps the compaction and the last insert.
    assert meta["snapshots_expired"] == 3 and meta["manifest_lists_deleted"] == 3
    assert (meta["data_files_rewritten"], meta["data_files_added"]) == (4, 1)
    per_table = {t["table"]: t for t in meta["per_table"]}
    assert per_table["lake.lake_quarantine.airlines"]["data_files_rewritten"] == 0  # one file: nothing to compact
    assert meta["settings"]["retain_last"] == 2
    assert [r[0] for r in rows(spark, "lake.lake_clean.airlines")] == [0, 1, 2, 3]


def test_the_asset_with_no_iceberg_table_says_so_and_succeeds(tmp_path):
    result = dg.materialize([iceberg_tables], resources=local_resources(tmp_path))
    assert result.success
    meta = materialization(result)
    assert meta["tables"] == 0 and "nothing to maintain" in meta["report"]


class FailingJobs(SparkJobs):
    """Stands in for the job as it fails locally: MaintenanceFailed with every table's report."""

    def run(self, context, job, params):
        maintenance = load_job("maintenance")
        ok = {"table": params["tables"][0], "status": "ok", "errors": {}, "orphan_files": [],
              **{f: 1 for f in maintenance.FIGURES}, "data_files_before": 2, "data_files_after": 1}
        bad = {"table": params["tables"][1], "status": "failed", "orphan_files": [],
               "errors": {"load": "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]"},
               **{f: 0 for f in maintenance.FIGURES}}
        report = {"tables": [ok, bad], "failed": [bad["table"]], "settings": {},
                  "totals": {"tables": 2, "tables_failed": 1, **{f: 1 for f in maintenance.FIGURES}}}
        raise maintenance.MaintenanceFailed(f"Iceberg maintenance failed for 1 of 2 tables: {bad['table']}", report)


def test_a_failed_table_fails_the_asset_with_the_report_attached(tmp_path, monkeypatch):
    resources = local_resources(tmp_path)
    names = ["lake.lake_clean.flights", "lake.lake_quarantine.flights"]
    monkeypatch.setattr("lake_platform.maintenance.assets.iceberg_table_names", lambda catalog: names)
    result = dg.materialize(
        [iceberg_tables], resources={**resources, "glue": FailingJobs()}, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.event_specific_data
    assert "lake.lake_quarantine.flights" in data.error.message
    report = data.user_failure_data.metadata["report"].value
    assert "**FAILED** load: AnalysisException" in report and "`lake.lake_clean.flights` | ok" in report


def test_the_schedule_runs_daily_and_follows_the_automation_setting(tmp_path):
    for deployment, status in (("local", dg.DefaultScheduleStatus.RUNNING), ("aws", dg.DefaultScheduleStatus.STOPPED)):
        defs = build_definitions(deployment, tmp_path)
        schedule = defs.resolve_schedule_def("iceberg_maintenance_schedule")
        assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
        assert schedule.default_status == status
        assert defs.resolve_job_def(schedule.job_name).asset_layer.selected_asset_keys == {MAINTENANCE_KEY}
    spec = build_definitions("local", tmp_path, automation=False).resolve_assets_def(MAINTENANCE_KEY)
    assert spec.group_names_by_key[MAINTENANCE_KEY] == "maintenance"
    assert set(spec.specs_by_key[MAINTENANCE_KEY].kinds) == {"iceberg", "spark", "glue"}
    assert (
        build_definitions("local", tmp_path, automation=False).resolve_schedule_def("iceberg_maintenance_schedule")
        .default_status == dg.DefaultScheduleStatus.STOPPED
    )


def test_a_table_committed_by_pyiceberg_is_maintained_by_spark(spark, tmp_path):
    """The predictions table is written by PyIceberg (`Catalog.commit`), whose metadata names files `file:///...`
    where Spark writes `file:/...`: the same Spark maintenance expires its snapshots and removes its orphans
    without taking a live file for one."""
    from datetime import date

    from lake_platform.adapters.catalog import LocalCatalog
    from lake_platform.adapters.storage import LocalObjectStore

    catalog = LocalCatalog(store=LocalObjectStore(root=str(tmp_path)))
    schema = pa.schema([("flight_id", pa.int64()), ("flight_date", pa.date32())])
    for n, day in enumerate([date(2013, 1, 1), date(2013, 1, 2), date(2013, 1, 1)]):
        rows = pa.table({"flight_id": [n], "flight_date": [day]}, schema=schema)
        catalog.commit("ml", "t", rows, "flight_date", {"first": day.isoformat(), "last": day.isoformat()})
    live = catalog.data_files("ml", "t")
    stale = orphan(Path(live[0]).parent, "orphan-of-a-killed-write.parquet", 3 * 24 * HOUR)
    use_lake(spark, tmp_path)
    params = {"tables": ["lake.lake_ml.t"], "retain_days": 0, "retain_last": 1, "orphan_age_hours": 24,
              "compact": {"min_input_files": 3}}
    (table,) = load_job("maintenance").run(spark, params)["tables"]
    assert table["status"] == "ok", table
    assert table["orphan_files_removed"] == 1 and not stale.exists()
    assert all(Path(f).exists() for f in live) and catalog.data_files("ml", "t") == live
    assert sorted(r.flight_id for r in spark.table("lake.lake_ml.t").collect()) == [1, 2]
    assert table["snapshots_expired"] >= 1
