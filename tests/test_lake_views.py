"""DuckDB views over the lake's Iceberg tables (lake_platform/adapters/lake_views.py): PyIceberg plans a snapshot's
files, DuckDB reads exactly those. Offline: the tables are written with PyIceberg into a temporary lake's local
catalog (`<lake>/catalog/iceberg.db`), as Spark's JDBC catalog keeps them."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BooleanType, DateType, DecimalType, DoubleType, IntegerType, LongType, NestedField, StringType, TimestampType,
    TimestamptzType,
)

from lake_platform.adapters import lake_views
from lake_platform.adapters import iceberg
from lake_platform.adapters.iceberg import LocalIcebergCatalog
from lake_platform.adapters.lake_views import LakeViewError
from lake_platform.cli import main
from lake_platform.settings import DBT_PROJECT_DIR

UTC = dt.timezone.utc
DAY1, DAY2 = dt.date(2013, 1, 1), dt.date(2013, 1, 2)
FLIGHTS_SCHEMA = Schema(
    NestedField(1, "flight_id", LongType()),
    NestedField(2, "carrier", StringType()),
    NestedField(3, "time_hour", TimestamptzType()),
    NestedField(4, "flight_date", DateType()),
)


def flights(ids, carriers, days) -> pa.Table:
    return pa.table({
        "flight_id": pa.array(ids, pa.int64()),
        "carrier": pa.array(carriers, pa.string()),
        "time_hour": pa.array([dt.datetime(d.year, d.month, d.day, 14, tzinfo=UTC) for d in days],
                              pa.timestamp("us", tz="UTC")),
        "flight_date": pa.array(days, pa.date32()),
    })


def now_ms() -> int:
    return int(time.time() * 1000)


def build_lake(root: Path) -> dict:
    """lake_clean.flights (daily, two days, then day 2 overwritten: later snapshots), then lake_clean.airlines
    (unpartitioned, first written after the overwrite), lake_quarantine.flights (created, never written: empty)."""
    catalog = LocalIcebergCatalog(root).pyiceberg()
    catalog.create_namespace("lake_clean")
    catalog.create_namespace("lake_quarantine")
    day_spec = PartitionSpec(PartitionField(source_id=4, field_id=1000, transform=IdentityTransform(),
                                            name="flight_date"))
    table = catalog.create_table("lake_clean.flights", schema=FLIGHTS_SCHEMA, partition_spec=day_spec)
    table.append(flights([1, 2, 3], ["UA", "AA", "B6"], [DAY1, DAY2, DAY2]))
    first = table.current_snapshot()
    time.sleep(0.02)
    between = now_ms()  # after flights' first snapshot, before the overwrite's and before airlines existed
    time.sleep(0.02)
    table.overwrite(flights([4], ["DL"], [DAY2]), overwrite_filter=EqualTo("flight_date", DAY2.isoformat()))
    time.sleep(0.02)
    airlines = catalog.create_table("lake_clean.airlines", schema=pa.schema(
        [("carrier", pa.string()), ("name", pa.string())]))
    airlines.append(pa.table({"carrier": ["UA", "DL"], "name": ["United Air Lines Inc.", "Delta Air Lines Inc."]}))
    catalog.create_table("lake_quarantine.flights", schema=Schema(
        NestedField(1, "source_file", StringType()), NestedField(2, "line", LongType()),
        NestedField(3, "attempt", IntegerType()), NestedField(4, "score", DoubleType()),
        NestedField(5, "retried", BooleanType()), NestedField(6, "flight_date", DateType()),
        NestedField(7, "received_at", TimestamptzType()), NestedField(8, "local_time", TimestampType()),
        NestedField(9, "fare", DecimalType(9, 2)),
    ))
    catalog.engine.dispose()
    first_airlines = airlines.current_snapshot()
    return {"first": first.snapshot_id, "first_ms": first.timestamp_ms, "between_ms": between,
            "airlines": first_airlines.snapshot_id, "airlines_ms": first_airlines.timestamp_ms}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("iceberg_lake")
    return root, build_lake(root)


def load(root: Path, name: str):
    return LocalIcebergCatalog(root).pyiceberg().load_table(name)


def views(root: Path, **choice) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    lake_views.configure(con, root, **choice)
    return con


def rows(con, sql: str) -> list[dict]:
    return con.sql(sql).to_arrow_table().to_pylist()


def as_of(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def test_the_current_snapshot_read_by_duckdb_equals_pyicebergs_scan(lake):
    root, _ = lake
    con = views(root)
    expected = load(root, "lake_clean.flights").scan().to_arrow().sort_by("flight_id")
    got = rows(con, "select * from lake_clean.flights order by flight_id")
    assert got == expected.to_pylist()
    assert [r["flight_id"] for r in got] == [1, 4]  # day 2 replaced by the overwrite
    assert con.sql("select * from lake_clean.flights").columns == expected.column_names
    assert rows(con, "select * from lake_clean.airlines order by carrier") == [
        {"carrier": "DL", "name": "Delta Air Lines Inc."}, {"carrier": "UA", "name": "United Air Lines Inc."}
    ]


def test_the_views_read_exactly_the_planned_files_without_hive_partitioning(lake):
    root, _ = lake
    (view,) = [v for v in lake_views.iceberg_views(root) if v.name == "lake_clean.flights"]
    planned = {t.file.file_path for t in load(root, "lake_clean.flights").scan().plan_files()}
    assert {p.removeprefix("file://").removeprefix("file:") for p in planned} == set(view.files)
    assert all(Path(f).is_file() and f.startswith(str(root / "iceberg")) for f in view.files)
    assert "hive_partitioning = false" in view.sql() and "union_by_name = true" in view.sql()


def test_time_travel_by_snapshot_id_reads_the_first_snapshot(lake):
    root, facts = lake
    con = views(root, snapshots={"lake_clean.flights": facts["first"]})
    first = load(root, "lake_clean.flights").scan(snapshot_id=facts["first"]).to_arrow().sort_by("flight_id")
    assert rows(con, "select * from lake_clean.flights order by flight_id") == first.to_pylist()
    assert [r["carrier"] for r in first.to_pylist()] == ["UA", "AA", "B6"]
    # The other tables stay at their current snapshot.
    assert con.execute("select count(*) from lake_clean.airlines").fetchone() == (2,)


def test_time_travel_as_of_a_timestamp_reads_the_snapshot_current_then(lake):
    root, facts = lake
    # airlines' first snapshot is later: pinned by id here (a snapshot id wins over as_of for its table).
    con = views(root, as_of=as_of(facts["between_ms"]), snapshots={"lake_clean.airlines": facts["airlines"]})
    assert con.execute("select string_agg(carrier, ' ' order by flight_id) from lake_clean.flights").fetchone() == (
        "UA AA B6",
    )
    exactly_first = views(root, as_of=as_of(facts["first_ms"]), strict=False)  # inclusive: the commit's millisecond
    assert exactly_first.execute("select count(*) from lake_clean.flights").fetchone() == (3,)
    now = views(root, as_of=dt.datetime.now(UTC) + dt.timedelta(minutes=1))
    assert now.execute("select string_agg(carrier, ' ' order by flight_id) from lake_clean.flights").fetchone() == (
        "UA DL",
    )


def test_an_unknown_snapshot_id_is_an_error_listing_the_tables_snapshots(lake):
    root, _ = lake
    with pytest.raises(LakeViewError, match=r"lake_clean\.flights has no snapshot 12345; its snapshots: ") as error:
        lake_views.configure(duckdb.connect(), root, snapshots={"lake_clean.flights": 12345})
    assert all(str(s.snapshot_id) in str(error.value) for s in load(root, "lake_clean.flights").snapshots())


def test_a_snapshot_of_a_table_that_is_not_iceberg_is_an_error_listing_the_iceberg_tables(lake):
    root, _ = lake
    with pytest.raises(LakeViewError, match=r"not an Iceberg table of the lake: lake_curated\.x \(Iceberg tables: "
                                            r"lake_clean\.airlines, lake_clean\.flights, lake_quarantine\.flights\)"):
        list(lake_views.view_statements(root, snapshots={"lake_curated.x": 1}))


def too_early(name: str, moment: dt.datetime, snapshot_id: int, first_ms: int) -> str:
    return (f"{name} has no snapshot as of {moment.isoformat()}: its first snapshot ({snapshot_id}) is at "
            f"{as_of(first_ms).isoformat(timespec='milliseconds')}")


def test_a_timestamp_before_a_tables_first_snapshot_is_an_error_naming_the_table_and_its_first_snapshot_time(lake):
    root, facts = lake
    between = as_of(facts["between_ms"])
    with pytest.raises(LakeViewError) as error:
        lake_views.configure(duckdb.connect(), root, as_of=between)
    assert str(error.value) == too_early("lake_clean.airlines", between, facts["airlines"], facts["airlines_ms"])
    early = as_of(facts["first_ms"] - 1)
    with pytest.raises(LakeViewError, match=re.escape(too_early("lake_clean.flights", early, facts["first"],
                                                                 facts["first_ms"]))):
        lake_views.configure(duckdb.connect(), root, as_of=early, snapshots={"lake_clean.airlines": facts["airlines"]})


def test_not_strict_a_table_too_young_for_as_of_fails_only_when_read(lake):
    root, facts = lake
    between = as_of(facts["between_ms"])
    con = views(root, as_of=between, strict=False)
    assert con.execute("select count(*) from lake_clean.flights").fetchone() == (3,)
    assert con.execute("select count(*) from lake_quarantine.flights").fetchone() == (0,)  # no snapshot: empty
    assert con.sql("select * from lake_clean.airlines").columns == ["carrier", "name"]
    with pytest.raises(duckdb.Error) as error:
        con.execute("select * from lake_clean.airlines").fetchall()
    assert too_early("lake_clean.airlines", between, facts["airlines"], facts["airlines_ms"]) in str(error.value)


def test_nothing_is_created_when_a_choice_is_wrong(lake):
    root, _ = lake
    con = duckdb.connect()
    with pytest.raises(LakeViewError):
        lake_views.configure(con, root, snapshots={"lake_clean.flights": 12345})
    assert con.execute("select count(*) from duckdb_views() where not internal").fetchone() == (0,)


def test_an_empty_table_is_an_empty_view_with_typed_columns(lake):
    root, _ = lake
    con = views(root)
    assert con.execute("select count(*) from lake_quarantine.flights").fetchone() == (0,)
    types = dict(con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'lake_quarantine' and table_name = 'flights'"
    ).fetchall())
    assert types == {
        "source_file": "VARCHAR", "line": "BIGINT", "attempt": "INTEGER", "score": "DOUBLE", "retried": "BOOLEAN",
        "flight_date": "DATE", "received_at": "TIMESTAMP WITH TIME ZONE", "local_time": "TIMESTAMP",
        "fare": "DECIMAL(9,2)",
    }


def test_a_column_added_after_the_files_were_written_reads_as_null(tmp_path):
    catalog = LocalIcebergCatalog(tmp_path).pyiceberg()
    catalog.create_namespace("lake_clean")
    table = catalog.create_table("lake_clean.planes", schema=pa.schema([("tailnum", pa.string())]))
    table.append(pa.table({"tailnum": ["N1"]}))
    with table.update_schema() as update:
        update.add_column("seats", LongType())
    table.append(pa.table({"tailnum": pa.array(["N2"]), "seats": pa.array([150], pa.int64())}))
    con = views(tmp_path)
    assert con.execute("select * from lake_clean.planes order by tailnum").fetchall() == [("N1", None), ("N2", 150)]
    assert rows(con, "select * from lake_clean.planes order by tailnum") == (
        table.scan().to_arrow().sort_by("tailnum").to_pylist()
    )


def test_a_snapshot_with_delete_files_is_refused(lake, monkeypatch):
    """PyIceberg 0.12 cannot write delete files (a merge-on-read `delete` warns and falls back to copy-on-write:
    see the next test), so the scan's tasks are faked with one carrying a positional delete file."""
    from pyiceberg.table import DataScan

    root, _ = lake
    planned = DataScan.plan_files

    def with_a_delete_file(self):  # airlines' scan only
        tasks = list(planned(self))
        if self.table_metadata.location.endswith("/airlines"):
            delete = type("DeleteFile", (), {"file_path": "file:///lake/iceberg/x/data/00000-deletes.parquet"})()
            tasks[0].delete_files = {delete}
        return tasks

    monkeypatch.setattr(DataScan, "plan_files", with_a_delete_file)
    refused = r"lake_clean\.airlines: the snapshot has delete files \(merge-on-read\), e\.g\. " \
              r"/lake/iceberg/x/data/00000-deletes\.parquet for /"
    with pytest.raises(LakeViewError, match=refused):
        lake_views.configure(duckdb.connect(), root)
    # Not strict (`lake sql`, the dbt plugin): refused when read, the other tables readable.
    con = views(root, strict=False)
    assert con.sql("select * from lake_clean.airlines").columns == ["carrier", "name"]
    with pytest.raises(duckdb.Error, match=refused):
        con.execute("select * from lake_clean.airlines").fetchall()
    assert con.execute("select count(*) from lake_clean.flights").fetchone() == (2,)


