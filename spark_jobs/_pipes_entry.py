"""How a Spark job runs on AWS: opens Dagster Pipes, runs the job, reports its metadata.

Every job script ends with

    if __name__ == "__main__":
        from _pipes_entry import main
        main(run)

Glue and EMR Serverless start the script as the Spark driver's main program. `main` connects to the
Dagster run that launched it, takes the job's params from the Pipes extras, calls `run(spark, params)`
on the service's SparkSession and reports the returned dict as the asset's materialization metadata.

Which service launched us needs no flag; it shows in how the Pipes params arrived:
- Glue: PipesGlueClient adds `--dagster-pipes-context` / `--dagster-pipes-messages` to the job run's
  arguments, which Glue passes on the command line.
- EMR Serverless: PipesEMRServerlessClient sets `DAGSTER_PIPES_CONTEXT` / `DAGSTER_PIPES_MESSAGES` as
  driver environment variables (`spark.emr-serverless.driverEnv.*`).
The params then say where the context is and where messages go: `bucket`+`key` / `bucket`+`key_prefix`
for S3 (what lake_platform's launchers use), otherwise Dagster's defaults (inline data, a file, stdout).

This file travels without Dagster: it imports only dagster_pipes, boto3 and (lazily) pyspark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesContextLoader,
    PipesDefaultContextLoader,
    PipesDefaultMessageWriter,
    PipesEnvVarParamsLoader,
    PipesMessageWriter,
    PipesParamsLoader,
    PipesS3ContextLoader,
    PipesS3MessageWriter,
    open_dagster_pipes,
)

# The session settings LocalSparkJobs uses, so a job computes the same result on every deployment.
SPARK_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}

Job = Callable[[Any, dict[str, Any]], Mapping[str, Any]]


def main(run: Job) -> None:
    """Run `run(spark, params)` under Dagster Pipes and report what it returns."""
    params_loader = pipes_params_loader()
    if not params_loader.is_dagster_pipes_process():
        raise SystemExit(
            "this Spark job was started without Dagster Pipes params; launch it through lake_platform "
            "(GlueJobs / EmrServerlessJobs), or call its run(spark, params) directly"
        )
    with open_dagster_pipes(
        params_loader=params_loader,
        context_loader=context_loader(params_loader.load_context_params()),
        message_writer=message_writer(params_loader.load_messages_params()),
    ) as pipes:
        params = dict(pipes.extras)
        pipes.log.info(f"running on {runtime(params_loader)} with params {sorted(params)}")
        metadata = dict(run(spark_session(), params))
        pipes.report_asset_materialization(metadata=metadata)
        pipes.log.info(f"reported {len(metadata)} metadata entries")


def pipes_params_loader() -> PipesParamsLoader:
    cli = PipesCliArgsParamsLoader()
    return cli if cli.is_dagster_pipes_process() else PipesEnvVarParamsLoader()


def runtime(params_loader: PipesParamsLoader) -> str:
    return "glue" if isinstance(params_loader, PipesCliArgsParamsLoader) else "emr-serverless"


def context_loader(params: Mapping[str, Any]) -> PipesContextLoader:
    # PipesS3ContextInjector passes {"bucket", "key"}; Dagster's own injectors pass "data" or "path".
    return PipesS3ContextLoader(client=_s3()) if "bucket" in params else PipesDefaultContextLoader()


def message_writer(params: Mapping[str, Any]) -> PipesMessageWriter:
    # PipesS3MessageReader passes {"bucket", "key_prefix"}; the CloudWatch and file readers pass
    # "stdio" or "path", which the default writer handles.
    return PipesS3MessageWriter(client=_s3()) if "bucket" in params else PipesDefaultMessageWriter()


def spark_session():
    """The service's session: spark-submit on Glue / EMR Serverless has configured the driver already."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    for key, value in SPARK_SQL_CONF.items():
        spark.conf.set(key, value)
    return spark


def _s3():
    import boto3

    return boto3.client("s3")

