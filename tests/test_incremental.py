"""After a full run, `lake simulate --days 3` rematerializes only the days the new data touches.

January 2013 is seeded and built with one full run (what `lake run` does). Then three days of business are
simulated (February 1-3: flights booked; flights of the previous three days revised or cancelled; a weather
revision a day). From there nothing is run by hand: the ingest pollers, the landing sensors and the
automation conditions decide, evaluated as the daemon would, and their requests are executed in order until
none is left. The days rematerialized must be those touched, the untouched days of January must keep their
materialization, and the clean flights must still equal the operations database row for row.
"""

import sqlite3
from collections import defaultdict
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from lake_platform import partitions
from lake_platform.definitions import build_definitions
from lake_platform.resources import local_resources
from lake_platform.sources.operations import days_with_data
from lake_platform.sources.seed import OPERATIONS_DB, seed
from lake_platform.sources.simulate import simulate

from lake_reads import relation  # tests/lake_reads.py

CLEAN_FLIGHTS = dg.AssetKey(["clean", "flights"])
WEATHER_DAYS = [dg.AssetKey(["clean", "weather"])]
# Every daily asset derived from the flights: the same days as clean/flights.
FLIGHT_DAYS = [
    dg.AssetKey(path.split("/"))
    for path in (
        "curated/flight_features", "curated/route_performance_daily", "warehouse/fct_flights",
        "warehouse/fct_route_performance_daily", "ml/delay_predictions", "serving/delay_predictions",
        "files/route_performance_daily",
    )
]
PARTITIONED = [CLEAN_FLIGHTS, *WEATHER_DAYS, *FLIGHT_DAYS]
# Aggregates over every day: refreshed once, however many days changed.
AGGREGATES = [["warehouse", "mart_carrier_ontime_monthly"], ["exports", "carrier_ontime_monthly"]]
# The staging views over the daily tables: unpartitioned (a view has no days), re-created and re-tested once
# after their table's days changed, not once per day.
VIEWS = [
    ["warehouse", name]
    for name in (
        "stg_lake__flights", "stg_lake__weather", "stg_lake__flight_features", "stg_lake__route_performance_daily"
    )
]


def days(first: str, last: str) -> set[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return {(start + timedelta(n)).isoformat() for n in range((end - start).days + 1)}


def materialized_partitions(instance, key, after_storage_id: int) -> set[str]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_storage_id), limit=10_000
    ).records
    return {r.partition_key for r in records}


def latest_storage_id(instance, keys) -> int:
    """The last materialization event of the full run, over the assets it materialized.

    Assets outside `materialize_everything` (the scheduled Iceberg maintenance) have no record yet.
    """
    latest = [instance.fetch_materializations(key, limit=1, ascending=False).records for key in keys]
    return max(records[0].storage_id for records in latest if records)


class Daemon:
    """The sensor and automation daemons of `dagster dev`, one deterministic tick at a time."""

    def __init__(self, defs, root, instance):
        self.defs, self.instance, self.resources = defs, instance, local_resources(root)
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None
        self.runs: list[tuple[list[str], dict]] = []

    def execute(self, keys, tags=None) -> None:
        job = self.defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=self.instance, asset_selection=list(keys), tags=tags or {}, raise_on_error=False
        )
        failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert result.success, failures
        self.runs.append((sorted(k.to_user_string() for k in keys), tags or {}))

    def sensor_tick(self) -> int:
        requested = 0
        for sensor in self.defs.sensors:
            if sensor.name == "lake_automation":
                continue
            with dg.build_sensor_context(
                instance=self.instance, cursor=self.cursors.get(sensor.name), resources=self.resources,
                definitions=self.defs,
            ) as context:
                result = sensor(context)
            if isinstance(result, dg.SkipReason) or result is None:
                continue
            self.cursors[sensor.name] = result.cursor if result.cursor is not None else self.cursors.get(sensor.name)
            for request in result.run_requests or []:
                self.execute(request.asset_selection, request.tags)
                requested += 1
        return requested

    def automation_tick(self) -> int:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.automation_cursor
        )
        self.automation_cursor = result.cursor
        by_days: dict[tuple[str, ...], list[dg.AssetKey]] = defaultdict(list)
        for key in self.defs.resolve_asset_graph().get_all_asset_keys():
            requested = result.get_requested_partitions(key)
            if requested:
                by_days[tuple(sorted(k for k in requested if k is not None))].append(key)
        # As the automation sensor's backfill would: the partitioned days first, then what follows them.
        for requested_days, keys in sorted(by_days.items(), key=lambda kv: kv[0] == ()):
            if requested_days:
                (first, last), = partitions.ranges(requested_days)  # one consecutive range here
                self.execute(keys, partitions.range_tags(first, last))
            else:
                self.execute(keys)
        return sum(len(k) for k in by_days.values())


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("incremental_lake")
    seed(root, months=[1], log=lambda _: None)
    defs = build_definitions("local", root)
    instance = dg.DagsterInstance.ephemeral()
    full = defs.resolve_job_def("materialize_everything").execute_in_process(
        instance=instance, raise_on_error=False, tags=partitions.range_tags(*days_with_data(root))
    )
    assert full.success
    daemon = Daemon(defs, root, instance)
    assert daemon.sensor_tick() == 0, "a lake built by a full run has nothing new for the sensors"
    assert daemon.automation_tick() == 0, "nor for the automation conditions"
    mark = latest_storage_id(instance, defs.resolve_asset_graph().get_all_asset_keys())

    simulate(root, days=3, log=lambda _: None)
    for _ in range(6):  # pollers -> landing sensors -> automation, until quiet
        if daemon.sensor_tick() + daemon.automation_tick() == 0:
            break
    else:
        pytest.fail(f"the daemons never settled: {daemon.runs}")
    return root, instance, mark, daemon