def test_pyicebergs_merge_on_read_delete_writes_no_delete_file_and_the_view_stays_exact(tmp_path):
    catalog = LocalIcebergCatalog(tmp_path).pyiceberg()
    catalog.create_namespace("lake_clean")
    table = catalog.create_table("lake_clean.flights", schema=FLIGHTS_SCHEMA,
                                 properties={"write.delete.mode": "merge-on-read"})
    table.append(flights([1, 2], ["UA", "AA"], [DAY1, DAY1]))
    with pytest.warns(UserWarning, match="falling back to copy-on-write"):
        table.delete(EqualTo("flight_id", 2))
    assert all(not task.delete_files for task in table.scan().plan_files())
    assert views(tmp_path).execute("select flight_id from lake_clean.flights").fetchall() == [(1,)]


def test_a_lake_without_an_iceberg_catalog_has_no_views_and_gets_no_catalog_file(tmp_path):
    con = duckdb.connect()
    assert lake_views.configure(con, tmp_path / "lake") == []
    assert list(lake_views.view_statements(tmp_path / "lake")) == []
    assert lake_views.iceberg_tables(tmp_path / "lake") == []
    assert not (tmp_path / "lake").exists()


def test_the_statements_create_each_schema_then_each_view(lake):
    root, _ = lake
    statements = list(lake_views.view_statements(root))
    assert statements[:2] == [
        'create schema if not exists "lake_clean"', 'create schema if not exists "lake_quarantine"'
    ]
    assert [s.split(" as ", 1)[0] for s in statements[2:]] == [
        'create or replace view "lake_clean"."airlines"', 'create or replace view "lake_clean"."flights"',
        'create or replace view "lake_quarantine"."flights"',
    ]
    con = duckdb.connect()
    for statement in statements:
        con.execute(statement)
    assert con.execute("select count(*) from lake_clean.flights").fetchone() == (2,)


