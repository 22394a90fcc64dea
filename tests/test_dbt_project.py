"""The dbt project built end to end with dbt-duckdb against a tiny synthetic lake.

The lake holds every source table with the exact clean/curated schemas (common.md), stored as the lake
stores them: the clean and curated tables as Iceberg tables of the local catalog (committed here with PyIceberg; dbt
reads them through the profile's plugin, lake_platform/adapters/lake_views.py), the others as
`<zone>/_versions/<table>/<version>/part-0.parquet` behind a `<zone>/<table>` symlink. The figures asserted below are computed by hand from the rows written here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_dbt import DbtProject
from dbt.cli.main import dbtRunner

from lake_platform import partitions
from lake_platform.adapters.catalog import ICEBERG_ZONES, LocalCatalog
from lake_platform.adapters.iceberg import LocalIcebergCatalog
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.exports import build_export_assets
from lake_platform.raw.inventory import COLUMNS as INVENTORY_COLUMNS
from lake_platform.settings import DBT_PROJECT_DIR
from lake_platform.warehouse import build_warehouse_assets, warehouse_resources

UTC = dt.timezone.utc
ARROW_TYPES = {
    "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64(), "string": pa.string(),
    "boolean": pa.bool_(), "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),  # Spark writes TIMESTAMP_MICROS adjusted to UTC
}
# The lake's table contracts, as written in common.md (Spark simpleString types).
SCHEMAS = {
    "clean/flights": "flight_id bigint, year int, month int, day int, dep_time int, sched_dep_time int, "
    "dep_delay double, arr_time int, sched_arr_time int, arr_delay double, carrier string, flight int, "
    "tailnum string, origin string, dest string, air_time double, distance double, hour int, minute int, "
    "time_hour timestamp, flight_date date",
    "clean/weather": "origin string, year int, month int, day int, hour int, temp double, dewp double, "
    "humid double, wind_dir double, wind_speed double, wind_gust double, precip double, pressure double, "
    "visib double, time_hour timestamp",
    "clean/planes": "tailnum string, year int, type string, manufacturer string, model string, engines int, "
    "seats int, speed double, engine string",
    "clean/airports": "faa string, name string, lat double, lon double, alt int, tz double, dst string, "
    "tzone string",
    "clean/airlines": "carrier string, name string",
    "curated/flight_features": "flight_id bigint, flight_date date, time_hour timestamp, year int, "
    "month int, day int, day_of_week int, sched_dep_hour int, sched_dep_time int, carrier string, "
    "flight int, tailnum string, origin string, dest string, distance double, dep_delay double, "
    "arr_delay double, cancelled boolean, arrived_late int, temp double, dewp double, humid double, wind_dir double, "
    "wind_speed double, wind_gust double, precip double, pressure double, visib double, plane_year int, "
    "plane_seats int, plane_engines int, plane_manufacturer string, plane_type string",
    "curated/route_performance_daily": "flight_date date, origin string, dest string, flights bigint, "
    "cancelled bigint, arrived bigint, arrived_late bigint, on_time_rate double, mean_dep_delay double, "
    "mean_arr_delay double",
    "raw/object_inventory": ", ".join(f"{name} {kind}" for name, kind in INVENTORY_COLUMNS),
}


def arrow_schema(contract: str) -> pa.Schema:
    fields = (column.split() for column in contract.split(","))
    return pa.schema([(name, ARROW_TYPES[type_]) for name, type_ in fields])


# (flight_id, date, carrier, origin, dest, tailnum, sched_dep_time, dep_delay, arr_delay); a flight
# that never departed has dep_delay None (cancelled); one that departed without arr_delay was diverted.
FLIGHTS = [
    (1, dt.date(2013, 1, 1), "AA", "JFK", "LAX", "N1AA", 900, 2.0, 10.0),  # on time
    (2, dt.date(2013, 1, 2), "AA", "JFK", "LAX", "N1AA", 900, 30.0, 25.0),  # late
    (3, dt.date(2013, 1, 2), "AA", "LGA", "ORD", None, 1300, None, None),  # cancelled
    (4, dt.date(2013, 1, 1), "UA", "EWR", "SFO", "N2UA", 700, -3.0, -5.0),  # early
    (5, dt.date(2013, 2, 1), "UA", "EWR", "SFO", "N9XX", 700, 0.0, 15.0),  # exactly 15: not late
    (6, dt.date(2013, 2, 1), "UA", "EWR", "SJU", "N2UA", 1800, 5.0, None),  # diverted; SJU not in airports
    (7, dt.date(2013, 3, 5), "B6", "JFK", "BOS", "N3B6", 600, None, None),  # B6's only flight, cancelled
]
AIRLINES = [("AA", "American Airlines Inc."), ("UA", "United Air Lines Inc."), ("B6", "JetBlue Airways")]


def flights_rows(flights=FLIGHTS) -> list[dict]:
    rows = []
    for fid, day, carrier, origin, dest, tailnum, sched, dep_delay, arr_delay in flights:
        departed = dep_delay is not None
        rows.append({
            "flight_id": fid, "year": day.year, "month": day.month, "day": day.day,
            "dep_time": sched + int(dep_delay) if departed else None, "sched_dep_time": sched,
            "dep_delay": dep_delay, "arr_time": sched + 300 if arr_delay is not None else None,
            "sched_arr_time": sched + 300, "arr_delay": arr_delay, "carrier": carrier, "flight": 100 + fid,
            "tailnum": tailnum, "origin": origin, "dest": dest, "air_time": 290.0 if departed else None,
            "distance": 2475.0, "hour": sched // 100, "minute": sched % 100,
            "time_hour": dt.datetime(day.year, day.month, day.day, sched // 100 + 5, tzinfo=UTC),
            "flight_date": day,
        })
    return rows


def feature_rows(flights: list[dict]) -> list[dict]:
    return [
        {
            **{k: f[k] for k in ("flight_id", "flight_date", "time_hour", "year", "month", "day",
                                 "sched_dep_time", "carrier", "flight", "tailnum", "origin", "dest",
                                 "distance", "dep_delay", "arr_delay")},
            "day_of_week": f["flight_date"].isoweekday(), "sched_dep_hour": f["hour"],
            "cancelled": f["dep_time"] is None,
            "arrived_late": None if f["arr_delay"] is None else int(f["arr_delay"] > 15),
            "temp": 40.0, "plane_year": 2004 if f["tailnum"] == "N1AA" else None,
        }
        for f in flights
    ]


def route_rows(flights: list[dict]) -> list[dict]:
    routes: dict[tuple, list[dict]] = {}
    for f in flights:
        routes.setdefault((f["flight_date"], f["origin"], f["dest"]), []).append(f)
    rows = []
    for (day, origin, dest), fs in sorted(routes.items()):
        arrived = [f["arr_delay"] for f in fs if f["arr_delay"] is not None]
        departed = [f["dep_delay"] for f in fs if f["dep_delay"] is not None]
        late = sum(d > 15 for d in arrived)
        rows.append({
            "flight_date": day, "origin": origin, "dest": dest, "flights": len(fs),
            "cancelled": sum(f["dep_time"] is None for f in fs), "arrived": len(arrived),
            "arrived_late": late, "on_time_rate": 1 - late / len(arrived) if arrived else None,
            "mean_dep_delay": sum(departed) / len(departed) if departed else None,
            "mean_arr_delay": sum(arrived) / len(arrived) if arrived else None,
        })
    return rows


def write_lake(root: Path, flights=FLIGHTS, airlines=AIRLINES) -> Path:
    """Write every source table as the local catalog publishes it; return the lake root."""
    clean_flights = flights_rows(flights)
    tables = {
        "clean/flights": clean_flights,
        "clean/weather": [
            {"origin": o, "year": 2013, "month": 1, "day": 1, "hour": 9, "temp": 39.0,
             "time_hour": dt.datetime(2013, 1, 1, 14, tzinfo=UTC)}
            for o in ("EWR", "JFK", "LGA")
        ],
        "clean/planes": [
            {"tailnum": "N1AA", "year": 2004, "type": "Fixed wing multi engine", "engines": 2, "seats": 178},
            {"tailnum": "N2UA", "year": 1999, "type": "Fixed wing multi engine", "engines": 2, "seats": 150},
        ],
        "clean/airports": [
            {"faa": faa, "name": name, "dst": "A", "tzone": "America/New_York"}
            for faa, name in [
                ("JFK", "John F Kennedy Intl"), ("LGA", "La Guardia"), ("EWR", "Newark Liberty Intl"),
                ("LAX", "Los Angeles Intl"), ("ORD", "Chicago Ohare Intl"), ("SFO", "San Francisco Intl"),
                ("BOS", "General Edward Lawrence Logan Intl"),
            ]
        ],
        "clean/airlines": [{"carrier": c, "name": n} for c, n in airlines],
        "curated/flight_features": feature_rows(clean_flights),
        "curated/route_performance_daily": route_rows(clean_flights),
        "raw/object_inventory": [
            {"key": "raw/datasync/share/t1/photo.png", "dataset": "share", "size": 900, "sha256": "ab",
             "content_type": "image/png", "image_width": 64, "image_height": 48},
            {"key": "raw/sftp/faa/t1/planes.csv", "dataset": "planes", "size": 50, "sha256": "cd",
             "content_type": "text/csv", "line_count": 3},
        ],
    }
    for name, rows in tables.items():
        write_version(root, name, rows, "v1")
        publish(root, name, "v1")
    return root


# The Iceberg tables' versions, by (lake, table, version): `publish` commits one to the table's Iceberg table.
ICEBERG_VERSIONS: dict[tuple[Path, str, str], pa.Table] = {}


def write_version(root: Path, name: str, rows: list[dict], version: str) -> None:
    zone, table = name.split("/")
    schema = arrow_schema(SCHEMAS[name])
    if zone in ICEBERG_ZONES:
        ICEBERG_VERSIONS[root, name, version] = pa.Table.from_pylist(
            [{column: row.get(column) for column in schema.names} for row in rows], schema=schema
        )
        return
    folder = root / zone / "_versions" / table / version
    folder.mkdir(parents=True)
    full_rows = [{column: row.get(column) for column in schema.names} for row in rows]
    pq.write_table(pa.Table.from_pylist(full_rows, schema=schema), folder / "part-0.parquet")


def publish(root: Path, name: str, version: str) -> None:
    """Make a version the table's current data: a commit of its rows to an Iceberg table (clean, curated), or an atomic
    symlink swap of `<zone>/<table>` (the version-folder zones), as LocalCatalog.publish does."""
    zone, table = name.split("/")
    if zone in ICEBERG_ZONES:
        rows = ICEBERG_VERSIONS[root, name, version]
        catalog = LocalIcebergCatalog(root).pyiceberg()
        catalog.create_namespace_if_not_exists(f"lake_{zone}")
        catalog.create_table_if_not_exists((f"lake_{zone}", table), schema=rows.schema).overwrite(rows)
        return
    tmp = root / zone / f".tmp-{table}"
    os.symlink(os.path.join("_versions", table, version), tmp)
    os.replace(tmp, root / zone / table)


FIRST_DAY, LAST_DAY = min(f[1] for f in FLIGHTS).isoformat(), max(f[1] for f in FLIGHTS).isoformat()
DAILY_MODELS = {"fct_flights", "fct_route_performance_daily"}
MODELS = {
    "stg_lake__flights", "stg_lake__weather", "stg_lake__planes", "stg_lake__airports",
    "stg_lake__airlines", "stg_lake__flight_features", "stg_lake__route_performance_daily",
    "fct_flights", "dim_carriers", "dim_airports", "dim_planes", "mart_carrier_ontime_monthly",
    "fct_route_performance_daily", "stg_lake__object_inventory",
}


def dbt_args(lake_root: Path, target_path: Path, **variables: str) -> list[str]:
    return [
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--target", "duckdb",
        "--target-path", str(target_path), "--log-path", str(target_path),
        "--vars", json.dumps({"lake_root": str(lake_root), **variables}),
    ]


def run_dbt(*args: str, lake_root: Path, target_path: Path, **variables: str):
    """dbt in this process (dbtRunner): no interpreter start, and the imports are shared with dagster-dbt."""
    return dbtRunner().invoke([*args, "--quiet", *dbt_args(lake_root, target_path, **variables)])


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return write_lake(tmp_path_factory.mktemp("lake"))


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory, lake) -> Path:
    """A target folder holding the manifest of `dbt parse` (what `make prepare` leaves in dbt_project/target).

    Parsed with the same --target and --vars as the runs below, so they can reuse it (partial parse).
    """
    target = tmp_path_factory.mktemp("dbt_target")
    parsed = run_dbt("parse", lake_root=lake, target_path=target)
    assert parsed.success, parsed.exception
    return target


@pytest.fixture(scope="module")
def project(dbt_target):
    return DbtProject(DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=dbt_target)


@pytest.fixture(scope="module")
def built(project, lake, dbt_target):
    """The warehouse and its export materialized in one Dagster run, in one process (as `local` runs)."""
    assets = build_warehouse_assets("duckdb", project)
    store = LocalObjectStore(root=str(lake))
    resources = {**warehouse_resources("local", lake), "store": store, "catalog": LocalCatalog(store=store)}
    with pytest.MonkeyPatch.context() as env:
        # dagster-dbt copies partial_parse.msgpack from DBT_TARGET_PATH, so the run skips a full parse
        # and leaves its artifacts in the temporary folder rather than in dbt_project/target.
        env.setenv("DBT_TARGET_PATH", str(dbt_target))
        # The daily models take the days of the synthetic flights as one partition range (one dbt call).
        result = dg.materialize(
            [*assets, *build_export_assets("duckdb")], resources=resources, raise_on_error=False,
            tags=partitions.range_tags(FIRST_DAY, LAST_DAY),
        )
    return assets, result


def keys_of(assets) -> set[str]:
    return {key.path[-1] for a in assets for key in a.keys}


def test_models_are_warehouse_assets_downstream_of_the_lake_assets(project):
    assets = build_warehouse_assets("redshift", project)

    assert keys_of(assets) == MODELS
    assert all(key.path[0] == "warehouse" for a in assets for key in a.keys)
    specs = {key.path[-1]: spec for a in assets for key, spec in a.specs_by_key.items()}
    assert [dep.asset_key.path for dep in specs["stg_lake__flights"].deps] == [["clean", "flights"]]
    assert [dep.asset_key.path for dep in specs["stg_lake__route_performance_daily"].deps] == [
        ["curated", "route_performance_daily"]
    ]
    # The facts follow, day for day, the lake tables their (unpartitioned) staging views read.
    assert {dep.asset_key.path[0] for dep in specs["fct_flights"].deps} == {"warehouse", "clean"}
    assert dg.AssetKey(["clean", "flights"]) in {dep.asset_key for dep in specs["fct_flights"].deps}
    assert dg.AssetKey(["curated", "route_performance_daily"]) in {
        dep.asset_key for dep in specs["fct_route_performance_daily"].deps
    }
    assert specs["fct_flights"].kinds == {"dbt", "redshift"}
    assert specs["fct_flights"].group_name == "warehouse"
    assert specs["fct_flights"].description.startswith("One row per scheduled flight")
    checks = {(c.asset_key.path[-1], c.name) for a in assets for c in a.check_specs}
    assert ("mart_carrier_ontime_monthly", "assert_carrier_monthly_totals_match_fct_flights") in checks


def test_the_facts_are_daily_partitioned_and_the_rest_is_not(project):
    """Only the facts have days: a staging view is created once and always reads its table's current data."""
    by_name = {a.node_def.name: a for a in build_warehouse_assets("duckdb", project)}

    daily = by_name["warehouse_daily"]
    assert keys_of([daily]) == DAILY_MODELS
    assert daily.partitions_def == partitions.DAILY
    assert daily.backfill_policy == partitions.SINGLE_RUN  # a range of days is one dbt call
    assert by_name["warehouse_reference"].partitions_def is None
    assert by_name["warehouse_aggregates"].partitions_def is None
    assert keys_of([by_name["warehouse_aggregates"]]) == {"mart_carrier_ontime_monthly"}
    assert keys_of(by_name.values()) == MODELS


