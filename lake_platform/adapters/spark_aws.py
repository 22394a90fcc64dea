"""Spark jobs on AWS: cleaning jobs on Glue, curated jobs on EMR Serverless, both through Dagster Pipes.

A run ships the job's code to S3 content-addressed (`<code_prefix>/<sha>/<file>`: unchanged code is not
uploaded again, and a run executes exactly the code it started with), launches it with dagster-aws's
Pipes client, and returns the metadata the job reported, as LocalSparkJobs returns what `run` returned.

Shipped with every job: `spark_jobs.zip`, holding every module of `spark_jobs/` (so jobs import their
helpers and `_pipes_entry` as they do locally) and this process's own `dagster_pipes` (pure Python), so
the cluster needs no pip install, no internet access, and speaks the orchestrator's Pipes version.

Pipes context and messages travel through S3 under `<pipes_prefix>/`, on both services: messages are read
from a bucket the run already writes to, with no CloudWatch log-group setup and no log-ingestion delay.

Both services run with Apache Iceberg enabled: the Spark catalog `lake` (iceberg.CATALOG_NAME) is Iceberg's
GlueCatalog on the Glue Data Catalog, with its warehouse at `s3://<bucket>/<iceberg_prefix>/`, so a job
addresses a table as `lake.<database>.<table>` (`iceberg_spark_conf`). Glue loads its bundled Iceberg
(1.7.1 on Glue 5.0) through `--datalake-formats iceberg`; EMR Serverless through the runtime jar EMR 7 ships.

With `kms_key_id` (LAKE_KMS_KEY_ID: the lake key's ARN) what a run writes to S3 is SSE-KMS with that key: the
shipped code and the Pipes context (PutObject from here), the Iceberg files (S3FileIO's `s3.sse.type`/`s3.sse.key` on
the `lake` catalog), other `s3://` writes of Spark (EMRFS's server-side-encryption settings), Glue's own S3 writes
(the Glue security configuration `security_configuration`, SSE-KMS, which deploy/aws creates) and EMR Serverless'
logs under `log_uri` (its `encryptionKeyArn`). Not covered from here: the Pipes messages the job itself puts
(dagster_pipes' S3 message writer in spark_jobs/_pipes_entry.py sends no encryption header; the bucket's default
encryption applies to them).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from lake_platform.adapters.iceberg import CATALOG_NAME
from lake_platform.adapters.spark import SparkJobs
from lake_platform.adapters.storage import encrypt_writes, sse_kms
from lake_platform.settings import SPARK_JOBS_DIR

BUNDLE_NAME = "spark_jobs.zip"
# The Iceberg Spark runtime EMR 7 ships on every EMR Serverless Spark worker (AWS, "Using Apache Iceberg with
# EMR Serverless": https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-iceberg.html).
EMR_ICEBERG_RUNTIME_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
# The Glue security configuration (S3 encryption SSE-KMS with the lake key) the aws deployment's Glue jobs run with;
# deploy/aws's compute stack creates it under this name.
GLUE_SECURITY_CONFIGURATION = "lake-platform-sse-kms"


def iceberg_spark_conf(warehouse: str, kms_key_id: str | None = None) -> dict[str, str]:
    """Spark settings that make `lake` (CATALOG_NAME) an Iceberg catalog on the AWS Glue Data Catalog.

    The settings AWS documents for Iceberg on the Glue Data Catalog, with `lake` as the catalog name:
    - Glue: "Using the Iceberg framework in AWS Glue", Enabling the Iceberg framework
      (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html): these five,
      plus `--datalake-formats iceberg` (GlueJobs.job_definition). The page's further Lake Formation settings
      apply only to tables registered with Lake Formation (pass them through default_arguments then).
    - EMR Serverless: "Using Apache Iceberg with EMR Serverless"
      (https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-iceberg.html): the same catalog
      settings plus `spark.jars` (EmrServerlessJobs.job_run_request). Its example also sets
      `spark.hadoop.hive.metastore.client.factory.class`, which makes Glue the metastore of Spark's own
      session catalog (Hive tables); the `lake` catalog reaches Glue through Iceberg's GlueCatalog without it.
    io-impl S3FileIO is also GlueCatalog's default; it is set explicitly, as the Glue page does.

    With `kms_key_id`, S3FileIO writes every data, manifest and metadata file SSE-KMS with that key (Iceberg's
    catalog properties `s3.sse.type=kms`, `s3.sse.key=<key ARN>`: Iceberg, "Iceberg AWS Integrations", S3 Server
    Side Encryption), and so do Spark's other `s3://` writes through EMRFS (`fs.s3.enableServerSideEncryption`,
    `fs.s3.serverSideEncryption.kms.keyId`: EMR, "Specifying Amazon S3 encryption using EMRFS properties").
    """
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.warehouse": warehouse,
    }
    if kms_key_id:
        conf.update({
            f"{prefix}.s3.sse.type": "kms",
            f"{prefix}.s3.sse.key": kms_key_id,
            "spark.hadoop.fs.s3.enableServerSideEncryption": "true",
            "spark.hadoop.fs.s3.serverSideEncryption.kms.keyId": kms_key_id,
        })
    return conf


@dataclass(frozen=True)
class ShippedCode:
    script_uri: str  # the job script, Glue's ScriptLocation / EMR Serverless's entryPoint
    bundle_uri: str  # spark_jobs.zip, on the driver's sys.path (--extra-py-files / spark.submit.pyFiles)


class AwsSparkJobs(SparkJobs):
    """What Glue and EMR Serverless runs share: the code bucket, Pipes over S3, the returned metadata."""

    bucket: str = Field(description="Bucket for shipped code and Pipes messages (e.g. the lake bucket).")
    code_prefix: str = Field(default="_code/spark_jobs", description="Prefix of the shipped code.")
    pipes_prefix: str = Field(default="_pipes", description="Prefix of Pipes context and message objects.")
    iceberg_prefix: str = Field(default="iceberg", description="Prefix of the Iceberg warehouse in the bucket.")
    jobs_dir: str | None = Field(default=None, description="Folder of job scripts; default: spark_jobs/.")
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint for all calls (tests).")
    kms_key_id: str | None = Field(
        default=None, description="KMS key (ARN) of SSE-KMS on everything the runs write to S3; None: bucket default."
    )

    def iceberg_warehouse(self) -> str:
        """Where Iceberg's GlueCatalog puts new tables: `<warehouse><database>.db/<table>/`."""
        prefix = self.iceberg_prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}/" if prefix else f"s3://{self.bucket}/"

    def iceberg_conf(self) -> dict[str, str]:
        return iceberg_spark_conf(self.iceberg_warehouse(), self.kms_key_id)

    def _client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region_name, endpoint_url=self.endpoint_url)

    def ship_code(self, job: str) -> ShippedCode:
        """Upload the job script and the bundle unless S3 already holds the same content."""
        folder = Path(self.jobs_dir) if self.jobs_dir else SPARK_JOBS_DIR
        script = folder / f"{job}.py"
        if not script.exists():
            raise FileNotFoundError(f"no Spark job {job!r}: {script} does not exist")
        s3 = self._client("s3")
        return ShippedCode(
            script_uri=self._upload(s3, script.name, script.read_bytes()),
            bundle_uri=self._upload(s3, BUNDLE_NAME, code_bundle(folder)),
        )

    def _upload(self, s3, name: str, data: bytes) -> str:
        key = f"{self.code_prefix}/{hashlib.sha256(data).hexdigest()[:16]}/{name}"
        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            s3.put_object(Bucket=self.bucket, Key=key, Body=data, **sse_kms(self.kms_key_id))
        return f"s3://{self.bucket}/{key}"

    def _pipes_io(self) -> dict[str, Any]:
        from dagster_aws.pipes import PipesS3ContextInjector

        s3 = encrypt_writes(self._client("s3"), self.kms_key_id)  # the injector's put_object of the context
        return {
            "context_injector": PipesS3ContextInjector(
                bucket=self.bucket, client=s3, key_prefix=f"{self.pipes_prefix}/"
            ),
            "message_reader": prefixed_s3_message_reader(
                bucket=self.bucket, client=s3, key_prefix=self.pipes_prefix
            ),
        }


