"""The cleaning job on a corpus of bad inputs (tests/bad_inputs/): each case's outcome, and nothing lost.

Cases are batched into three job runs (planes as CSV, gauges as CSV under a test contract with an int key
and the special types, flights as DMS Parquet) because a Spark job costs seconds here; each case is then
asserted on its own. Every file holds its own keys, so a clean row tells which file it came from. The README's
"Onboarding a dataset" section has the table of what happens to each class of bad input.
"""

import csv
import gzip
import io
import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

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
        "utf16.csv": f"{PLANES_HEADER}\nNH99,{GOOD_PLANE}\n".encode("utf-16"),
        "nul_byte.csv": f"{PLANES_HEADER}\nNZ01,{GOOD_PLANE}\x00\n".encode(),
        "ends_inside_a_character.csv": f"{PLANES_HEADER}\nNZ02,{GOOD_PLANE} é\n".encode()[:-2],
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
    "utf16.csv": "not UTF-8 text: NUL byte at offset",
    "nul_byte.csv": "not UTF-8 text: NUL byte at offset",
    "ends_inside_a_character.csv": "not UTF-8: the file ends inside a multi-byte character",
    "header_with_spaces.csv": "lacks declared column(s) year, seats (the header's ' year' has surrounding spaces; "
                              "'seats ' has surrounding spaces: column names are matched exactly)",
    "header_case.csv": "lacks declared column(s) year (the header's 'Year' differs from 'year' in case",
    "repeated_header_column.csv": "header repeats a column name",
    "only_blank_lines.csv": "no header: the file holds only blank lines",
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
        {3: "malformed CSV record: 3 field(s)", 4: "malformed CSV record: 10 field(s)",
         5: "malformed CSV record: unexpected end of data"}, {"N101"}),
    "wrong_types.csv": ({3: "year: not a valid int", 4: "seats: not a valid int"}, {"N201"}),
    "out_of_range.csv": (
        {2: "year: violates year between 1900 and 2014", 3: "engines: violates engines between 0 and 8",
         4: "seats: violates seats > 0"}, {"N304"}),
    "duplicate_keys.csv": ({4: "tailnum: required value is missing"}, {"N401"}),
    "extra_column.csv": ({}, {"N501"}),
    "header_only.csv": ({}, set()),
    "crlf_and_blank_lines.csv": ({}, {"N901", "N902"}),
    "good.csv.gz": ({}, {"NC01"}),
    "ten_mb_line.csv": ({3: "malformed CSV record: 1 field(s)"}, {"ND01"}),
    "ünïcødé 航班.csv": ({}, {"NE01"}),
    "we[ir]d ?*{x},c #1 %41.csv": ({}, {"NF01"}),
    "cr_only_line_endings.csv": ({}, {"NR01", "NR02"}),
    "mixed_line_endings_no_final_break.csv": ({}, {"NM01", "NM02", "NM03"}),
    "quoted_newlines_rfc4180.csv": ({}, {"NQ01", "NQ02", "NQ03"}),
    "quoted_header_and_fields.csv": ({}, {"NH01"}),
    "bom_crlf.csv": ({}, {"NB01"}),
    "unterminated_quote.csv": ({3: "malformed CSV record: unexpected end of data"}, {"NU01"}),
    "text_after_closing_quote.csv": ({2: "malformed CSV record: ',' expected after '\"'"}, {"NU12"}),
    "decimals_in_int_columns.csv": (
        {2: "year: not a valid int (an integer literal is required)",
         3: "seats: not a valid int (an integer literal is required)",
         4: "engines: not a valid int (an integer literal is required)",
         5: "seats: not a valid int (an integer literal is required)"}, {"NI05"}),
    "int_overflow.csv": ({2: "seats: not a valid int (out of range for int)",
                          3: "seats: not a valid int (out of range for int)"}, {"NO03"}),
    "nonfinite_and_overflowing_doubles.csv": (
        {2: "speed: not a valid double (NaN and Infinity need allow_nonfinite: true)",
         3: "speed: not a valid double (NaN and Infinity need allow_nonfinite: true)",
         4: "speed: not a valid double (out of range: overflows to Infinity)",
         5: "speed: not a valid double (underflows to 0)",
         6: "speed: not a valid double (NaN and Infinity need allow_nonfinite: true)"}, {"NN06"}),
    "padded_and_signed_numbers.csv": ({}, {"NP01", "NP02"}),
    "na_is_data_unless_declared.csv": ({2: "year: not a valid int (an integer literal is required)"}, {"NA02"}),
    "blank_lines_between_records.csv": ({}, {"NT01", "NT02", "NT03"}),
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
    # Records of the files read, counted here with Python's csv module: records after the header, blank lines aside.
    records = sum(csv_records(p) for p in planes["inputs"] if p not in quarantined)
    assert meta["rows_in"] == records
    assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["duplicates_dropped"]
    record_rows = [q for q in planes["quarantine"] if not q["reason"].startswith("whole file: ")]
    assert (meta["rows_clean"], meta["rows_quarantined"]) == (len(planes["clean"]), len(record_rows))
    # One more quarantine row per file rejected whole, outside the record accounting.
    assert len(planes["quarantine"]) - len(record_rows) == meta["files_quarantined"] == len(quarantined)
    assert sorted(r["tailnum"] for r in planes["clean"]) == sorted(set().union(*(t for _, t in RECORD_CASES.values())))