@pytest.mark.parametrize("location, path", [
    ("file:/lake/iceberg/a.parquet", "/lake/iceberg/a.parquet"),
    ("file:///lake/iceberg/a.parquet", "/lake/iceberg/a.parquet"),
    ("/lake/iceberg/a.parquet", "/lake/iceberg/a.parquet"),
    ("s3://bucket/iceberg/a.parquet", "s3://bucket/iceberg/a.parquet"),
])
def test_file_uris_become_plain_paths(location, path):
    assert iceberg.local_path(location) == path


@pytest.mark.parametrize("text, moment", [
    ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T12:00:00+02:00", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T10:00:00", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),  # no offset: UTC
    ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),
])
def test_as_of_is_iso_8601_and_utc_without_an_offset(text, moment):
    assert lake_views.parse_as_of(text) == moment


def test_importing_the_module_imports_neither_pyiceberg_duckdb_nor_dbt():
    import subprocess
    import sys

    # What dbt's process imports to load the plugin: the module and its package's __init__ (no dagster-dbt).
    code = (
        "import sys\n"
        "import lake_platform.adapters.lake_views\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyiceberg', 'duckdb', 'dbt', 'dagster', 'pyarrow'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# `lake sql`: the Iceberg tables beside the version-folder ones, with time travel.


def lake_sql(root: Path, monkeypatch, *args: str):
    monkeypatch.setenv("LAKE_ROOT", str(root))
    return CliRunner().invoke(main, ["sql", *args])


CARRIERS = "select string_agg(carrier, ' ' order by flight_id) as c from lake_clean.flights"


def test_lake_sql_reads_the_iceberg_tables_at_their_current_snapshot(lake, monkeypatch):
    root, _ = lake
    result = lake_sql(root, monkeypatch, CARRIERS)
    assert result.exit_code == 0, result.output
    assert "UA DL" in result.output
    empty = lake_sql(root, monkeypatch, "select count(*) || ' rows' as n from lake_quarantine.flights")
    assert "0 rows" in empty.output


def test_lake_sql_snapshot_reads_that_snapshot(lake, monkeypatch):
    root, facts = lake
    result = lake_sql(root, monkeypatch, CARRIERS, "--snapshot", f"lake_clean.flights={facts['first']}")
    assert result.exit_code == 0, result.output
    assert "UA AA B6" in result.output


def test_lake_sql_as_of_reads_every_iceberg_table_as_it_was(lake, monkeypatch):
    root, facts = lake
    moment = as_of(facts["between_ms"]).isoformat()
    result = lake_sql(root, monkeypatch, CARRIERS, "--as-of", moment)
    assert result.exit_code == 0, result.output
    assert "UA AA B6" in result.output
    # airlines was first written later: reading it as of then is the error, not reading the others.
    younger = lake_sql(root, monkeypatch, "select * from lake_clean.airlines", "--as-of", moment)
    assert younger.exit_code == 1
    assert f"lake_clean.airlines has no snapshot as of {moment}: its first snapshot ({facts['airlines']}) is at " in (
        younger.output
    )
    pinned = lake_sql(root, monkeypatch, "select count(*) || ' airlines' as n from lake_clean.airlines", "--as-of",
                      moment, "--snapshot", f"lake_clean.airlines={facts['airlines']}")
    assert "2 airlines" in pinned.output


@pytest.mark.parametrize("args, message", [
    (["--snapshot", "lake_clean.flights=12345"], "Error: lake_clean.flights has no snapshot 12345; its snapshots: "),
    (["--snapshot", "flights=1"], "Error: --snapshot 'flights=1': expected DATABASE.TABLE=SNAPSHOT_ID"),
    (["--snapshot", "lake_clean.flights=abc"], "expected DATABASE.TABLE=SNAPSHOT_ID"),
    (["--as-of", "yesterday"], "Error: --as-of 'yesterday': expected an ISO 8601 timestamp"),
    (["--as-of", "2000-01-01"], "lake_clean.flights has no snapshot as of 2000-01-01T00:00:00+00:00: its first "
                                "snapshot ("),
])
def test_lake_sql_time_travel_errors_are_clear(lake, monkeypatch, args, message):
    root, _ = lake
    result = lake_sql(root, monkeypatch, CARRIERS, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_lake_sql_prefers_the_iceberg_table_to_a_version_folder_table_of_the_same_name(tmp_path, monkeypatch):
    from lake_platform.adapters.catalog import LocalCatalog, version_key
    from lake_platform.adapters.storage import LocalObjectStore

    build_lake(tmp_path)
    catalog = LocalCatalog(store=LocalObjectStore(root=str(tmp_path)))
    for table, carriers in [("flights", ["ZZ"]), ("flight_features", ["UA", "DL"])]:
        folder = tmp_path / version_key("exports", table, "v1")
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"carrier": carriers}), folder / "part-0.parquet")
        catalog.publish("exports", table, "v1", [("carrier", "string")])
    iceberg = LocalIcebergCatalog(tmp_path).pyiceberg()
    iceberg.create_namespace("lake_exports")
    iceberg.create_table("lake_exports.flights", schema=pa.schema([("carrier", pa.string())])).append(
        pa.table({"carrier": ["B6"]})
    )
    result = lake_sql(
        tmp_path, monkeypatch,
        "select (select string_agg(carrier, ' ') from lake_exports.flights) || ' / '"
        " || (select string_agg(carrier, ' ' order by carrier) from lake_exports.flight_features) as c",
    )
    assert result.exit_code == 0, result.output
    assert "B6 / DL UA" in result.output


