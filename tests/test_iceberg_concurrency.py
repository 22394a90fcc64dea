"""Two processes committing to one Iceberg table at once (README, Table format): Iceberg's optimistic
concurrency retries the commit that lost the race, nothing is lost and no day is a mix of two runs.

Each process is a Python with its own Spark JVM, as two Dagster runs (or two Glue jobs) are; both commit through
spark_jobs/lake_tables.py to the same local catalog (Iceberg's JDBC catalog on SQLite). They start writing
together (a file both wait for), then each commits several rounds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lake_platform.settings import PROJECT_ROOT

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import date
    from pathlib import Path

    from lake_platform.adapters.iceberg import LocalIcebergCatalog
    from lake_platform.adapters.spark import default_java_home

    os.environ["JAVA_HOME"] = default_java_home()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    sys.path.insert(0, "spark_jobs")
    from pyspark.sql import SparkSession
    import lake_tables

    root, name, day, rounds = Path(sys.argv[1]), sys.argv[2], date.fromisoformat(sys.argv[3]), int(sys.argv[4])
    builder = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.sql.shuffle.partitions", "1").config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in LocalIcebergCatalog(root).spark_conf().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1).count()  # the JVM is up and warm before the race
    (root / f"{name}.ready").touch()
    while not (root / "go").exists():
        time.sleep(0.01)
    target = {"iceberg": "lake.lake_clean.t", "partition_column": "day",
              "replace": {"first": day.isoformat(), "last": day.isoformat()}}
    snapshots = []
    for n in range(rounds):
        rows = [(f"{name}-{n}-{k}", day) for k in range(3)]
        snapshots.append(lake_tables.write_table(spark.createDataFrame(rows, "id string, day date"), target, "day"))
    print(json.dumps({"snapshots": snapshots}))
    """
)
ROUNDS = 4


def race(root: Path, writers: dict[str, str]) -> dict[str, dict]:
    """Run one writer process per name (its day), release them together, return each one's JSON output."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(PROJECT_ROOT)}
    logs = {name: root / f"{name}.log" for name in writers}
    processes = {
        name: subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, day, str(ROUNDS)], cwd=PROJECT_ROOT,
                               env=env, stdout=logs[name].open("wb"), stderr=subprocess.STDOUT)
        for name, day in writers.items()
    }
    try:
        deadline = time.monotonic() + 300  # two JVM starts on a loaded machine; not an assertion on timing
        while not all((root / f"{name}.ready").exists() for name in writers):
            failed = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
            if failed or time.monotonic() > deadline:
                pytest.fail(f"a writer never got ready: {failed}\n" + "\n".join(l.read_text()[-2000:] for l in logs.values()))
            time.sleep(0.05)
        (root / "go").touch()
        outputs = {}
        for name, process in processes.items():
            assert process.wait(timeout=600) == 0, logs[name].read_text()[-3000:]
            outputs[name] = json.loads(logs[name].read_text().strip().splitlines()[-1])
        return outputs
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()


def table_rows(root: Path) -> list[tuple[str, str]]:
    from lake_platform.adapters.iceberg import LocalIcebergCatalog

    with LocalIcebergCatalog(root).opened() as catalog:
        table = catalog.load_table("lake_clean.t")
        rows = table.scan().to_arrow().to_pylist()
        history = [s.snapshot_id for s in table.snapshots()]
    return sorted((r["id"], r["day"].isoformat()) for r in rows), history


def test_two_processes_committing_different_days_both_land(tmp_path):
    outputs = race(tmp_path, {"a": "2013-01-01", "b": "2013-01-02"})
    rows, history = table_rows(tmp_path)
    # Each writer's last round is its day: the commit that lost a race was retried on the other's snapshot.
    assert rows == [(f"a-{ROUNDS - 1}-{k}", "2013-01-01") for k in range(3)] + [
        (f"b-{ROUNDS - 1}-{k}", "2013-01-02") for k in range(3)
    ]
    committed = outputs["a"]["snapshots"] + outputs["b"]["snapshots"]
    assert len(set(committed)) == 2 * ROUNDS and set(committed) <= set(history), "every commit is a snapshot"


def test_two_processes_replacing_the_same_day_leave_one_runs_rows(tmp_path):
    outputs = race(tmp_path, {"a": "2013-01-01", "b": "2013-01-01"})
    rows, history = table_rows(tmp_path)
    last = {name: [(f"{name}-{ROUNDS - 1}-{k}", "2013-01-01") for k in range(3)] for name in ("a", "b")}
    assert rows in (last["a"], last["b"]), f"the day is one run's rows, not a mix: {rows}"
    committed = outputs["a"]["snapshots"] + outputs["b"]["snapshots"]
    assert len(set(committed)) == 2 * ROUNDS and set(committed) <= set(history)