def csv_records(path: str) -> int:
    data = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), strict=False))
    return sum(1 for row in rows[1:] if row and "".join(row).strip(" \t"))


def test_rfc4180_records_keep_their_line_breaks_quotes_and_first_line(planes):
    rows = {r["tailnum"]: r for r in planes["clean"]}
    assert rows["NQ01"]["manufacturer"] == "BOEING\nCOMMERCIAL, AIRPLANES"
    assert rows["NQ02"]["manufacturer"] == 'say "hi"' and rows["NQ02"]["engine"] == "Turbo-\r\nfan"
    lines = {q["line"]: q["record"] for q in planes["quarantine"] if q["source_file"].endswith("unterminated_quote.csv")}
    assert lines == {3: f'"NU02,2005,{GOOD_PLANE.split(",", 1)[1]}\nNU03,2006,{GOOD_PLANE.split(",", 1)[1]}'}


def test_typed_values_are_exact(planes):
    rows = {r["tailnum"]: r for r in planes["clean"]}
    assert rows["NA02"]["engine"] == "NA"  # "NA" is data in a string column unless the contract declares it null
    assert (rows["NP01"]["year"], rows["NP01"]["engines"], rows["NP01"]["seats"]) == (2004, 2, 150)
    assert (rows["NP02"]["year"], rows["NP02"]["engines"], rows["NP02"]["speed"]) == (2004, 2, None)
    assert rows["NO03"]["seats"] == 2147483647
    assert rows["NN06"]["speed"] == 5e-324


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


GAUGES = CORPUS / "gauges"
# Arrival order: z_sent_first arrives before a_sent_second, whose name sorts first.
GAUGE_FILES = ["decimal_in_int_key.csv", "nan_does_not_pass_a_check.csv", "allow_nonfinite.csv", "dates_iso_only.csv",
               "booleans_true_false_only.csv", "null_markers_per_dataset_and_column.csv", "z_sent_first.csv",
               "a_sent_second.csv"]


