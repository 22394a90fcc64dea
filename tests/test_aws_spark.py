"""Spark on AWS: Glue and EMR Serverless launches against moto, and the Pipes entry that jobs run there.

moto accepts the job runs but executes nothing, so a botocore event hook plays the service: on
StartJobRun it fetches the shipped script and bundle from (moto) S3 and runs the script as the driver
would, with the arguments (Glue) or driver environment (EMR Serverless) the Pipes client set. The
metadata that reaches Dagster has therefore travelled the whole way: extras -> S3 context -> job ->
S3 messages -> materialization.
"""

import io
import runpy
import shlex
import shutil
import sys
import zipfile
from pathlib import Path

import boto3
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse
from dagster_pipes import PipesContext

from lake_platform.adapters.spark import SparkJobs
from lake_platform.adapters.spark_aws import EmrServerlessJobs, GlueJobs, ShippedCode, iceberg_spark_conf
from lake_platform.settings import SPARK_JOBS_DIR

REGION = "us-east-1"
BUCKET = "lake-test"
ROLE = "arn:aws:iam::123456789012:role/lake-spark"

TOY_JOB = '''
def run(spark, params):
    return {"rows": params["n"], "schema": [["id", "bigint"]], "spark": spark.version}


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
'''


@pytest.fixture(autouse=True)
def fresh_pipes_context(monkeypatch):
    # open_dagster_pipes keeps one context per process, as a job process needs; tests run several.
    monkeypatch.setattr(PipesContext, "_instance", None)


@pytest.fixture
def jobs_dir(tmp_path):
    folder = tmp_path / "spark_jobs"
    folder.mkdir()
    (folder / "toy.py").write_text(TOY_JOB)
    shutil.copy(SPARK_JOBS_DIR / "_pipes_entry.py", folder)
    return folder


def toy_asset():
    @dg.asset
    def toy(context: dg.AssetExecutionContext, spark_jobs: dg.ResourceParam[SparkJobs]):
        return dg.MaterializeResult(metadata=spark_jobs.run(context, "toy", {"n": 3}))

    return toy


def run_driver(script_uri: str, bundle_uri: str, argv: list[str], tmp_path: Path) -> None:
    """What the service's driver does: fetch the code, put the bundle on sys.path, run the script."""
    s3 = boto3.client("s3")
    local = {}
    for uri in (script_uri, bundle_uri):
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        local[uri] = tmp_path / key.rsplit("/", 1)[1]
        s3.download_file(bucket, key, str(local[uri]))
    saved_path, saved_argv = list(sys.path), sys.argv
    saved_entry = sys.modules.pop("_pipes_entry", None)
    sys.path.insert(0, str(local[bundle_uri]))
    sys.argv = [str(local[script_uri]), *argv]
    try:
        runpy.run_path(str(local[script_uri]), run_name="__main__")
    finally:
        sys.path[:], sys.argv = saved_path, saved_argv
        sys.modules.pop("_pipes_entry", None)
        if saved_entry:
            sys.modules["_pipes_entry"] = saved_entry


def test_glue_job_ships_code_creates_the_job_and_returns_the_metadata_the_job_reported(
    aws, jobs_dir, spark, tmp_path
):
    started = []

    def glue_runs_the_job(params, **_):
        started.append(params)
        job = boto3.client("glue").get_job(JobName=params["JobName"])["Job"]
        arguments = {**job["DefaultArguments"], **params["Arguments"]}
        argv = [item for pair in arguments.items() for item in pair]  # Glue passes `--key value`
        run_driver(job["Command"]["ScriptLocation"], arguments["--extra-py-files"], argv, tmp_path)

    aws.register("before-parameter-build.glue.StartJobRun", glue_runs_the_job)
    glue = GlueJobs(bucket=BUCKET, role_arn=ROLE, region_name=REGION, jobs_dir=str(jobs_dir))

    result = dg.materialize([toy_asset()], resources={"spark_jobs": glue})

    metadata = result.asset_materializations_for_node("toy")[0].metadata
    assert metadata["rows"].value == 3
    assert metadata["schema"].value == [["id", "bigint"]]
    assert metadata["spark"].value == spark.version
    assert metadata["AWS Glue Job Name"].value == "lake-toy"
    job = boto3.client("glue").get_job(JobName="lake-toy")["Job"]
    assert job["GlueVersion"] == "5.0" and job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] == 2
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 10}
    assert job["Command"]["ScriptLocation"].endswith("/toy.py")
    assert job["DefaultArguments"]["--extra-py-files"].endswith("/spark_jobs.zip")
    assert job["DefaultArguments"]["--datalake-formats"] == "iceberg"
    assert glue_conf(job["DefaultArguments"]) == list(LAKE_CATALOG.items())
    assert started[0]["Arguments"].keys() == {"--dagster-pipes-context", "--dagster-pipes-messages"}
    assert not boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="_pipes/").get("Contents")


