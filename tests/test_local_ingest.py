"""The local ingest stand-ins write what DMS and Data Exchange write to S3, and only once."""

import json
import sqlite3

import dagster as dg
import pyarrow.parquet as pq

from lake_platform.adapters.local_ingest import LocalDataExchange, LocalDms
from lake_platform.adapters.storage import LocalObjectStore


def make_db(path, rows):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, carrier TEXT, dep_time INTEGER)")
        db.executemany("INSERT INTO flights VALUES (?, ?, ?)", rows)


def test_dms_full_load_writes_numbered_load_files_with_op_and_commit_timestamp(tmp_path):
    make_db(tmp_path / "ops.db", [(i, "UA", None if i == 3 else 500 + i) for i in range(1, 6)])
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    dms = LocalDms(source_url=f"sqlite:///{tmp_path / 'ops.db'}", rows_per_file=2,
                   state_path=str(tmp_path / "state.json"))
    report = dms.replicate(dg.build_asset_context(), store)
    keys = [o.key for o in report.objects]
    assert keys == [f"landing/dms/ops/flights/LOAD0000000{i}.parquet" for i in (1, 2, 3)]
    table = pq.read_table([store.uri(k) for k in keys][0])
    assert table.column_names[:3] == ["Op", "dms_commit_ts", "flight_id"]
    rows = [r for k in keys for r in pq.read_table(store.uri(k)).to_pylist()]
    assert [r["flight_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["Op"] for r in rows} == {"I"}
    assert rows[2]["dep_time"] is None
    assert report.rows == {"flights": 5}


def test_dms_does_not_repeat_a_completed_full_load(tmp_path):
    make_db(tmp_path / "ops.db", [(1, "UA", 500)])
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    dms = LocalDms(source_url=f"sqlite:///{tmp_path / 'ops.db'}", state_path=str(tmp_path / "state.json"))
    dms.replicate(dg.build_asset_context(), store)
    before = store.list("landing/dms/")
    again = dms.replicate(dg.build_asset_context(), store)
    assert again.rows == {"flights": 0}
    assert store.list("landing/dms/") == before
    assert json.loads((tmp_path / "state.json").read_text())["tables"]["flights"]["rows"] == 1


def test_data_exchange_exports_each_revision_once_in_revision_id_slash_asset_layout(tmp_path):
    provider = tmp_path / "provider" / "weather"
    for rev, created in (("rev2", "2013-02-28T00:00:00Z"), ("rev1", "2013-01-28T00:00:00Z")):
        (provider / rev).mkdir(parents=True)
        (provider / rev / "revision.json").write_text(json.dumps({"CreatedAt": created}))
        (provider / rev / f"weather_{rev}.csv").write_text("origin\nEWR\n")
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    adx = LocalDataExchange(provider_dir=str(tmp_path / "provider"))
    first = adx.export_new_revisions(dg.build_asset_context(), store)
    assert [o.key for o in first.objects] == [
        "landing/data_exchange/weather/rev1/weather_rev1.csv",
        "landing/data_exchange/weather/rev2/weather_rev2.csv",
    ]
    assert adx.export_new_revisions(dg.build_asset_context(), store).objects == []
