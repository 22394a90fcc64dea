"""The raw index (spark_jobs/raw_index.py): a daily clean run reads the raw files of its days only, and the
tables it commits are the ones a run reading every file commits (`rebuild`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_platform import contracts, partitions
from lake_platform.adapters import iceberg
from lake_platform.adapters.spark import SparkJobs, load_job
from lake_platform.clean.assets import clean_assets
from lake_platform.resources import local_resources

CLEAN, QUARANTINE, INDEX = "lake.lake_clean.flights", "lake.lake_quarantine.flights", "lake.lake_raw_index.flights"
FLIGHT = {
    "flight_id": 0, "year": 2013, "month": 1, "day": 1, "dep_time": 600, "sched_dep_time": 600, "dep_delay": 0.0,
    "arr_time": 900, "sched_arr_time": 900, "arr_delay": 0.0, "carrier": "UA", "flight": 1, "tailnum": "N1",
    "origin": "EWR", "dest": "IAH", "air_time": 200.0, "distance": 1400.0, "hour": 6, "minute": 0,
    "time_hour": "2013-01-01T11:00:00Z",
}


def change(op: str, at: str, flight_id: int, day: int, **values) -> dict:
    return {"Op": op, "dms_commit_ts": f"2013-01-0{day} {at}", **FLIGHT, "flight_id": flight_id, "day": day,
            "time_hour": f"2013-01-0{day}T11:00:00Z", **values}


def dms_file(folder: Path, name: str, rows: list[dict]) -> str:
    path = folder / "raw" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def run(spark, files: list[str], first: str, last: str | None = None, rebuild: bool = False,
        contract: dict | None = None, raw_index: str = INDEX) -> dict:
    contract = contract or contracts.load("flights")
    scope = {"partition_column": "flight_date", "replace": {"first": first, "last": last or first}}
    return load_job("clean").run(spark, {
        "contract": contract,
        "inputs": files,
        "output": {"iceberg": CLEAN, **scope},
        "quarantine": {"iceberg": QUARANTINE, **scope},
        "partition": {"column": "flight_date", "first": first, "last": last or first},
        "expected_schema": [list(c) for c in contracts.schema(contract)],
        "raw_index": raw_index,
        "rebuild": rebuild,
    })


def table(spark) -> list[tuple]:
    return sorted((r["flight_id"], r["flight_date"].day, r["dep_time"]) for r in spark.table(CLEAN).collect())


def index(spark) -> dict[str, tuple]:
    return {Path(r["file"]).stem: (sorted(d.day for d in r["days"]), r["undated"], r["rejected"])
            for r in spark.table(INDEX).collect()}


@pytest.fixture()
def lake(spark, tmp_path):
    iceberg.use_lake(spark, tmp_path / "lake")
    yield tmp_path
    iceberg.use_lake(spark, tmp_path / "other")  # no later test sees this lake's tables


def test_a_day_reads_its_files_and_the_new_ones_and_commits_what_reading_all_commits(spark, lake):
    first = dms_file(lake, "full_load", [change("I", "08:00:00", 1, 1), change("I", "08:00:00", 2, 1)])
    second = dms_file(lake, "day2", [change("I", "08:00:00", 3, 2), change("I", "08:00:00", 4, 2)])
    meta = run(spark, [first, second], "2013-01-01", "2013-01-02")
    assert (meta["input_files"], meta["files_skipped"], meta["raw_index_updated"]) == (2, 0, True)
    assert index(spark) == {"full_load": ([1], False, False), "day2": ([2], False, False)}

    # A CDC file lands: a new flight on the 3rd, a change to flight 1 and a delete of flight 2 (the 1st).
    cdc = dms_file(lake, "cdc", [change("U", "10:00:00", 1, 1, dep_time=700), change("D", "10:00:00", 2, 1),
                                 change("I", "10:00:00", 5, 3)])
    files = [first, second, cdc]
    meta = run(spark, files, "2013-01-03")
    assert (meta["input_files"], meta["files_skipped"]) == (1, 2), "only the new file is read for the 3rd"
    assert (meta["rows_in"], meta["rows_clean"], meta["duplicates_dropped"]) == (1, 1, 0)
    assert index(spark)["cdc"] == ([1, 3], False, False)
    meta = run(spark, files, "2013-01-01")
    assert (meta["input_files"], meta["files_skipped"]) == (2, 1), "the 1st reads the full load and the CDC file"
    assert (meta["rows_in"], meta["rows_clean"], meta["duplicates_dropped"], meta["deletes_applied"]) == (4, 1, 3, 1)
    incremental = table(spark)
    assert incremental == [(1, 1, 700), (3, 2, 600), (4, 2, 600), (5, 3, 600)]

    meta = run(spark, files, "2013-01-01", "2013-01-03", rebuild=True)
    assert (meta["input_files"], meta["files_skipped"]) == (3, 0)
    assert table(spark) == incremental


def test_a_flight_moved_by_a_later_file_leaves_its_old_day_when_that_day_reruns(spark, lake):
    old = dms_file(lake, "old", [change("I", "08:00:00", 7, 1), change("I", "08:00:00", 8, 1)])
    run(spark, [old], "2013-01-01")
    assert table(spark) == [(7, 1, 600), (8, 1, 600)]
    # Flight 7 is moved to the 2nd by a file holding only the 2nd: the 2nd's run finds flight 7 on the 1st in
    # the clean table, reads the 1st's files too to rank its versions, and indexes both files under both days.
    moved = dms_file(lake, "moved", [change("U", "20:00:00", 7, 2)])
    meta = run(spark, [old, moved], "2013-01-02")
    assert meta["input_files"] == 2
    assert index(spark) == {"old": ([1, 2], False, False), "moved": ([1, 2], False, False)}
    assert table(spark) == [(7, 1, 600), (7, 2, 600), (8, 1, 600)], "the 1st keeps it until it is rerun"
    meta = run(spark, [old, moved], "2013-01-01")
    assert (meta["rows_in"], meta["rows_clean"], meta["duplicates_dropped"]) == (2, 1, 1)
    assert table(spark) == [(7, 2, 600), (8, 1, 600)]


def test_a_file_with_undated_or_rejected_records_is_read_by_every_run(spark, lake):
    undated = dms_file(lake, "undated", [change("I", "08:00:00", 1, 1), change("I", "08:00:00", 2, 1, month=13)])
    (lake / "raw" / "junk.parquet").write_bytes(b"not parquet")
    junk = str(lake / "raw" / "junk.parquet")
    day2 = dms_file(lake, "day2", [change("I", "08:00:00", 3, 2)])
    run(spark, [undated, junk, day2], "2013-01-01")
    assert index(spark) == {"undated": ([1], True, False), "junk": ([], False, True), "day2": ([2], False, False)}
    meta = run(spark, [undated, junk, day2], "2013-01-02")
    assert (meta["input_files"], meta["files_skipped"]) == (3, 0)
    meta = run(spark, [undated, junk, day2], "2013-01-03")
    assert (meta["input_files"], meta["files_skipped"]) == (2, 1), "a day without files reads the bad ones only"
    reasons = sorted(r["reason"][:20] for r in spark.table(QUARANTINE).where("flight_date is null").collect())
    assert reasons == ["month: violates mont", "whole file: not Parq"], "the undated rows stay quarantined"


def test_an_entry_of_another_contract_is_not_trusted(spark, lake):
    files = [dms_file(lake, "a", [change("I", "08:00:00", 1, 1)]), dms_file(lake, "b", [change("I", "08:00:00", 2, 2)])]
    run(spark, files, "2013-01-01", "2013-01-02")
    assert run(spark, files, "2013-01-02")["files_skipped"] == 1
    changed = contracts.load("flights")
    changed["columns"] = [{**c, "check": "dest <> 'XXX'"} if c["name"] == "dest" else c for c in changed["columns"]]
    meta = run(spark, files, "2013-01-02", contract=changed)
    assert meta["files_skipped"] == 0, "the day of a record depends on the contract: its files are read again"
    assert run(spark, files, "2013-01-02", contract=changed)["files_skipped"] == 1


def test_an_index_that_cannot_be_written_costs_reads_not_rows(spark, lake, capsys):
    spark.sql("create namespace if not exists lake.lake_raw_index")
    spark.sql(f"create table {INDEX} (something_else int) using iceberg")
    files = [dms_file(lake, "a", [change("I", "08:00:00", 1, 1)])]
    meta = run(spark, files, "2013-01-01")
    assert (meta["committed"], meta["raw_index_updated"]) == (True, False)
    assert f"raw index {INDEX}: not updated" in capsys.readouterr().err
    assert table(spark) == [(1, 1, 600)]
    assert run(spark, files, "2013-01-01")["files_skipped"] == 0


class RecordingJobs(SparkJobs):
    """Records the cleaning job's parameters instead of running it."""

    def run(self, context, job, params):
        RECORDED.append(params)
        raise dg.Failure("recorded")


