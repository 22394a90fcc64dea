"""Changes in the operations database reach the clean table through DMS CDC files, row for row.

Seeds January, builds clean/flights (DMS full load -> raw -> Glue clean job), then simulates two more
days of business (inserts, revised actuals, deleted bookings), rebuilds, and compares the clean table
with the database's current state.
"""

import sqlite3

import dagster as dg
import duckdb
import pandas as pd

from lake_platform import partitions
from lake_platform.definitions import build_definitions
from lake_platform.sources.operations import days_with_data
from lake_platform.sources.seed import OPERATIONS_DB, seed
from lake_platform.sources.simulate import simulate

from lake_reads import relation  # tests/lake_reads.py

FLIGHTS_PATH = [dg.AssetKey(["landing", "flights"]), dg.AssetKey(["raw", "flights"]), dg.AssetKey(["clean", "flights"])]


def build_clean_flights(root):
    defs = build_definitions("local", root)
    job = dg.define_asset_job("flights_path", selection=dg.AssetSelection.assets(*FLIGHTS_PATH))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("flights_path").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=partitions.range_tags(*days_with_data(root))
    )
    assert result.success
    mats = [e.event_specific_data.materialization for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    return {m.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in m.metadata.items()} for m in mats}


def table_state(root):
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        source = pd.read_sql_query("select flight_id, dep_time, arr_time, dep_delay, arr_delay from flights", db)
    clean = duckdb.sql(
        f"select flight_id, dep_time, arr_time, dep_delay, arr_delay from {relation(root, 'clean', 'flights')}"
    ).df()
    key = ["flight_id"]
    return (
        source.sort_values(key).reset_index(drop=True).astype("float64"),
        clean.sort_values(key).reset_index(drop=True).astype("float64"),
    )


def test_inserts_updates_and_deletes_in_the_source_reach_the_clean_table(tmp_path, spark):
    root = tmp_path / "lake"
    seed(root, months=[1], log=lambda _: None)
    build_clean_flights(root)
    days = simulate(root, days=2, log=lambda _: None).days
    assert sum(d.updated for d in days) > 0 and sum(d.deleted for d in days) > 0

    meta = build_clean_flights(root)["clean/flights"]
    source, clean = table_state(root)
    assert len(source) == 27_004 + sum(d.inserted for d in days) - sum(d.deleted for d in days)
    pd.testing.assert_frame_equal(clean, source)
    assert meta["deletes_applied"] == sum(d.deleted for d in days)
