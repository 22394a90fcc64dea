"""The DMS emulator's CDC: changes after the full load land once each, in DMS's file format, across restarts."""

import csv
import io
import json
import re
import sqlite3

import dagster as dg
import pyarrow.parquet as pq
import pytest

from lake_platform.adapters.local_ingest import LocalDms
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.sources.capture import install_sqlite_capture

PREFIX = "landing/dms/ops/flights/"
CDC_NAME = re.compile(r"^\d{8}-\d{9}\.(parquet|csv)$")


@pytest.fixture
def lake(tmp_path):
    db = tmp_path / "ops.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, carrier TEXT, dep_delay REAL)")
        rows = [(1, "UA", 1.5), (2, "AA", None), (3, "B6", 7.0)]
        con.executemany("INSERT INTO flights VALUES (?, ?, ?)", rows)
        install_sqlite_capture(con, "flights")
    return tmp_path


def dms(lake, **options):
    """A new task instance each time, as after a process restart: only `state_path` carries over."""
    return LocalDms(source_url=f"sqlite:///{lake / 'ops.db'}", state_path=str(lake / "state.json"), **options)


def store(lake):
    return LocalObjectStore(root=str(lake / "lake"))


def change(lake, *statements):
    with sqlite3.connect(lake / "ops.db") as con:
        for sql in statements:
            con.execute(sql)


def replicate(lake, **options):
    return dms(lake, **options).replicate(dg.build_asset_context(), store(lake))


def rows(lake, key):
    return pq.read_table(store(lake).uri(key)).to_pylist()


def cdc_keys(lake):
    return [o.key for o in store(lake).list(PREFIX) if CDC_NAME.match(o.key.rsplit("/", 1)[1])]


def test_inserts_updates_and_deletes_after_the_full_load_land_as_one_cdc_file_in_commit_order(lake):
    replicate(lake)
    change(
        lake,
        "INSERT INTO flights VALUES (4, 'DL', 0.0)",
        "UPDATE flights SET dep_delay = 12.5 WHERE flight_id = 2",
        "DELETE FROM flights WHERE flight_id = 3",
    )
    report = replicate(lake)
    assert [o.key for o in report.objects] == cdc_keys(lake) and len(cdc_keys(lake)) == 1
    changes = rows(lake, cdc_keys(lake)[0])
    assert list(changes[0]) == ["Op", "dms_commit_ts", "flight_id", "carrier", "dep_delay"]
    assert [(r["Op"], r["flight_id"], r["carrier"], r["dep_delay"]) for r in changes] == [
        ("I", 4, "DL", 0.0),
        ("U", 2, "AA", 12.5),
        ("D", 3, "B6", 7.0),  # a delete carries the row's last values, key included
    ]
    load_ts = rows(lake, PREFIX + "LOAD00000001.parquet")[0]["dms_commit_ts"]
    stamps = [r["dms_commit_ts"] for r in changes]
    assert load_ts < stamps[0] and stamps == sorted(stamps)
    assert report.rows == {"flights": 3}


def test_changes_made_before_the_full_load_are_in_the_snapshot_and_not_repeated_as_cdc(lake):
    change(lake, "UPDATE flights SET carrier = 'WN' WHERE flight_id = 1",
           "DELETE FROM flights WHERE flight_id = 2")
    first = replicate(lake)
    loaded = rows(lake, PREFIX + "LOAD00000001.parquet")
    assert [(r["flight_id"], r["carrier"]) for r in loaded] == [(1, "WN"), (3, "B6")]
    assert json.loads((lake / "state.json").read_text())["tables"]["flights"]["position"] == 2
    assert first.rows == {"flights": 2}
    assert replicate(lake).rows == {"flights": 0}
    assert cdc_keys(lake) == []


