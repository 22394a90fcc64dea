"""`lake sql`, the local Athena: every catalog table as `<database>.<table>`, beside the DuckDB warehouse.

The clean, quarantine, curated and ML tables are Iceberg tables (written here with PyIceberg into the lake's local
catalog); the other zones' tables (exports, the raw inventory) are version folders published by LocalCatalog."""

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lake_platform.adapters.catalog import LocalCatalog, version_key
from lake_platform.adapters.iceberg import LocalIcebergCatalog
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.cli import main


def publish(root, zone, table, version, files: dict[str, pa.Table]):
    """Write `files` (relative path -> rows) into a fresh version folder and publish it."""
    folder = root / version_key(zone, table, version)
    for name, rows in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, folder / name)
    columns = [(f.name, str(f.type)) for f in next(iter(files.values())).schema]
    LocalCatalog(store=LocalObjectStore(root=str(root))).publish(zone, table, version, columns)


def commit(root, zone, table, rows: pa.Table, partition_column: str | None = None):
    """Replace the rows of the Iceberg table `lake_<zone>.<table>` (created on first use, partitioned by identity on
    `partition_column`): a new snapshot, as a Spark job's commit makes one."""
    catalog = LocalIcebergCatalog(root).pyiceberg()
    catalog.create_namespace_if_not_exists(f"lake_{zone}")
    name = f"lake_{zone}.{table}"
    if catalog.table_exists(name):
        catalog.load_table(name).overwrite(rows)
        return
    created = catalog.create_table(name, schema=rows.schema)
    if partition_column:
        with created.update_spec() as spec:
            spec.add_identity(partition_column)
    created.append(rows)


DAY1, DAY2 = dt.date(2013, 1, 1), dt.date(2013, 1, 2)


