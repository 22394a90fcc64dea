"""The cleaning job on a corpus of bad inputs (tests/bad_inputs/): each case's outcome, and nothing lost.

Cases are batched into two job runs (planes as CSV, flights as DMS Parquet) because a Spark job costs
seconds here; each case is then asserted on its own. Every file holds its own keys, so a clean row tells
which file it came from.
"""

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_platform import contracts
from lake_platform.adapters.spark import load_job

CORPUS = Path(__file__).parent / "bad_inputs"
PLANES_HEADER = "tailnum,year,type,manufacturer,model,engines,seats,speed,engine"
GOOD_PLANE = "2004,Fixed wing,BOEING,737,2,150,,Turbo-fan"
TEN_MB = 10 * 1024 * 1024


def run_job(spark, tmp, contract, inputs):
    params = {"contract": contract, "inputs": [str(p) for p in inputs], "output": str(tmp / "out"),
              "quarantine": str(tmp / "quarantine")}
    meta = load_job("clean").run(spark, params)
    clean = [r.asDict() for r in spark.read.parquet(params["output"]).collect()]
    quarantine = [r.asDict() for r in spark.read.parquet(params["quarantine"]).collect()]
    return {"meta": meta, "clean": clean, "quarantine": quarantine, "inputs": params["inputs"]}


def generated_planes(folder: Path) -> list[Path]:
    """The binary, large and oddly named CSV cases, written at test time."""
    files = {
        "non_utf8.csv": f"{PLANES_HEADER}\nNA01,2004,Fixed wing,Zürich Aéro,737,2,150,,Turbo-fan\n".encode("cp1252"),
        "parquet_not_csv.csv": b"PAR1\x15\x04\x15\x10junk" + b"PAR1",
        "truncated.csv.gz": gzip.compress(f"{PLANES_HEADER}\nNB01,{GOOD_PLANE}\n".encode() * 50)[:60],
        "good.csv.gz": gzip.compress(f"{PLANES_HEADER}\nNC01,{GOOD_PLANE}\n".encode()),
        "ten_mb_line.csv": f"{PLANES_HEADER}\nND01,{GOOD_PLANE}\n".encode() + b"x" * TEN_MB + b"\n",
        "ten_mb_no_newline.csv": b"y" * TEN_MB,
        "ünïcødé 航班.csv": f"{PLANES_HEADER}\nNE01,{GOOD_PLANE}\n".encode(),
        "we[ir]d ?*{x},c #1 %41.csv": f"{PLANES_HEADER}\nNF01,{GOOD_PLANE}\n".encode(),
        "2013-01-01T00:00:00Z.csv": f"{PLANES_HEADER}\nNG01,{GOOD_PLANE}\n".encode(),
    }
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return [folder / name for name in files]