def test_the_position_survives_a_restart_so_each_change_is_written_once(lake):
    replicate(lake)
    change(lake, "UPDATE flights SET dep_delay = 3.0 WHERE flight_id = 1")
    replicate(lake)
    change(lake, "DELETE FROM flights WHERE flight_id = 1")
    replicate(lake)
    assert replicate(lake).objects == []
    keys = cdc_keys(lake)
    assert len(keys) == 2 and keys == sorted(keys)  # later batches sort later, as DMS's timestamps do
    assert [(r["Op"], r["flight_id"]) for k in keys for r in rows(lake, k)] == [("U", 1), ("D", 1)]


def test_a_crash_after_writing_a_cdc_file_before_saving_the_position_rewrites_the_same_file(lake, monkeypatch):
    replicate(lake)
    change(lake, "INSERT INTO flights VALUES (4, 'DL', 0.0)")
    put = LocalObjectStore.put_bytes

    def put_then_die(self, key, data):
        put(self, key, data)
        raise KeyboardInterrupt("killed after the file landed")

    monkeypatch.setattr(LocalObjectStore, "put_bytes", put_then_die)
    with pytest.raises(KeyboardInterrupt):
        replicate(lake)
    monkeypatch.undo()
    [crashed] = cdc_keys(lake)
    written = store(lake).get_bytes(crashed)
    change(lake, "UPDATE flights SET carrier = 'XX' WHERE flight_id = 4")
    report = replicate(lake)
    assert store(lake).get_bytes(crashed) == written  # same changes, same key: overwritten, not duplicated
    keys = cdc_keys(lake)
    assert [o.key for o in report.objects] == keys and keys[0] == crashed
    assert [(r["Op"], r["flight_id"], r["carrier"]) for k in keys for r in rows(lake, k)] == [
        ("I", 4, "DL"),
        ("U", 4, "XX"),
    ]


def test_csv_format_writes_header_rows_and_empty_nulls(lake):
    change(lake, "INSERT INTO flights VALUES (5, 'DL', NULL)")  # before the load: in the snapshot
    replicate(lake, data_format="csv")
    change(lake, "DELETE FROM flights WHERE flight_id = 2")
    replicate(lake, data_format="csv")
    load = store(lake).get_bytes(PREFIX + "LOAD00000001.csv").decode()
    assert load.splitlines()[0] == "Op,dms_commit_ts,flight_id,carrier,dep_delay"
    assert [r[2:] for r in csv.reader(io.StringIO(load))][1:] == [
        ["1", "UA", "1.5"], ["2", "AA", ""], ["3", "B6", "7.0"], ["5", "DL", ""],
    ]
    [key] = cdc_keys(lake)
    assert key.endswith(".csv")
    [header, deleted] = list(csv.reader(io.StringIO(store(lake).get_bytes(key).decode())))
    assert header[0] == "Op" and (deleted[0], deleted[2:]) == ("D", ["2", "AA", ""])


def test_a_full_load_replaces_files_left_by_an_interrupted_attempt(lake):
    store(lake).put_bytes(PREFIX + "LOAD00000009.parquet", b"from an attempt that never completed")
    replicate(lake)
    assert [o.key for o in store(lake).list(PREFIX)] == [PREFIX + "LOAD00000001.parquet"]


def test_without_a_change_table_the_task_does_the_full_load_and_says_cdc_is_off(tmp_path):
    with sqlite3.connect(tmp_path / "ops.db") as con:
        con.execute("CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, carrier TEXT, dep_delay REAL)")
        con.execute("INSERT INTO flights VALUES (1, 'UA', 2.0)")
    report = replicate(tmp_path)
    assert report.rows == {"flights": 1}
    assert report.details["cdc"].startswith("off")


def test_full_load_files_are_numbered_in_hexadecimal_as_dms_numbers_them(lake):
    change(lake, *[f"INSERT INTO flights VALUES ({n}, 'UA', 0.0)" for n in range(4, 12)])  # 11 rows
    replicate(lake, rows_per_file=1)
    names = sorted(o.key.rsplit("/", 1)[1] for o in store(lake).list(PREFIX))
    assert names == [f"LOAD{n:08X}.parquet" for n in range(1, 12)]
    assert names[9:] == ["LOAD0000000A.parquet", "LOAD0000000B.parquet"]