class GlueJobs(AwsSparkJobs):
    """Runs each Spark job as an AWS Glue job `<job_name_prefix><job>`, created or updated on launch."""

    role_arn: str = Field(description="IAM role the Glue job runs as (reads/writes the lake).")
    glue_version: str = Field(default="5.0", description="Glue 5.0 runs Spark 3.5 on Python 3.11.")
    worker_type: str = Field(default="G.1X", description="Glue worker type (G.1X, G.2X, ...).")
    number_of_workers: int = Field(default=2, description="Workers per job run, driver included.")
    max_concurrent_runs: int = Field(
        default=10, description="Glue's default of 1 fails all but one of the clean tables started together."
    )
    timeout_minutes: int = Field(default=60, description="Glue stops a run that takes longer.")
    job_name_prefix: str = Field(default="lake-", description="Prefix of the Glue job names.")
    security_configuration: str | None = Field(
        default=None,
        description="Glue security configuration of the jobs (e.g. S3 encryption SSE-KMS); it must exist. The aws "
        f"deployment uses {GLUE_SECURITY_CONFIGURATION!r}, created by deploy/aws.",
    )
    default_arguments: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Glue job arguments, e.g. {'--enable-metrics': 'true'}; they win over lake_platform's "
        "(a '--conf' here replaces the Iceberg catalog settings: chain them into it, see iceberg_spark_conf).",
    )

    def run(self, context, job, params):
        from dagster_aws.pipes import PipesGlueClient

        code = self.ship_code(job)
        glue = self._client("glue")
        name = self.ensure_job(glue, job, code)
        context.log.info(f"launching Glue job {name} ({code.script_uri})")
        invocation = PipesGlueClient(client=glue, **self._pipes_io()).run(
            context=context,
            start_job_run_params={"JobName": name, "Arguments": {}},
            extras=dict(params),
        )
        return reported_metadata(invocation, f"Glue job {name}")

    def job_definition(self, job: str, code: ShippedCode) -> dict[str, Any]:
        """The Glue job as CreateJob/UpdateJob take it (UpdateJob replaces the whole definition)."""
        return {
            "Description": f"lake_platform Spark job spark_jobs/{job}.py, launched by Dagster Pipes",
            "Role": self.role_arn,
            "Command": {"Name": "glueetl", "ScriptLocation": code.script_uri, "PythonVersion": "3"},
            "DefaultArguments": {
                "--job-language": "python",
                "--extra-py-files": code.bundle_uri,
                # Glue's bundled Iceberg, and the `lake` catalog on the Glue Data Catalog. Glue takes a single
                # `--conf` argument; AWS's documented way to pass several settings is one value chaining them
                # as `k1=v1 --conf k2=v2 ...` (see iceberg_spark_conf).
                "--datalake-formats": "iceberg",
                "--conf": " --conf ".join(f"{k}={v}" for k, v in self.iceberg_conf().items()),
                **self.default_arguments,
            },
            "GlueVersion": self.glue_version,
            "WorkerType": self.worker_type,
            "NumberOfWorkers": self.number_of_workers,
            "ExecutionProperty": {"MaxConcurrentRuns": self.max_concurrent_runs},
            "Timeout": self.timeout_minutes,
            **({"SecurityConfiguration": self.security_configuration} if self.security_configuration else {}),
        }

    def ensure_job(self, glue, job: str, code: ShippedCode) -> str:
        """Create the Glue job, or update it when its definition (e.g. the script's sha) changed."""
        name = f"{self.job_name_prefix}{job}"
        wanted = self.job_definition(job, code)
        try:
            current = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            try:
                glue.create_job(Name=name, **wanted)
                return name
            except glue.exceptions.AlreadyExistsException:  # a parallel step created it first
                current = {}
        if _projection(current, wanted) != wanted:
            glue.update_job(JobName=name, JobUpdate=wanted)
        return name


