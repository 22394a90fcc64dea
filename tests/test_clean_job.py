"""The cleaning job (spark_jobs/clean.py) on small inputs: typing, quarantine, de-duplication, accounting."""

import pyarrow as pa
import pyarrow.parquet as pq

from lake_platform import contracts
from lake_platform.adapters.spark import load_job

AIRLINES = contracts.load("airlines")


def run_clean(spark, tmp_path, contract, files: dict[str, str]):
    inputs = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
        inputs.append(str(path))
    params = {
        "contract": contract,
        "inputs": inputs,
        "output": str(tmp_path / "out"),
        "quarantine": str(tmp_path / "quarantine"),
    }
    meta = load_job("clean").run(spark, params)
    clean = {tuple(r) for r in spark.read.parquet(params["output"]).collect()}
    quarantine = [r.asDict() for r in spark.read.parquet(params["quarantine"]).collect()]
    return meta, clean, quarantine


def test_valid_records_are_typed_and_kept(spark, tmp_path):
    meta, clean, quarantine = run_clean(spark, tmp_path, AIRLINES, {"a.csv": "carrier,name\nAA,American\nUA,United\n"})
    assert clean == {("AA", "American"), ("UA", "United")}
    assert quarantine == []
    assert (meta["rows_in"], meta["rows_clean"], meta["rows_quarantined"]) == (2, 2, 0)


def test_a_record_missing_a_required_value_is_quarantined_with_file_and_rule(spark, tmp_path):
    meta, clean, quarantine = run_clean(spark, tmp_path, AIRLINES, {"bad.csv": "carrier,name\nAA,American\n,Nameless\n"})
    assert clean == {("AA", "American")}
    assert len(quarantine) == 1
    assert quarantine[0]["source_file"].endswith("bad.csv")
    assert "carrier: required value is missing" in quarantine[0]["reason"]
    assert "Nameless" in quarantine[0]["record"]


def test_wrong_types_and_out_of_range_values_are_quarantined_and_nothing_is_lost(spark, tmp_path):
    planes = contracts.load("planes")
    text = (
        "tailnum,year,type,manufacturer,model,engines,seats,speed,engine\n"
        "N1,2004,Fixed wing,BOEING,737,2,150,,Turbo-fan\n"
        "N2,two thousand,Fixed wing,BOEING,737,2,150,,Turbo-fan\n"  # not an int
        "N3,1999,Fixed wing,BOEING,737,12,150,,Turbo-fan\n"  # engines out of range
        "N4,,Fixed wing,,,2,,,\n"  # nulls are allowed here
    )
    meta, clean, quarantine = run_clean(spark, tmp_path, planes, {"planes.csv": text})
    assert {row[0] for row in clean} == {"N1", "N4"}
    reasons = sorted(q["reason"] for q in quarantine)
    assert reasons == ["engines: violates engines between 0 and 8", "year: not a valid int (an integer literal is required)"]
    assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["duplicates_dropped"]


def test_duplicate_keys_keep_the_latest_version_by_commit_time(spark, tmp_path):
    flights = contracts.load("flights")
    base = {name: 1 for name, _ in contracts.schema(flights)}
    row = {
        **base, "flight_id": 7, "year": 2013, "month": 1, "day": 2, "dep_time": 600, "sched_dep_time": 600,
        "dep_delay": 0.0, "arr_time": 900, "sched_arr_time": 900, "arr_delay": 0.0, "carrier": "UA",
        "flight": 1, "tailnum": "N1", "origin": "EWR", "dest": "IAH", "air_time": 200.0, "distance": 1400.0,
        "hour": 6, "minute": 0, "time_hour": "2013-01-02T11:00:00Z",
    }
    row.pop("flight_date")
    older = {"Op": "I", "dms_commit_ts": "2013-01-02 12:00:00.000000", **row}
    newer = {"Op": "U", "dms_commit_ts": "2013-01-02 13:00:00.000000", **row, "arr_delay": 42.0}
    path = tmp_path / "LOAD00000001.parquet"
    pq.write_table(pa.Table.from_pylist([newer, older]), path)
    params = {"contract": flights, "inputs": [str(path)], "output": str(tmp_path / "o"), "quarantine": str(tmp_path / "q")}
    meta = load_job("clean").run(spark, params)
    rows = spark.read.parquet(params["output"]).collect()
    assert [(r.flight_id, r.arr_delay, str(r.flight_date)) for r in rows] == [(7, 42.0, "2013-01-02")]
    assert meta["duplicates_dropped"] == 1


def test_a_file_lacking_a_declared_column_is_quarantined_whole_naming_the_column_and_the_good_files_go_on(
    spark, tmp_path
):
    meta, clean, quarantine = run_clean(
        spark, tmp_path, AIRLINES, {"good.csv": "carrier,name\nAA,American\n", "short.csv": "carrier\nUA\n"}
    )
    assert clean == {("AA", "American")}
    assert [(f["file"].rsplit("/", 1)[-1], f["reason"]) for f in meta["quarantined_files"]] == [
        ("short.csv", "lacks declared column(s) name")
    ]
    assert (meta["rows_in"], meta["input_files"], meta["files_read"]) == (1, 2, 1)


def test_the_accounting_check_fails_when_a_record_or_a_file_is_unaccounted_for():
    from lake_platform.clean.assets import accounting

    meta = {"rows_in": 10, "rows_clean": 6, "rows_quarantined": 1, "duplicates_dropped": 3,
            "input_files": 3, "files_read": 2, "quarantined_files": [{"file": "f", "reason": "empty file (0 bytes)"}]}
    assert accounting(meta).passed
    assert not accounting({**meta, "duplicates_dropped": 2}).passed
    assert not accounting({**meta, "quarantined_files": []}).passed


def test_an_order_by_column_that_is_declared_orders_the_versions_and_stays_in_the_table(spark, tmp_path):
    contract = {**AIRLINES, "order_by": "updated",
                "columns": AIRLINES["columns"] + [{"name": "updated", "type": "timestamp"}]}
    text = "carrier,name,updated\nAA,American Airlines,2013-02-01 00:00:00\nAA,American,2013-01-01 00:00:00\n"
    meta, clean, _ = run_clean(spark, tmp_path, contract, {"a.csv": text})
    assert [row[:2] for row in clean] == [("AA", "American Airlines")]
    assert meta["duplicates_dropped"] == 1
