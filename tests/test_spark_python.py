"""Local Spark's Python workers run on the venv's interpreter, not on the first `python3` on PATH.

On a laptop whose `python3` is another version than the venv's, workers started from PATH fail with a
Python version mismatch as soon as a job uses RDD lambdas or Python UDFs.
"""

import os
import subprocess
import sys
import textwrap
import types

from lake_platform.adapters.spark import LocalSparkJobs

# Run in a fresh process: the SparkContext (and with it the workers' interpreter) is fixed when the
# process's first session starts, and the test session may have started one already.
CHILD = textwrap.dedent(
    """
    import shutil, sys
    assert shutil.which("python3").startswith(sys.argv[1]), shutil.which("python3")  # the stub shadows
    from lake_platform.adapters.spark import LocalSparkJobs
    spark = LocalSparkJobs(master="local[1]").spark_session()
    print("RESULT", spark.sparkContext.parallelize([1, 2, 3]).map(lambda x: x * 2).collect())
    print("CONF", spark.conf.get("spark.pyspark.python"))
    """
)


def test_local_spark_python_workers_use_the_running_interpreter_not_python3_on_path(tmp_path):
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("python3", "python"):
        stub = stubs / name
        stub.write_text('#!/bin/sh\necho "stub $0 ran: not the venv\'s Python" >&2\nexit 1\n')
        stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["PATH"] = f"{stubs}{os.pathsep}{env.get('PATH', '')}"
    env["SPARK_LOCAL_IP"] = "127.0.0.1"

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(stubs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert child.returncode == 0, child.stderr[-4000:]
    assert "RESULT [2, 4, 6]" in child.stdout
    assert f"CONF {sys.executable}" in child.stdout
    assert "stub" not in child.stderr


def _session_config(monkeypatch) -> dict:
    """The config `spark_session()` hands to dagster-pyspark, with no JVM started."""
    import dagster_pyspark

    seen = {}

    class FakeLazyPySparkResource:
        def __init__(self, spark_config):
            seen.update(spark_config)
            seen["PYSPARK_PYTHON at build"] = os.environ.get("PYSPARK_PYTHON")
            log = types.SimpleNamespace(setLogLevel=lambda level: None)
            self.spark_session = types.SimpleNamespace(sparkContext=log)

    monkeypatch.setattr(dagster_pyspark, "LazyPySparkResource", FakeLazyPySparkResource)
    for name in ("JAVA_HOME", "SPARK_LOCAL_IP"):  # spark_session() sets these: restore them afterwards
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    LocalSparkJobs(master="local[1]").spark_session()
    return seen


def test_local_spark_defaults_pyspark_python_to_the_running_interpreter(monkeypatch):
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    config = _session_config(monkeypatch)
    assert config["PYSPARK_PYTHON at build"] == sys.executable
    assert config["spark.pyspark.python"] == sys.executable
    assert config["spark.pyspark.driver.python"] == sys.executable


def test_a_user_set_pyspark_python_wins(monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/custom/bin/python3")
    config = _session_config(monkeypatch)
    assert os.environ["PYSPARK_PYTHON"] == "/opt/custom/bin/python3"
    assert config["PYSPARK_PYTHON at build"] == "/opt/custom/bin/python3"
    assert config["spark.pyspark.python"] == "/opt/custom/bin/python3"