def test_lake_sql_reads_the_lakes_iceberg_tables_beside_the_warehouse_s_plugin_views(lake, monkeypatch, tmp_path):
    """The warehouse (attached) has its own `lake_clean` views, made by dbt's plugin at an older snapshot; `lake sql`'s
    own views, in memory, come first."""
    root, facts = lake
    lake_root = tmp_path / "lake"
    shutil.copytree(root, lake_root)
    warehouse = lake_root / "warehouse" / "lake.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        lake_views.configure(con, lake_root, snapshots={"lake_clean.flights": facts["first"]})
    result = lake_sql(lake_root, monkeypatch, CARRIERS)
    assert result.exit_code == 0, result.output
    assert "UA DL" in result.output


# dbt: the dbt-duckdb plugin named in profiles.yml.


def make_plugin(root: Path, **config):
    from dbt.adapters.duckdb.plugins import BasePlugin

    # As dbt-duckdb builds it from the profile's `plugins:` entry (Environment.initialize_plugins).
    return BasePlugin.create("lake_platform.adapters.lake_views", config={"lake_root": str(root), **config})


def test_the_profile_names_the_plugin_for_duckdb_only():
    import yaml

    outputs = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["lake_warehouse"]["outputs"]
    assert outputs["duckdb"]["plugins"] == [{
        "module": "lake_platform.adapters.lake_views",
        "config": {"lake_root": "{{ var('lake_root', '../.lake') }}"},
    }]
    assert "plugins" not in outputs["redshift"]