def test_definitions_without_a_manifest_say_to_run_make_prepare(tmp_path):
    empty = DbtProject(DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=tmp_path)
    with pytest.raises(FileNotFoundError, match="make prepare"):
        build_warehouse_assets("duckdb", empty)


def test_dbt_build_materializes_every_model_and_passes_every_test(built):
    assets, result = built

    assert result.success
    materialized = {
        m.asset_key.path[-1] for a in assets for m in result.asset_materializations_for_node(a.op.name)
    }
    assert materialized == MODELS
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == sum(len(list(a.check_specs)) for a in assets)
    assert [e.check_name for e in evaluations if not e.passed] == []


def warehouse_rows(lake: Path, sql: str) -> list[tuple]:
    # Not read_only: dbt run in this process (dbtRunner) keeps the file open read-write, and DuckDB refuses a
    # second connection to it with a different configuration.
    with duckdb.connect(str(lake / "warehouse" / "lake.duckdb")) as conn:
        return conn.execute(sql).fetchall()


def test_carrier_month_mart_equals_hand_computed_figures(built, lake):
    rows = warehouse_rows(
        lake,
        "select carrier, carrier_name, year, month, flights, cancelled, arrived, arrived_late, "
        "on_time_rate, mean_arr_delay, mean_dep_delay from mart_carrier_ontime_monthly "
        "order by carrier, year, month",
    )

    assert rows == [
        ("AA", "American Airlines Inc.", 2013, 1, 3, 1, 2, 1, 0.5, 17.5, 16.0),
        ("B6", "JetBlue Airways", 2013, 3, 1, 1, 0, 0, None, None, None),  # nothing arrived: no rate
        ("UA", "United Air Lines Inc.", 2013, 1, 1, 0, 1, 0, 1.0, -5.0, -3.0),
        ("UA", "United Air Lines Inc.", 2013, 2, 2, 0, 1, 0, 1.0, 15.0, 2.5),  # 15 min is not late
    ]