@pytest.fixture(scope="module")
def planes(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planes")
    inputs = [Path(shutil.copy(p, tmp)) for p in sorted((CORPUS / "planes").iterdir())] + generated_planes(tmp)
    return run_job(spark, tmp, contracts.load("planes"), inputs)


def by_name(run, name):
    return next(i for i in run["inputs"] if Path(i).name == name)


# file -> the reason it is quarantined whole with
WHOLE_FILE_CASES = {
    "empty.csv": "empty file (0 bytes)",
    "missing_column.csv": "lacks declared column(s) seats",
    "retyped_column.csv": "no value of column(s) engines (int) fits the declared type",
    "wrong_delimiter.csv": "lacks declared column(s) tailnum, year",
    "not_gzip.csv.gz": "named .gz but is not gzip data",
    "non_utf8.csv": "not UTF-8: invalid byte 0xfc at offset",
    "parquet_not_csv.csv": "Parquet data where the contract declares CSV",
    "truncated.csv.gz": "corrupt gzip data",
    "ten_mb_no_newline.csv": "no header line: the first line is longer than",
    "2013-01-01T00:00:00Z.csv": "file name contains ':'",
}


@pytest.mark.parametrize("name,reason", WHOLE_FILE_CASES.items(), ids=list(WHOLE_FILE_CASES))
def test_an_unusable_file_is_quarantined_whole_with_its_reason_and_the_batch_goes_on(planes, name, reason):
    entries = [f for f in planes["meta"]["quarantined_files"] if f["file"] == by_name(planes, name)]
    assert len(entries) == 1 and reason in entries[0]["reason"], planes["meta"]["quarantined_files"]
    rows = [q for q in planes["quarantine"] if q["source_file"] == by_name(planes, name)]
    whole_file = f"whole file: {entries[0]['reason']}"
    assert [(q["line"], q["reason"], q["record"]) for q in rows] == [(None, whole_file, None)]


# file -> ({line: reason of the quarantined record}, tail numbers it leaves in the clean table)
RECORD_CASES = {
    "malformed_lines.csv": (
        {3: "malformed CSV line", 4: "malformed CSV line", 5: "malformed CSV line"}, {"N101"}),
    "wrong_types.csv": ({3: "year: not a valid int", 4: "seats: not a valid int"}, {"N201"}),
    "out_of_range.csv": (
        {2: "year: violates year between 1900 and 2014", 3: "engines: violates engines between 0 and 8",
         4: "seats: violates seats > 0"}, {"N304"}),
    "duplicate_keys.csv": ({4: "tailnum: required value is missing"}, {"N401"}),
    "extra_column.csv": ({}, {"N501"}),
    "header_only.csv": ({}, set()),
    "crlf_and_blank_lines.csv": ({}, {"N901", "N902"}),
    "good.csv.gz": ({}, {"NC01"}),
    "ten_mb_line.csv": ({3: "malformed CSV line"}, {"ND01"}),
    "ünïcødé 航班.csv": ({}, {"NE01"}),
    "we[ir]d ?*{x},c #1 %41.csv": ({}, {"NF01"}),
}


@pytest.mark.parametrize("name,expected", RECORD_CASES.items(), ids=list(RECORD_CASES))
def test_bad_records_are_quarantined_with_file_line_and_rule_and_good_ones_kept(planes, name, expected):
    lines, tailnums = expected
    uri = by_name(planes, name)
    got = {q["line"]: q["reason"] for q in planes["quarantine"] if q["source_file"] == uri}
    assert set(got) == set(lines) and all(lines[n] in got[n] for n in lines), got
    assert tailnums <= {r["tailnum"] for r in planes["clean"]}
    assert not any(f["file"] == uri for f in planes["meta"]["quarantined_files"])


def test_a_quarantined_record_keeps_the_line_as_delivered(planes):
    records = {q["line"]: q["record"] for q in planes["quarantine"] if q["source_file"].endswith("wrong_types.csv")}
    assert records[3] == f"N202,two thousand,{GOOD_PLANE.split(',', 1)[1]}"
    ten_mb = [q for q in planes["quarantine"] if q["source_file"].endswith("ten_mb_line.csv")]
    assert len(ten_mb[0]["record"]) == TEN_MB


def test_duplicate_keys_keep_the_last_version_and_count_the_other(planes):
    assert [r["year"] for r in planes["clean"] if r["tailnum"] == "N401"] == [2002]
    assert planes["meta"]["duplicates_dropped"] == 1


def test_extra_columns_are_surfaced_and_ignored(planes):
    assert planes["meta"]["columns_added"] == ["registered_owner"]
    assert "registered_owner" not in planes["clean"][0]


def test_every_planes_file_and_record_is_accounted_for(planes):
    meta = planes["meta"]
    assert meta["input_files"] == meta["files_read"] + len(meta["quarantined_files"]) == len(planes["inputs"])
    quarantined = {f["file"] for f in meta["quarantined_files"]}
    # Records of the files read, counted here independently of Spark: non-blank lines after the header.
    records = sum(
        sum(1 for line in (gzip.open if p.endswith(".gz") else open)(p, "rb").read().splitlines()[1:] if line.strip())
        for p in planes["inputs"] if p not in quarantined
    )
    assert meta["rows_in"] == records
    assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["duplicates_dropped"]
    record_rows = [q for q in planes["quarantine"] if not q["reason"].startswith("whole file: ")]
    assert (meta["rows_clean"], meta["rows_quarantined"]) == (len(planes["clean"]), len(record_rows))
    # One more quarantine row per file rejected whole, outside the record accounting.
    assert len(planes["quarantine"]) - len(record_rows) == meta["files_quarantined"] == len(quarantined)
    assert sorted(r["tailnum"] for r in planes["clean"]) == sorted(set().union(*(t for _, t in RECORD_CASES.values())))


FLIGHT = {
    "flight_id": 0, "year": 2013, "month": 1, "day": 2, "dep_time": 600, "sched_dep_time": 600, "dep_delay": 0.0,
    "arr_time": 900, "sched_arr_time": 900, "arr_delay": 0.0, "carrier": "UA", "flight": 1, "tailnum": "N1",
    "origin": "EWR", "dest": "IAH", "air_time": 200.0, "distance": 1400.0, "hour": 6, "minute": 0,
    "time_hour": "2013-01-02T11:00:00Z",
}


def dms_file(source: Path, target: Path) -> Path:
    """A corpus .jsonl as a DMS Parquet change file: Op, dms_commit_ts, then the row."""
    rows = []
    for line in source.read_text().splitlines():
        change = json.loads(line)
        row = {"Op": change.pop("Op"), "dms_commit_ts": change.pop("dms_commit_ts"), **FLIGHT, **change}
        rows.append({k: v for k, v in row.items() if v is not None or k not in change})
    pq.write_table(pa.Table.from_pylist(rows), target)
    return target


@pytest.fixture(scope="module")
def flights(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flights")
    src = CORPUS / "flights"
    # The late-arriving file sorts after the early one by name but holds the older commits of keys 1 and 3.
    inputs = [
        dms_file(src / "cdc_batch_late.jsonl", tmp / "20130102-130000000.parquet"),
        dms_file(src / "cdc_batch_early.jsonl", tmp / "20130102-120000000.parquet"),
        dms_file(src / "extra_column.jsonl", tmp / "extra_column.parquet"),
        dms_file(src / "missing_column.jsonl", tmp / "missing_column.parquet"),
        Path(shutil.copy(src / "csv_not_parquet.parquet", tmp)),
    ]
    truncated = tmp / "truncated.parquet"
    truncated.write_bytes(inputs[0].read_bytes()[:-100])
    empty = tmp / "empty.parquet"
    empty.write_bytes(b"")
    return run_job(spark, tmp, contracts.load("flights"), inputs + [truncated, empty])


def test_cdc_changes_apply_in_commit_order_whatever_the_file_order(flights):
    final = {r["flight_id"]: r["arr_delay"] for r in flights["clean"]}
    # 1: updated at 11:00 (early file) and 12:00 (late file) -> 12:00 wins; 2: deleted; 3: updated at 14:00.
    assert final == {1: 30.0, 3: 99.0, 6: 0.0}


def test_cdc_deletes_are_applied_and_deletes_for_unknown_keys_counted(flights):
    assert flights["meta"]["deletes_applied"] == 1
    assert flights["meta"]["deletes_for_unknown_keys"] == 1


def test_cdc_records_breaking_the_contract_are_quarantined(flights):
    records = [q for q in flights["quarantine"] if q["record"] is not None]
    reasons = sorted((q["reason"], json.loads(q["record"])["flight_id"]) for q in records)
    assert reasons == [("Op: not one of I, U, D", "4"), ("origin: violates origin in ('EWR', 'JFK', 'LGA')", "5")]
    assert all(q["line"] is None for q in flights["quarantine"])


@pytest.mark.parametrize("name,reason", [
    ("missing_column.parquet", "lacks declared column(s) distance"),
    ("csv_not_parquet.parquet", "not Parquet: starts with b'Op,d'"),
    ("truncated.parquet", "truncated Parquet"),
    ("empty.parquet", "empty file (0 bytes)"),
])
def test_an_unusable_parquet_file_is_quarantined_whole(flights, name, reason):
    entries = {Path(f["file"]).name: f["reason"] for f in flights["meta"]["quarantined_files"]}
    assert reason in entries[name]
    rows = [(q["line"], q["reason"], q["record"]) for q in flights["quarantine"] if Path(q["source_file"]).name == name]
    assert rows == [(None, f"whole file: {entries[name]}", None)]


def test_every_flights_record_is_accounted_for_with_superseded_versions_and_deletes_as_dropped(flights):
    meta = flights["meta"]
    assert meta["columns_added"] == ["gate"]
    assert meta["rows_in"] == 6 + 4 + 1  # the records of the three readable files
    # dropped: key 1 x2, key 2's insert and its delete, key 3's insert, key 9's delete
    assert (meta["rows_clean"], meta["rows_quarantined"], meta["duplicates_dropped"]) == (3, 2, 6)
    assert meta["input_files"] == meta["files_read"] + len(meta["quarantined_files"]) == 7


def test_a_flight_moved_to_another_day_leaves_the_old_days_run_and_joins_the_new_one(spark, tmp_path):
    """Never expected (a flight's date is its partition), but not lost either way: every version of a key is
    ranked before the run keeps its days, so the old day's run drops the superseded record (accounted as
    dropped) instead of keeping it as that day's state, and the new day's run holds the final version."""
    moved = {**FLIGHT, "flight_id": 7, "day": 1, "time_hour": "2013-01-01T11:00:00Z"}
    rows = [
        {"Op": "I", "dms_commit_ts": "2013-01-01 08:00:00", **moved},
        {"Op": "U", "dms_commit_ts": "2013-01-01 20:00:00", **moved, "day": 2, "time_hour": "2013-01-02T11:00:00Z"},
        {"Op": "I", "dms_commit_ts": "2013-01-01 08:00:00", **FLIGHT, "flight_id": 8, "day": 1,
         "time_hour": "2013-01-01T11:00:00Z"},
    ]
    source = tmp_path / "changes.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    flights_contract = contracts.load("flights")
    runs = {}
    for day in ("2013-01-01", "2013-01-02"):
        folder = tmp_path / day
        params = {"contract": flights_contract, "inputs": [str(source)], "output": str(folder / "out"),
                  "quarantine": str(folder / "quarantine"),
                  "partition": {"column": "flight_date", "first": day, "last": day}}
        meta = load_job("clean").run(spark, params)
        clean = sorted((r["flight_id"], r["day"]) for r in spark.read.parquet(params["output"]).collect())
        runs[day] = (meta, clean)

    meta, clean = runs["2013-01-01"]
    assert clean == [(8, 1)]  # flight 7's insert is superseded by its update on the 2nd
    assert (meta["rows_in"], meta["rows_clean"], meta["duplicates_dropped"]) == (2, 1, 1)
    meta, clean = runs["2013-01-02"]
    assert clean == [(7, 2)]
    assert (meta["rows_in"], meta["rows_clean"], meta["duplicates_dropped"]) == (1, 1, 0)


def test_a_batch_of_only_bad_files_returns_its_accounting_instead_of_crashing(spark, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    run = run_job(spark, tmp_path, contracts.load("airlines"), [tmp_path / "empty.csv"])
    assert (run["meta"]["rows_in"], run["meta"]["rows_clean"], run["meta"]["files_read"]) == (0, 0, 0)
    assert run["meta"]["schema"] == [["carrier", "string"], ["name", "string"]]
    assert run["clean"] == []
    assert [(q["source_file"], q["reason"]) for q in run["quarantine"]] == [
        (str(tmp_path / "empty.csv"), "whole file: empty file (0 bytes)")
    ]