def test_the_plugin_creates_the_views_in_the_warehouse_database_and_refreshes_them(tmp_path):
    root = tmp_path / "lake"
    facts = build_lake(root)
    (root / "warehouse").mkdir()
    path = str(root / "warehouse" / "lake.duckdb")
    plugin = make_plugin(root)
    assert plugin.name == "lake_views"
    with duckdb.connect(path) as conn:
        plugin.configure_connection(conn)
    with duckdb.connect(path, read_only=True) as conn:  # persisted in the warehouse file
        names = conn.execute("select schema_name || '.' || view_name from duckdb_views() where not internal "
                         "and database_name = 'lake' order by 1").fetchall()
        assert names == [("lake_clean.airlines",), ("lake_clean.flights",), ("lake_quarantine.flights",)]
        assert conn.execute(CARRIERS).fetchone() == ("UA DL",)
    # A new commit is read by the next connection dbt opens.
    load(root, "lake_clean.flights").append(flights([5], ["WN"], [DAY1]))
    with duckdb.connect(path) as conn:
        plugin.configure_connection(conn)
        assert conn.execute(CARRIERS).fetchone() == ("UA DL WN",)
    assert facts["first"]


def test_the_plugin_does_nothing_without_an_iceberg_catalog(tmp_path):
    (tmp_path / "warehouse").mkdir()
    with duckdb.connect(str(tmp_path / "warehouse" / "lake.duckdb")) as conn:
        make_plugin(tmp_path).configure_connection(conn)
        assert conn.execute("select count(*) from duckdb_views() where not internal").fetchone() == (0,)
    assert not (tmp_path / "catalog").exists()