def test_flight_fact_flags_cancelled_and_late_flights(built, lake):
    rows = warehouse_rows(
        lake, "select flight_id, is_cancelled, arrived_late from fct_flights order by flight_id"
    )

    assert rows == [
        (1, False, 0), (2, False, 1), (3, True, None), (4, False, 0), (5, False, 0), (6, False, None),
        (7, True, None),
    ]


def test_route_fact_keeps_the_curated_aggregate(built, lake):
    rows = warehouse_rows(
        lake, "select route, flights, cancelled from fct_route_performance_daily order by all"
    )

    assert len(rows) == len(route_rows(flights_rows()))
    assert ("LGA-ORD", 1, 1) in rows


def test_the_export_holds_every_row_of_the_carrier_mart(built, lake):
    with duckdb.connect() as conn:
        exported = conn.execute(
            f"select count(*), sum(flights) from '{lake}/exports/carrier_ontime_monthly/*.parquet'"
        ).fetchone()

    assert exported == (4, len(FLIGHTS))


def test_the_raw_object_inventory_is_queryable_from_the_warehouse(built, lake):
    rows = warehouse_rows(
        lake, "select media_type, image_width, line_count from stg_lake__object_inventory order by object_key"
    )

    assert rows == [("image", 64, None), ("text", None, 3)]