def test_shipping_unchanged_code_again_uploads_nothing(aws, jobs_dir):
    glue = GlueJobs(bucket=BUCKET, role_arn=ROLE, region_name=REGION, jobs_dir=str(jobs_dir))
    puts = []
    aws.register("before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"]))

    first = glue.ship_code("toy")
    second = glue.ship_code("toy")
    (jobs_dir / "toy.py").write_text(TOY_JOB + "\n# changed\n")
    third = glue.ship_code("toy")

    assert first == second
    assert third.script_uri != first.script_uri and third.bundle_uri != first.bundle_uri
    assert len(puts) == 4  # script + bundle, twice: once for the first version, once for the change
    bundle = boto3.client("s3").get_object(Bucket=BUCKET, Key=puts[1])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        assert {"_pipes_entry.py", "toy.py", "dagster_pipes/__init__.py"} <= set(z.namelist())


def test_glue_job_definition_is_updated_only_when_it_changed(aws):
    updates = []
    # moto does not implement UpdateJob: record the request and answer it as Glue would.
    aws.register("before-parameter-build.glue.UpdateJob", lambda params, **_: updates.append(params))
    ok = AWSResponse("https://glue.us-east-1.amazonaws.com/", 200, {}, None)
    aws.register("before-call.glue.UpdateJob", lambda **_: (ok, {"JobName": "lake-toy"}))
    glue_jobs = GlueJobs(bucket=BUCKET, role_arn=ROLE, region_name=REGION, number_of_workers=4)
    client = boto3.client("glue")
    v1 = ShippedCode("s3://lake-test/_code/a/toy.py", "s3://lake-test/_code/b/spark_jobs.zip")
    v2 = ShippedCode("s3://lake-test/_code/c/toy.py", v1.bundle_uri)

    glue_jobs.ensure_job(client, "toy", v1)
    glue_jobs.ensure_job(client, "toy", v1)
    assert updates == []
    glue_jobs.ensure_job(client, "toy", v2)

    assert client.get_job(JobName="lake-toy")["Job"]["NumberOfWorkers"] == 4
    assert len(updates) == 1
    assert updates[0]["JobUpdate"]["Command"]["ScriptLocation"] == v2.script_uri
    assert updates[0]["JobUpdate"]["Role"] == ROLE


# The `lake` Spark catalog as AWS documents Iceberg on the Glue Data Catalog (Glue: "Using the Iceberg framework
# in AWS Glue"; EMR Serverless: "Using Apache Iceberg with EMR Serverless"), warehouse at s3://<bucket>/iceberg/.
LAKE_CATALOG = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.lake": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.lake.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
    "spark.sql.catalog.lake.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    "spark.sql.catalog.lake.warehouse": f"s3://{BUCKET}/iceberg/",
}
CODE = ShippedCode("s3://lake-test/_code/a/toy.py", "s3://lake-test/_code/b/spark_jobs.zip")


def test_iceberg_spark_conf_is_the_lake_catalog_on_the_glue_data_catalog():
    assert iceberg_spark_conf(f"s3://{BUCKET}/iceberg/") == LAKE_CATALOG


def glue_conf(arguments: dict[str, str]) -> list[tuple[str, str]]:
    """Glue's single `--conf` value, `k1=v1 --conf k2=v2 ...`, as the settings it carries."""
    return [tuple(item.split("=", 1)) for item in arguments["--conf"].split(" --conf ")]