def test_a_plugin_without_lake_root_is_refused():
    from dbt.adapters.duckdb.plugins import BasePlugin

    with pytest.raises(ValueError, match="needs `lake_root`"):
        BasePlugin.create("lake_platform.adapters.lake_views", config={})


def test_dbt_run_reads_the_iceberg_table_through_the_plugin_at_each_invocations_current_snapshot(tmp_path):
    """Real `dbt run`s of a staging model over an Iceberg table, in this process (dbtRunner, as
    tests/test_dbt_project.py runs dbt; the target folder is temporary, so dbt_project/target is left alone). The
    second run, after a new commit, reuses dbt-duckdb's open connection, yet reads the new snapshot."""
    from dbt.cli.main import dbtRunner

    root = tmp_path / "lake"
    build_lake(root)
    (root / "warehouse").mkdir()
    target = tmp_path / "target"

    def run_airlines():
        done = dbtRunner().invoke([
            "run", "--select", "stg_lake__airlines", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR), "--target", "duckdb", "--target-path", str(target),
            "--log-path", str(target), "--vars", json.dumps({"lake_root": str(root)}),
        ])
        assert done.success, done.exception or [r.message for r in done.result.results]
        # Not read_only: dbt-duckdb keeps the file open read-write in this process.
        with duckdb.connect(str(root / "warehouse" / "lake.duckdb")) as conn:
            return conn.execute("select carrier, carrier_name from main.stg_lake__airlines order by 1").fetchall()

    assert run_airlines() == [("DL", "Delta Air Lines Inc."), ("UA", "United Air Lines Inc.")]
    load(root, "lake_clean.airlines").append(pa.table({"carrier": ["B6"], "name": ["JetBlue Airways"]}))
    assert run_airlines() == [
        ("B6", "JetBlue Airways"), ("DL", "Delta Air Lines Inc."), ("UA", "United Air Lines Inc."),
    ]