@pytest.fixture(scope="module")
def gauges(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gauges")
    contract = yaml.safe_load((GAUGES / "contract.yml").read_text())
    contracts.validate(contract, "gauges/contract.yml")
    run = run_job(spark, tmp, contract, [Path(shutil.copy(GAUGES / n, tmp)) for n in GAUGE_FILES])
    run["by_id"] = {r["gauge_id"]: r for r in run["clean"]}
    run["reasons"] = {(Path(q["source_file"]).name, q["line"]): q["reason"] for q in run["quarantine"]}
    return run


# file -> ({line: reason}, gauge ids it leaves in the clean table)
GAUGE_CASES = {
    "decimal_in_int_key.csv": ({3: "gauge_id: not a valid int (an integer literal is required)"}, {5}),
    "nan_does_not_pass_a_check.csv": (
        {2: "reading: not a valid double (NaN and Infinity need allow_nonfinite: true)",
         3: "reading: violates reading > 0",
         4: "reading: not a valid double (out of range: overflows to Infinity)"}, {13}),
    "allow_nonfinite.csv": ({4: "ratio: not a valid double (out of range: overflows to Infinity)"}, {20, 21, 23}),
    "dates_iso_only.csv": (
        {3: "read_on: not a valid date (YYYY-MM-DD is required)", 4: "read_on: not a valid date (YYYY-MM-DD is required)",
         5: "read_on: not a valid date (not a date of the calendar)",
         6: "read_on: not a valid date (YYYY-MM-DD is required)",
         8: "read_on: not a valid date (not a date of the calendar)"}, {30, 35}),
    "booleans_true_false_only.csv": (
        {4: "calibrated: not a valid boolean (true or false is required)",
         5: "calibrated: not a valid boolean (true or false is required)"}, {40, 41}),
    "null_markers_per_dataset_and_column.csv": ({}, {50, 51, 52, 53}),
    "z_sent_first.csv": ({}, set()),
    "a_sent_second.csv": ({}, {60}),
}


@pytest.mark.parametrize("name,expected", GAUGE_CASES.items(), ids=list(GAUGE_CASES))
def test_values_that_do_not_convert_exactly_are_quarantined_with_their_rule(gauges, name, expected):
    lines, ids = expected
    got = {line: reason for (file, line), reason in gauges["reasons"].items() if file == name}
    assert got == lines
    assert ids <= set(gauges["by_id"])


def test_a_decimal_key_never_replaces_the_real_record(gauges):
    assert gauges["by_id"][5]["note"] == "real five"
    assert gauges["meta"]["duplicates_dropped"] == 1  # only key 60's first version


def test_exact_values_of_the_special_types(gauges):
    by_id = gauges["by_id"]
    assert by_id[13]["reading"] == 5.0
    assert math.isnan(by_id[20]["ratio"]) and by_id[21]["ratio"] == -math.inf and by_id[23]["ratio"] == math.inf
    assert str(by_id[30]["read_on"]) == "2013-01-05" and str(by_id[35]["read_on"]) == "2012-02-29"
    assert (by_id[40]["calibrated"], by_id[41]["calibrated"]) == (True, False)


def test_null_markers_are_the_contracts_dataset_wide_or_per_column(gauges):
    by_id = gauges["by_id"]
    # Dataset markers ["", "NA"] in the typed columns; the note column declares ["-"] only.
    assert (by_id[50]["reading"], by_id[50]["read_on"], by_id[50]["note"]) == (None, None, "NA")
    assert (by_id[51]["note"], by_id[52]["note"], by_id[53]["note"]) == (None, "", " spaced ")


def test_the_later_arrival_wins_whatever_the_file_names(gauges):
    assert gauges["by_id"][60]["note"] == "sent second"


def test_every_gauge_record_is_accounted_for(gauges):
    meta = gauges["meta"]
    records = sum(csv_records(p) for p in gauges["inputs"])
    assert meta["rows_in"] == records == meta["rows_clean"] + meta["rows_quarantined"] + meta["duplicates_dropped"]
    assert meta["rows_quarantined"] == sum(len(lines) for lines, _ in GAUGE_CASES.values())
    assert meta["files_quarantined"] == 0


@pytest.fixture(scope="module")
def flights_typed(spark, tmp_path_factory):
    """DMS Parquet files whose values do not convert exactly, and two files with the same commit time."""
    tmp = tmp_path_factory.mktemp("flights_typed")

    def change(flight_id, ts="2013-01-02 10:00:00", **values):
        return {"Op": "I", "dms_commit_ts": ts, **FLIGHT, "flight_id": flight_id, **values}

    # A source that retyped dep_time to double: 517.0 is no integer literal, so no value fits: rejected whole.
    retyped = pa.Table.from_pylist([change(40, dep_time=517.0), change(41, dep_time=518.0)])
    pq.write_table(retyped, tmp / "dep_time_as_double.parquet")
    pq.write_table(pa.Table.from_pylist([
        change(42, distance=float("nan")), change(43, distance=float("inf")), change(44, distance=1400.0),
    ]), tmp / "nonfinite_distance.parquet")
    # Same key, same commit time: the file that arrived later wins, though its name sorts first.
    pq.write_table(pa.Table.from_pylist([change(45, arr_delay=1.0)]), tmp / "20130102-150000000.parquet")
    pq.write_table(pa.Table.from_pylist([change(45, arr_delay=2.0)]), tmp / "20130102-140000000.parquet")
    inputs = [tmp / n for n in ("dep_time_as_double.parquet", "nonfinite_distance.parquet",
                                "20130102-150000000.parquet", "20130102-140000000.parquet")]
    return run_job(spark, tmp, contracts.load("flights"), inputs)


def test_a_parquet_column_retyped_to_double_is_rejected_whole(flights_typed):
    reasons = {Path(f["file"]).name: f["reason"] for f in flights_typed["meta"]["quarantined_files"]}
    assert reasons == {"dep_time_as_double.parquet":
                       "no value of column(s) dep_time (int) fits the declared type: retyped upstream?"}


def test_nan_and_infinity_in_parquet_are_quarantined_not_checked(flights_typed):
    got = sorted((json.loads(q["record"])["flight_id"], q["reason"]) for q in flights_typed["quarantine"]
                 if q["record"] is not None)
    assert got == [("42", "distance: not a valid double (NaN and Infinity need allow_nonfinite: true)"),
                   ("43", "distance: not a valid double (NaN and Infinity need allow_nonfinite: true)")]


def test_equal_commit_times_are_settled_by_arrival(flights_typed):
    final = {r["flight_id"]: r["arr_delay"] for r in flights_typed["clean"]}
    assert final == {44: 0.0, 45: 2.0}
    meta = flights_typed["meta"]
    assert (meta["rows_in"], meta["rows_clean"], meta["rows_quarantined"], meta["duplicates_dropped"]) == (5, 2, 2, 1)