def test_a_range_of_days_replaces_exactly_those_days_of_the_facts(built, lake, dbt_target):
    """Days 01-02..02-01 rebuilt from a new flights version: flight 2 now late, flight 3 and every flight of
    02-01 deleted. Flight 1 changed too, but its day (01-01) is outside the range: the fact keeps it as it was."""
    changed = {1: (None, None, None, None, None, None, None, 99.0, 99.0), 2: (None,) * 8 + (60.0,)}
    flights = [
        tuple(new if new is not None else old for old, new in zip(f, changed.get(f[0], (None,) * 9)))
        for f in FLIGHTS if f[0] not in (3, 5, 6)
    ]
    write_version(lake, "clean/flights", flights_rows(flights), "v3")
    publish(lake, "clean/flights", "v3")
    try:
        # --indirect-selection buildable, as the warehouse assets run dbt: the mart's reconciliation test
        # waits for the mart to be rebuilt.
        dbt = run_dbt("build", "--select", "fct_flights", "--indirect-selection", "buildable", lake_root=lake,
                      target_path=dbt_target, first_day="2013-01-02", last_day="2013-02-01")
        assert dbt.success, [r.message for r in dbt.result.results if r.status != "success"]
        rows = warehouse_rows(lake, "select flight_id, flight_date, arr_delay from fct_flights order by flight_id")
    finally:
        publish(lake, "clean/flights", "v1")
        restored = run_dbt("build", "--select", "fct_flights", "--indirect-selection", "buildable",
                           lake_root=lake, target_path=dbt_target)
    assert restored.success

    assert rows == [
        (1, dt.date(2013, 1, 1), 10.0),  # outside the range: unchanged
        (2, dt.date(2013, 1, 2), 60.0),  # inside: the new version's row
        (4, dt.date(2013, 1, 1), -5.0),
        (7, dt.date(2013, 3, 5), None),  # outside
    ]  # 3 (01-02), 5 and 6 (02-01, a day left with no rows) are gone