def test_glue_job_enables_iceberg_with_the_lake_catalog_and_user_arguments_still_win():
    definition = GlueJobs(bucket=BUCKET, role_arn=ROLE, region_name=REGION).job_definition("toy", CODE)

    assert definition["DefaultArguments"] == {
        "--job-language": "python",
        "--extra-py-files": CODE.bundle_uri,
        "--datalake-formats": "iceberg",
        "--conf": definition["DefaultArguments"]["--conf"],
    }
    assert glue_conf(definition["DefaultArguments"]) == list(LAKE_CATALOG.items())

    moved = GlueJobs(bucket=BUCKET, role_arn=ROLE, iceberg_prefix="warehouse/iceberg").job_definition("toy", CODE)
    assert dict(glue_conf(moved["DefaultArguments"]))["spark.sql.catalog.lake.warehouse"] == (
        f"s3://{BUCKET}/warehouse/iceberg/"
    )

    user = {"--conf": "spark.sql.shuffle.partitions=8", "--enable-metrics": "true"}
    overridden = GlueJobs(bucket=BUCKET, role_arn=ROLE, default_arguments=user).job_definition("toy", CODE)
    assert overridden["DefaultArguments"]["--conf"] == "spark.sql.shuffle.partitions=8"
    assert overridden["DefaultArguments"]["--enable-metrics"] == "true"
    assert overridden["DefaultArguments"]["--datalake-formats"] == "iceberg"


