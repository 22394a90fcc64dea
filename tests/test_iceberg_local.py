"""The local Iceberg catalog (lake_platform/adapters/iceberg.py): Spark writes, PyIceberg reads the same tables.

Spark runs in a child process: `spark.jars` is read only when a JVM starts, and this test process may already
hold a SparkSession without the Iceberg runtime.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from lake_platform.adapters import iceberg
from lake_platform.settings import PROJECT_ROOT

SPARK_WRITER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from lake_platform.adapters.iceberg import LocalIcebergCatalog
    from lake_platform.adapters.spark import default_java_home

    os.environ["JAVA_HOME"] = default_java_home()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    for key, value in LocalIcebergCatalog(Path(sys.argv[1])).spark_conf().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    cow = ", ".join(f"'write.{op}.mode'='copy-on-write'" for op in ("delete", "update", "merge"))
    spark.sql("create namespace if not exists lake.clean")
    spark.sql(
        "create table lake.clean.flights (flight_id bigint, flight_date date, carrier string) using iceberg "
        f"partitioned by (flight_date) tblproperties ({cow})"
    )
    spark.sql(
        "insert into lake.clean.flights values (1, date'2013-01-01', 'UA'), (2, date'2013-01-02', 'AA'),"
        " (3, date'2013-01-02', 'B6')"
    )
    first = spark.sql("select snapshot_id from lake.clean.flights.snapshots").collect()[0][0]
    # A day's rerun replaces that day only (dynamic partition overwrite); a CDC batch merges by key.
    spark.sql("insert overwrite lake.clean.flights values (4, date'2013-01-02', 'DL')")
    spark.sql(
        "merge into lake.clean.flights t using (select 1 flight_id, date'2013-01-01' flight_date, 'WN' carrier) s "
        "on t.flight_id = s.flight_id when matched then update set * when not matched then insert *"
    )
    rows = [r.asDict() for r in spark.sql("select flight_id, carrier from lake.clean.flights order by 1").collect()]
    print(json.dumps({"first_snapshot": first, "rows": rows}))
    """
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("iceberg_lake")
    done = subprocess.run([sys.executable, "-c", SPARK_WRITER, str(root)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return root, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_jars_are_installed_in_the_venv_at_glue_5s_iceberg_version():
    paths = iceberg.jar_paths()
    assert [p.name for p in paths] == ["iceberg-spark-runtime-3.5_2.12-1.7.1.jar", "sqlite-jdbc-3.50.3.0.jar"]
    assert all(Path(sys.prefix) in p.parents for p in paths)


def test_a_missing_jar_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(iceberg, "jars_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="run `make install`"):
        iceberg.LocalIcebergCatalog(tmp_path).spark_conf()


def test_spark_overwrites_a_day_and_merges_by_key(written):
    _, result = written
    assert result["rows"] == [{"flight_id": 1, "carrier": "WN"}, {"flight_id": 4, "carrier": "DL"}]


def test_pyiceberg_reads_the_current_snapshot_and_an_earlier_one(written):
    root, result = written
    table = iceberg.LocalIcebergCatalog(root).pyiceberg().load_table("clean.flights")
    current = table.scan().to_arrow().sort_by("flight_id")
    assert current.select(["flight_id", "carrier"]).to_pylist() == result["rows"]
    assert current.schema.field("flight_date").type == pa.date32()
    first = table.scan(snapshot_id=result["first_snapshot"]).to_arrow().sort_by("flight_id")
    assert first.column("carrier").to_pylist() == ["UA", "AA", "B6"]
    # Copy-on-write: the planned files are the whole table, no delete files for a reader to apply.
    tasks = list(table.scan().plan_files())
    assert all(not task.delete_files for task in tasks)
    assert {Path(t.file.file_path.removeprefix("file:")).parent.name for t in tasks} == {
        "flight_date=2013-01-01", "flight_date=2013-01-02"
    }
    assert all(Path(t.file.file_path.removeprefix("file:")).is_relative_to(root / "iceberg") for t in tasks)


def test_lake_tables_writes_days_in_one_commit_and_the_session_switches_lakes(spark, tmp_path):
    """spark_jobs/lake_tables.py on the shared session: a table is created copy-on-write on its first write, a
    daily write replaces exactly its days (a day with no rows is emptied), the snapshot id it returns is the
    commit's, and `use_lake` points the session's `lake` catalog at another lake and back."""
    from datetime import date

    from lake_platform.adapters.spark import load_job

    lake_tables = load_job("lake_tables")
    first, second = tmp_path / "first", tmp_path / "second"
    target = {"iceberg": "lake.lake_clean.t", "partition_column": "day",
              "replace": {"first": "2013-01-01", "last": "2013-01-02"}}
    iceberg.use_lake(spark, first)
    rows = [(1, date(2013, 1, 1)), (2, date(2013, 1, 2)), (3, date(2013, 1, 3))]
    snapshot = lake_tables.write_table(spark.createDataFrame(rows, "id bigint, day date"),
                                       {**target, "replace": {"first": "2013-01-01", "last": "2013-01-03"}})
    # Day 1 gets a new row, day 2 has none left; day 3 is outside the range and keeps its row.
    later = lake_tables.write_table(spark.createDataFrame([(4, date(2013, 1, 1))], "id bigint, day date"), target)
    assert sorted(r.id for r in spark.table("lake.lake_clean.t").collect()) == [3, 4]
    assert sorted(r.id for r in lake_tables.read_back(spark, target, None, snapshot).collect()) == [1, 2]

    table = iceberg.LocalIcebergCatalog(first).pyiceberg().load_table(("lake_clean", "t"))
    assert table.current_snapshot().snapshot_id == later
    assert table.properties["write.merge.mode"] == "copy-on-write" and table.format_version == 2
    assert [f.name for f in table.spec().fields] == ["day"]
    # A daily input reads only its days: the partition column is found (Spark 3.5's DESCRIBE lists it under
    # `# Partition Information`), and the filter prunes the other days' files.
    assert lake_tables.partition_column(spark, "lake.lake_clean.t") == "day"
    days = lake_tables.read_table(spark, {"iceberg": "lake.lake_clean.t", "values": ["2013-01-03"]})
    assert [r.id for r in days.collect()] == [3]
    assert lake_tables.read_table(spark, {"iceberg": "lake.lake_clean.t", "values": None}).count() == 2

    iceberg.use_lake(spark, second)
    assert not spark.catalog.tableExists("lake.lake_clean.t")
    iceberg.use_lake(spark, first)
    assert spark.table("lake.lake_clean.t").count() == 2