RECORDED: list[dict] = []


@pytest.mark.parametrize("tags, rebuild", [({}, False), ({partitions.REBUILD_TAG: "true"}, True)])
def test_the_clean_asset_names_the_index_and_passes_lake_run_rebuild(tmp_path, monkeypatch, tags, rebuild):
    entry = {"raw_key": "raw/flights/a.parquet", "landing_key": "a", "landed_at": "2013-01-01T00:00:00+00:00"}
    monkeypatch.setattr("lake_platform.clean.assets.read_manifest", lambda store, name: {"current": {"a": entry}})
    flights = next(a for a in clean_assets if a.key == dg.AssetKey(["clean", "flights"]))
    RECORDED.clear()
    dg.materialize([flights], resources={**local_resources(tmp_path), "glue": RecordingJobs()},
                   partition_key="2013-01-02", tags=tags, raise_on_error=False)
    (params,) = RECORDED
    assert (params["raw_index"], params["rebuild"]) == (INDEX, rebuild)
    assert params["partition"] == {"column": "flight_date", "first": "2013-01-02", "last": "2013-01-02"}


def index_operations(spark) -> list[str]:
    return [r[0] for r in spark.sql(f"select operation from {INDEX}.snapshots order by committed_at").collect()]


def test_a_new_days_entries_are_appended_and_a_rerun_writes_none(spark, lake):
    first = dms_file(lake, "full_load", [change("I", "08:00:00", 1, 1)])
    run(spark, [first], "2013-01-01")
    before = index_operations(spark)
    assert run(spark, [first], "2013-01-01")["raw_index_updated"] is True
    assert index_operations(spark) == before, "a rerun's entries are those the index holds: no commit"
    second = dms_file(lake, "day2", [change("I", "08:00:00", 2, 2)])
    run(spark, [first, second], "2013-01-02")
    assert index_operations(spark) == [*before, "append"], "a new file's entry is appended, nothing rewritten"
    assert index(spark) == {"full_load": ([1], False, False), "day2": ([2], False, False)}


def test_two_entries_of_one_file_count_as_one_holding_the_days_of_both(spark, lake):
    # Two runs that append the same new file at once leave two rows: a file is read for the days of either.
    files = [dms_file(lake, "a", [change("I", "08:00:00", 1, 1)])]
    run(spark, files, "2013-01-01")
    raw_index, contract = load_job("raw_index"), contracts.load("flights")
    spark.sql(f"insert into {INDEX} values ('{files[0]}', '{raw_index.fingerprint(contract)}', "
              "array(date '2013-01-03'), false, false)")
    assert raw_index.load(spark, INDEX, contract)[files[0]]["days"] == {"2013-01-01", "2013-01-03"}
    assert run(spark, files, "2013-01-02")["files_skipped"] == 1
    assert run(spark, files, "2013-01-03")["files_skipped"] == 0
    # That run read the file: both rows now hold its true days.
    assert [sorted(d.day for d in r["days"]) for r in spark.table(INDEX).collect()] == [[1], [1]]