def test_only_the_days_touched_rematerialize(simulated):
    _, instance, mark, daemon = simulated
    new_days = days("2013-02-01", "2013-02-03")
    revisable = days("2013-01-29", "2013-02-02")  # updates and deletes reach back three days
    flights = materialized_partitions(instance, CLEAN_FLIGHTS, mark)
    assert new_days <= flights <= new_days | revisable, (sorted(flights), daemon.runs)
    for key in WEATHER_DAYS:
        assert materialized_partitions(instance, key, mark) == new_days, key
    for key in FLIGHT_DAYS:
        assert materialized_partitions(instance, key, mark) == flights, key
    untouched = days("2013-01-01", "2013-01-28")
    for key in PARTITIONED:
        assert not materialized_partitions(instance, key, mark) & untouched, key


def test_every_daily_asset_is_daily_partitioned_and_each_day_ran_once(simulated):
    _, instance, mark, daemon = simulated
    graph = build_definitions("local", simulated[0]).resolve_asset_graph()
    for key in PARTITIONED:
        assert graph.get(key).partitions_def == partitions.DAILY, key
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=mark), limit=1000
        ).records
        assert len(records) == len({r.partition_key for r in records}), (key, daemon.runs)


def test_aggregates_and_views_refresh_once(simulated):
    """Three new days and their revisions reach the monthly mart and its export in one refresh each
    (requested on the same tick as the days they wait for), not once per day or per upstream run; so do the
    staging views (re-created, and their dbt tests rerun, over the changed tables)."""
    _, instance, mark, daemon = simulated
    for key in [*AGGREGATES, *VIEWS]:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), after_storage_id=mark), limit=10
        ).records
        assert len(records) == 1, (key, daemon.runs)


def test_the_warehouse_facts_and_serving_match_the_clean_flights(simulated):
    """The days replaced one range at a time leave fct_flights equal to the clean flights, and the serving
    table one item per predicted flight (the days after the model's cutoff)."""
    root, *_ = simulated
    clean = duckdb.sql(
        f"select flight_id, arr_delay from {relation(root, 'clean', 'flights')} order by flight_id"
    ).fetchall()
    with duckdb.connect(str(root / "warehouse" / "lake.duckdb"), read_only=True) as con:
        facts = con.execute("select flight_id, arr_delay from fct_flights order by flight_id").fetchall()
    assert facts == clean
    predicted = duckdb.sql(f"select flight_id from {relation(root, 'ml', 'delay_predictions')}").fetchall()
    assert predicted, "the simulated days are after the model's cutoff: they are scored"
    serving = local_resources(root)["serving"]
    assert serving.count() == len(predicted)
    assert all(serving.get(flight_id) is not None for (flight_id,) in predicted[-50:])


def test_clean_flights_still_reconcile_with_the_operations_database(simulated):
    root, *_ = simulated
    columns = "flight_id, year, month, day, dep_time, arr_time, dep_delay, arr_delay, carrier, tailnum"
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        source = pd.read_sql_query(f"select {columns} from flights order by flight_id", db)
    clean = duckdb.sql(
        f"select {columns} from {relation(root, 'clean', 'flights')} order by flight_id"
    ).df()
    assert len(clean) == len(source)
    pd.testing.assert_frame_equal(clean.astype(source.dtypes.to_dict()), source, check_dtype=False)
    with duckdb.connect(str(root / "warehouse" / "lake.duckdb"), read_only=True) as con:
        (warehouse,), = con.execute("select count(*) from fct_flights").fetchall()
    assert warehouse == len(source)