@pytest.mark.parametrize(
    "days, error",
    [
        ({"first_day": "2013-01-02; drop table fct_flights"}, "first_day and last_day go together"),
        ({"first_day": "2013-1-2", "last_day": "2013-01-03"}, "must be YYYY-MM-DD"),
        ({"first_day": "2013-01-03", "last_day": "2013-01-02"}, "is after last_day"),
    ],
)
def test_a_malformed_range_of_days_is_refused_before_any_sql_runs(built, lake, dbt_target, days, error):
    before = warehouse_rows(lake, "select count(*) from fct_flights")

    dbt = run_dbt("build", "--select", "fct_flights", lake_root=lake, target_path=dbt_target, **days)

    assert not dbt.success
    assert error in str(dbt.exception or [r.message for r in dbt.result.results])
    assert warehouse_rows(lake, "select count(*) from fct_flights") == before


def test_broken_invariants_in_a_new_lake_version_fail_their_dbt_tests(built, lake, dbt_target):
    """A flights version with a carrier missing from airlines, and a weather version repeating an hour."""
    stranger = (8, dt.date(2013, 1, 3), "ZZ", "JFK", "LAX", None, 900, 1.0, 2.0)
    write_version(lake, "clean/flights", flights_rows([*FLIGHTS, stranger]), "v2")
    hour = {"origin": "JFK", "time_hour": dt.datetime(2013, 1, 1, 14, tzinfo=UTC), "temp": 39.0}
    write_version(lake, "clean/weather", [hour, {**hour, "temp": 41.0}], "v2")
    for table in ("clean/flights", "clean/weather"):
        publish(lake, table, "v2")
    try:
        # dim_carriers, which the relationships test reads, was built by the `built` fixture.
        dbt = run_dbt(
            "build", "--select", "+fct_flights", "stg_lake__weather", lake_root=lake, target_path=dbt_target
        )
    finally:
        for table in ("clean/flights", "clean/weather"):
            publish(lake, table, "v1")

    assert not dbt.success
    failed = {r.node.name for r in dbt.result.results if r.status in ("fail", "error")}
    assert failed == {
        "relationships_fct_flights_carrier__carrier__ref_dim_carriers_",
        "unique_combination_of_columns_stg_lake__weather_origin__time_hour",
    }


def test_the_dbt_version_is_read_from_the_installed_package_not_from_dbt_version(monkeypatch, tmp_path):
    # dagster-dbt would run `dbt --version` (seconds, and a request to PyPI for the latest release) once per process.
    import importlib.metadata

    import dagster_dbt.core.resource as dbt_resource_module

    from lake_platform.warehouse.project import dbt_resource

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(dbt_resource_module, "check_output", no_subprocess)
    version = dbt_resource("duckdb", tmp_path)._cli_version
    assert str(version) == importlib.metadata.version("dbt-core") and version.major == 1