class EmrServerlessJobs(AwsSparkJobs):
    """Runs each Spark job as a job run on an existing EMR Serverless Spark application."""

    application_id: str = Field(description="EMR Serverless application (Spark, emr-7.x, Python >= 3.10).")
    execution_role_arn: str = Field(description="IAM role the job run executes as.")
    spark_submit_parameters: str = Field(
        default="",
        description="Extra spark-submit parameters, e.g. '--conf spark.executor.cores=4'; they come last and win "
        f"(a spark.jars here replaces the Iceberg runtime's: list {EMR_ICEBERG_RUNTIME_JAR} in it too).",
    )
    execution_timeout_minutes: int = Field(default=120, description="EMR cancels a longer run.")
    log_uri: str | None = Field(default=None, description="s3:// URI for driver/executor logs.")
    python: str | None = Field(
        default="/usr/bin/python3.11",
        description="The driver's and executors' Python (PYSPARK_PYTHON): the application's custom image "
        "(deploy/docker/emr-spark) adds Python 3.11, as dagster-pipes needs >= 3.10 and EMR 7 ships 3.9; None: the "
        "image's default.",
    )

    def run(self, context, job, params):
        from dagster_aws.pipes import PipesEMRServerlessClient

        code = self.ship_code(job)
        emr = self._client("emr-serverless")
        context.log.info(f"launching {job} on EMR Serverless application {self.application_id}")
        # PipesEMRServerlessClient logs that non-CloudWatch readers are "not supported": that only
        # concerns the CloudWatch log tailing it sets up; the S3 reader's thread still receives every
        # message (tests/test_aws_spark.py runs the whole round trip).
        invocation = PipesEMRServerlessClient(client=emr, **self._pipes_io()).run(
            context=context,
            start_job_run_params=self.job_run_request(job, code, context.run_id),
            extras=dict(params),
        )
        return reported_metadata(invocation, f"EMR Serverless job {job}")

    def job_run_request(self, job: str, code: ShippedCode, run_id: str) -> dict[str, Any]:
        # EMR 7's bundled Iceberg runtime and the `lake` catalog; the user's parameters come last, so they win.
        conf = {
            "spark.submit.pyFiles": code.bundle_uri,
            "spark.jars": EMR_ICEBERG_RUNTIME_JAR,
            **self.iceberg_conf(),
        }
        if self.python:  # EMR Serverless' settings for the driver's and the executors' environment
            conf.update({"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": self.python,
                         "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": self.python,
                         "spark.executorEnv.PYSPARK_PYTHON": self.python})
        submit = " ".join(f"--conf {k}={v}" for k, v in conf.items()) + f" {self.spark_submit_parameters}"
        request: dict[str, Any] = {
            "applicationId": self.application_id,
            "executionRoleArn": self.execution_role_arn,
            "name": f"{job}-{run_id[:8]}",
            "executionTimeoutMinutes": self.execution_timeout_minutes,
            "jobDriver": {
                "sparkSubmit": {"entryPoint": code.script_uri, "sparkSubmitParameters": submit.strip()}
            },
        }
        if self.log_uri:
            logs = {"logUri": self.log_uri, **({"encryptionKeyArn": self.kms_key_id} if self.kms_key_id else {})}
            request["configurationOverrides"] = {"monitoringConfiguration": {"s3MonitoringConfiguration": logs}}
        return request