def submit_conf(request: dict) -> list[tuple[str, str]]:
    """The `--conf k=v` pairs of a job run's sparkSubmitParameters, in order (Spark's last one wins)."""
    tokens = shlex.split(request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    assert tokens[::2] == ["--conf"] * (len(tokens) // 2) and len(tokens) % 2 == 0
    return [tuple(value.split("=", 1)) for value in tokens[1::2]]


def test_emr_serverless_run_loads_emrs_iceberg_runtime_and_the_lake_catalog_before_the_users_parameters():
    emr = EmrServerlessJobs(bucket=BUCKET, application_id="00f1", execution_role_arn=ROLE, region_name=REGION)
    assert submit_conf(emr.job_run_request("toy", CODE, "0123456789")) == [
        ("spark.submit.pyFiles", CODE.bundle_uri),
        ("spark.jars", "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"),
        *LAKE_CATALOG.items(),
        # The custom image's Python 3.11 (deploy/docker/emr-spark): dagster-pipes needs >= 3.10, EMR 7 ships 3.9.
        ("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", "/usr/bin/python3.11"),
        ("spark.emr-serverless.driverEnv.PYSPARK_PYTHON", "/usr/bin/python3.11"),
        ("spark.executorEnv.PYSPARK_PYTHON", "/usr/bin/python3.11"),
    ]

    user = "--conf spark.executor.cores=4 --conf spark.sql.catalog.lake.warehouse=s3://elsewhere/wh/"
    emr = EmrServerlessJobs(
        bucket=BUCKET, application_id="00f1", execution_role_arn=ROLE, spark_submit_parameters=user
    )
    conf = submit_conf(emr.job_run_request("toy", CODE, "0123456789"))
    assert conf[-2:] == [("spark.executor.cores", "4"), ("spark.sql.catalog.lake.warehouse", "s3://elsewhere/wh/")]
    assert dict(conf)["spark.sql.catalog.lake.warehouse"] == "s3://elsewhere/wh/"


def test_emr_serverless_job_run_carries_code_and_pipes_env_and_returns_the_reported_metadata(
    aws, jobs_dir, spark, tmp_path, monkeypatch
):
    started = []

    def emr_runs_the_job(params, **_):
        started.append(params)
        submit = params["jobDriver"]["sparkSubmit"]
        conf = dict(c.split("=", 1) for c in shlex.split(submit["sparkSubmitParameters"]) if "=" in c)
        for key, value in conf.items():
            if key.startswith("spark.emr-serverless.driverEnv."):
                monkeypatch.setenv(key.removeprefix("spark.emr-serverless.driverEnv."), value)
        run_driver(submit["entryPoint"], conf["spark.submit.pyFiles"], [], tmp_path)

    aws.register("before-parameter-build.emr-serverless.StartJobRun", emr_runs_the_job)
    app = boto3.client("emr-serverless").create_application(
        name="lake", releaseLabel="emr-7.5.0", type="SPARK"
    )["applicationId"]
    emr = EmrServerlessJobs(
        bucket=BUCKET, application_id=app, execution_role_arn=ROLE, region_name=REGION, jobs_dir=str(jobs_dir)
    )

    result = dg.materialize([toy_asset()], resources={"spark_jobs": emr})

    metadata = result.asset_materializations_for_node("toy")[0].metadata
    assert metadata["rows"].value == 3
    assert metadata["AWS EMR Serverless Application ID"].value == app
    request = started[0]
    assert request["executionRoleArn"] == ROLE and request["applicationId"] == app
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"].endswith("/toy.py")
    assert "DAGSTER_PIPES_CONTEXT=" in request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    conf = dict(submit_conf(request))
    assert conf["spark.jars"] == "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    assert LAKE_CATALOG.items() <= conf.items()


def entry_main():
    if str(SPARK_JOBS_DIR) not in sys.path:
        sys.path.insert(0, str(SPARK_JOBS_DIR))
    from _pipes_entry import main

    return main


def count_rows(spark, params):
    return {"rows": spark.range(params["n"]).count(), "schema": [["id", "bigint"]]}


def materialize_under_pipes(launch, job=count_rows):
    """Materialize an asset whose body is a Pipes session that `launch`es `main(job)` in-process.

    Returns the materialization's metadata (None if there was none) and what the run logged.
    """

    @dg.asset
    def toy(context: dg.AssetExecutionContext):
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
            extras={"n": 5},
        ) as session:
            launch(session, lambda: entry_main()(job))
        yield from session.get_results(implicit_materializations=False)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([toy], instance=instance, raise_on_error=False)
    logs = []
    for entry in instance.all_logs(result.run_id):
        logs.append(entry.user_message)
        error = entry.dagster_event and getattr(entry.dagster_event.event_specific_data, "error", None)
        if error:
            logs.append(error.message)
    materializations = result.asset_materializations_for_node("toy")
    return (materializations[0].metadata if materializations else None), logs


def test_pipes_entry_reads_glue_style_cli_arguments_and_reports_the_job_metadata(spark, monkeypatch):
    def as_glue(session, run_main):
        argv = [item for pair in session.get_bootstrap_cli_arguments().items() for item in pair]
        monkeypatch.setattr(sys, "argv", ["toy.py", "--JOB_ID", "j_1", *argv])
        run_main()

    metadata, logs = materialize_under_pipes(as_glue)

    assert metadata["rows"].value == 5
    assert metadata["schema"].value == [["id", "bigint"]]
    assert any("running on glue" in m for m in logs)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_pipes_entry_reads_emr_style_environment_and_reports_the_job_metadata(spark, monkeypatch):
    def as_emr_serverless(session, run_main):
        for name, value in session.get_bootstrap_env_vars().items():
            monkeypatch.setenv(name, value)
        run_main()

    metadata, logs = materialize_under_pipes(as_emr_serverless)

    assert metadata["rows"].value == 5
    assert any("running on emr-serverless" in m for m in logs)


def test_pipes_entry_reraises_a_failing_job_and_dagster_receives_the_error(spark, monkeypatch):
    def broken(spark, params):
        raise ValueError("rule 3 rejected every row")

    def as_emr_serverless(session, run_main):
        for name, value in session.get_bootstrap_env_vars().items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match="rule 3"):  # a non-zero exit fails the Glue/EMR run
            run_main()

    metadata, logs = materialize_under_pipes(as_emr_serverless, job=broken)

    assert metadata is None
    assert any("rule 3 rejected every row" in m for m in logs)


def test_pipes_entry_refuses_to_run_without_pipes_params(monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    monkeypatch.setattr(sys, "argv", ["toy.py"])

    with pytest.raises(SystemExit, match="without Dagster Pipes params"):
        entry_main()(count_rows)