@pytest.fixture
def lake(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    monkeypatch.setenv("LAKE_ROOT", str(root))
    # The flights tables daily-partitioned (identity on flight_date), planes unpartitioned.
    commit(root, "clean", "flights", pa.table({
        "flight_id": [1, 2, 3], "carrier": ["UA", "AA", "B6"], "flight_date": pa.array([DAY1, DAY1, DAY2]),
    }), "flight_date")
    commit(root, "clean", "planes", pa.table({"tailnum": ["N1", "N2"]}))
    # Records of no known day (a file rejected whole) have a NULL partition value.
    commit(root, "quarantine", "flights", pa.table({
        "source_file": ["b.parquet", "a.parquet"], "reason": ["bad", "whole file: empty file (0 bytes)"],
        "flight_date": pa.array([DAY2, None], pa.date32()),
    }), "flight_date")
    commit(root, "curated", "flight_features", pa.table({"flight_id": [1, 2, 3]}))
    publish(root, "exports", "carrier_ontime", "v1", {"part-00000.parquet": pa.table({"carrier": ["UA", "AA"]})})
    # A daily version-folder table: Hive-style `flight_date=<day>/` folders, the files without the column.
    publish(root, "exports", "daily_origins", "v1", {
        "flight_date=2013-01-01/part-00000.parquet": pa.table({"origin": ["JFK", "LGA"]}),
        "flight_date=2013-01-02/part-00000.parquet": pa.table({"origin": ["EWR"]}),
    })
    return root


def add_warehouse(root):
    (root / "warehouse").mkdir(parents=True)
    with duckdb.connect(str(root / "warehouse" / "lake.duckdb")) as con:
        con.sql("create table fct_flights as select 1 as flight_id, 'UA' as carrier")
        con.sql("create view mart_carriers as select carrier, count(*) as flights from fct_flights group by carrier")


def lake_sql(query):
    return CliRunner().invoke(main, ["sql", query])


def test_every_catalog_table_is_queryable_as_database_dot_table(lake):
    for table, rows in [("lake_clean.planes", 2), ("lake_quarantine.flights", 2), ("lake_curated.flight_features", 3),
                        ("lake_exports.carrier_ontime", 2), ("lake_exports.daily_origins", 3)]:
        result = lake_sql(f"select count(*) || ' rows' as n from {table}")
        assert result.exit_code == 0, result.output
        assert f"{rows} rows" in result.output


def test_a_daily_partitioned_table_reads_its_partition_column(lake):
    result = lake_sql(
        "select string_agg(flight_id || '@' || flight_date, ' ' order by flight_id) as f from lake_clean.flights"
    )
    assert result.exit_code == 0, result.output
    assert "1@2013-01-01 2@2013-01-01 3@2013-01-02" in result.output


def test_a_daily_version_folder_table_reads_its_partition_column_from_the_folder_names(lake):
    result = lake_sql(
        "select string_agg(origin || '@' || flight_date, ' ' order by origin) as f"
        " from lake_exports.daily_origins"
    )
    assert result.exit_code == 0, result.output
    assert "EWR@2013-01-02 JFK@2013-01-01 LGA@2013-01-01" in result.output


def test_the_null_partition_reads_as_null_and_the_others_as_dates(lake):
    result = lake_sql(
        "select string_agg(source_file || '@' || coalesce(cast(flight_date as varchar), 'null'), ' '"
        " order by source_file) as f from lake_quarantine.flights"
    )
    assert "a.parquet@null b.parquet@2013-01-02" in result.output


def test_the_current_version_is_read_after_a_new_publish(lake):
    commit(lake, "clean", "planes", pa.table({"tailnum": ["N1", "N2", "N3"]}))
    result = lake_sql("select count(*) || ' planes' as n from lake_clean.planes")
    assert "3 planes" in result.output
    commit(lake, "curated", "flight_features", pa.table({"flight_id": [1, 2, 3, 4]}))
    result = lake_sql("select count(*) || ' features' as n from lake_curated.flight_features")
    assert "4 features" in result.output
    publish(lake, "exports", "carrier_ontime", "v2", {"part-00000.parquet": pa.table({"carrier": ["UA", "AA", "B6"]})})
    result = lake_sql("select count(*) || ' carriers' as n from lake_exports.carrier_ontime")
    assert "3 carriers" in result.output


def test_warehouse_queries_keep_working_unqualified_and_qualified_beside_the_catalog(lake):
    add_warehouse(lake)
    unqualified = lake_sql("select carrier || ':' || flights as c from mart_carriers")
    assert unqualified.exit_code == 0, unqualified.output
    assert "UA:1" in unqualified.output
    joined = lake_sql(
        "select count(*) || ' matched' as n from lake.main.fct_flights w join lake_clean.flights c using (flight_id)"
    )
    assert "1 matched" in joined.output


def test_the_warehouse_alone_is_still_queryable(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path))
    add_warehouse(tmp_path)
    assert "UA:1" in lake_sql("select carrier || ':' || flights as c from mart_carriers").output


def test_no_lake_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "nowhere"))
    result = lake_sql("select 1")
    assert result.exit_code != 0
    assert f"no lake at {tmp_path / 'nowhere'}" in result.output


def test_a_bad_query_is_reported_without_a_traceback(lake):
    result = lake_sql("select * from lake_clean.no_such_table")
    assert result.exit_code == 1
    assert "Error: " in result.output and "no_such_table" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_published_table_with_no_rows_is_an_empty_view_of_its_columns(lake):
    # A version-folder table whose version has no rows: Spark wrote only _SUCCESS. (An Iceberg table with no
    # data files is an empty view too: tests/test_lake_views.py.)
    folder = lake / version_key("exports", "planes", "v1")
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_bytes(b"")
    LocalCatalog(store=LocalObjectStore(root=str(lake))).publish(
        "exports", "planes", "v1", [("source_file", "string"), ("line", "bigint")]
    )
    result = lake_sql("select count(*) || ' rows' as n, count(line) as l from lake_exports.planes")
    assert result.exit_code == 0, result.output
    assert "0 rows" in result.output
    assert "not queryable" not in result.output