def prefixed_s3_message_reader(*, bucket: str, client, key_prefix: str):
    """A PipesS3MessageReader that keeps message chunks under `key_prefix/` and deletes them once read.

    The stock reader writes them under a random top-level prefix of the bucket and leaves them there.
    The class is defined on first use because importing dagster_aws takes ~2.3 s here, which loading
    the definitions must not pay (README, principle 6).
    """
    from dagster_aws.pipes import PipesS3MessageReader

    class PrefixedS3MessageReader(PipesS3MessageReader):
        @contextmanager
        def get_params(self):
            with super().get_params() as params:
                prefix = f"{key_prefix}/{params['key_prefix']}"
                try:
                    yield {**params, "key_prefix": prefix}
                finally:  # the reader threads have stopped by now: every chunk has been read
                    _delete_prefix(client, bucket, f"{prefix}/")

    return PrefixedS3MessageReader(bucket=bucket, client=client)


def _delete_prefix(s3, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        if page.get("Contents"):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in page["Contents"]]}
            )


def code_bundle(folder: Path) -> bytes:
    """spark_jobs.zip: the folder's modules plus dagster_pipes, byte-identical for identical sources."""
    import dagster_pipes

    files = {p.name: p for p in folder.glob("*.py")}
    pipes_dir = Path(dagster_pipes.__file__).parent
    files.update({f"dagster_pipes/{p.name}": p for p in pipes_dir.glob("*.py")})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name in sorted(files):
            # A fixed timestamp: the zip's sha, hence its S3 key, depends on content only.
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            bundle.writestr(entry, files[name].read_bytes())
    return buffer.getvalue()


def _projection(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """`current` restricted to the keys we set: GetJob returns many more (MaxCapacity, CreatedOn, ...)."""
    projected = {key: current.get(key) for key in wanted}
    projected["Command"] = {key: (current.get("Command") or {}).get(key) for key in wanted["Command"]}
    return projected


def reported_metadata(invocation: dg.PipesClientCompletedInvocation, where: str) -> dict[str, Any]:
    """The metadata the job reported (plus the launch's run id/URL), as plain values."""
    results = invocation.get_results(implicit_materializations=False)
    materializations = [r for r in results if isinstance(r, dg.MaterializeResult)]
    if not materializations:
        raise RuntimeError(
            f"{where} succeeded but reported no materialization through Dagster Pipes: "
            "does the script end with `main(run)` from _pipes_entry? See the driver's log."
        )
    metadata = materializations[0].metadata or {}
    return {key: getattr(value, "value", value) for key, value in metadata.items()}
