"""Names and prefixes the infrastructure shares with the code, imported from `lake_platform` where the code
defines them, so the stacks grant and configure exactly what the adapters use (one source of truth).

Every IAM grant on the lake bucket is written in terms of these prefixes: changing a prefix in the code moves
the permission with it.
"""

from __future__ import annotations

from lake_platform.adapters.aws_ingest import AwsDataExchange, AwsDms, DMS_TARGET_SETTINGS
from lake_platform.adapters.catalog import ICEBERG_ZONES, Catalog
from lake_platform.adapters.datasync import OPTIONS as DATASYNC_OPTIONS
from lake_platform.adapters.datasync import REPORTS_PREFIX, SHARE_PREFIX
from lake_platform.adapters.datasync_aws import REPORT_CONFIG as DATASYNC_REPORT_CONFIG
from lake_platform.adapters.serving import DynamoDBTable
from lake_platform.adapters.spark_aws import GLUE_SECURITY_CONFIGURATION, AwsSparkJobs, GlueJobs
from lake_platform.ml.registry import MODELS_PREFIX


def _default(model, field: str):
    return model.model_fields[field].default


# --- zones and the Glue Data Catalog ---------------------------------------------------------------------------
DATABASE_PREFIX: str = _default(Catalog, "database_prefix")  # "lake"
# Every zone the catalog addresses (`<prefix>_<zone>`): the Iceberg zones and the version-folder zones
# (`raw/object_inventory`, `exports/...`, lake_platform.raw.inventory / lake_platform.exports.publish).
ZONES: tuple[str, ...] = tuple(sorted(set(ICEBERG_ZONES) | {"raw", "exports"}))
DATABASES: dict[str, str] = {zone: f"{DATABASE_PREFIX}_{zone}" for zone in ZONES}

# --- bucket prefixes (no leading or trailing slash) ------------------------------------------------------------
LANDING = "landing"
DMS_LANDING: str = _default(AwsDms, "landing_prefix").strip("/")  # landing/dms
SFTP_LANDING = f"{LANDING}/sftp"  # landing/sftp/<partner> (README, lake_platform/contracts: landing_prefix)
DATA_EXCHANGE_LANDING = f"{LANDING}/data_exchange/{_default(AwsDataExchange, 'data_set')}"
DATASYNC_SHARE = SHARE_PREFIX.strip("/")  # landing/datasync/share
DATASYNC_REPORTS = REPORTS_PREFIX.strip("/")  # landing/datasync/_reports
RAW = "raw"
EXPORTS = "exports"
ML = "ml"
ML_MODELS = MODELS_PREFIX.strip("/")  # ml/models
ML_SCORING = f"{ML}/_scoring"  # lake_platform.ml.predictions
ICEBERG: str = _default(AwsSparkJobs, "iceberg_prefix").strip("/")  # Iceberg warehouse: iceberg/<db>.db/<table>
CODE: str = _default(AwsSparkJobs, "code_prefix").strip("/")  # shipped Spark jobs: _code/spark_jobs
PIPES: str = _default(AwsSparkJobs, "pipes_prefix").strip("/")  # Dagster Pipes context and messages
COMPUTE_LOGS = "_dagster/compute-logs"  # deploy/aws/dagster.yaml, compute_logs.prefix


def iceberg_table_prefix(zone: str) -> str:
    """Where Iceberg's GlueCatalog puts the tables of a zone's database: `iceberg/lake_<zone>.db`."""
    return f"{ICEBERG}/{DATABASES[zone]}.db"


# --- services ---------------------------------------------------------------------------------------------------
GLUE_JOB_PREFIX: str = _default(GlueJobs, "job_name_prefix")  # Glue jobs `lake-<job>`, created by the runs
GLUE_SECURITY_CONFIG = GLUE_SECURITY_CONFIGURATION  # the jobs' security configuration: S3 writes SSE-KMS
SERVING_KEY: str = _default(DynamoDBTable, "key_name")  # flight_id (Number)
SERVING_DATE_INDEX: str = _default(DynamoDBTable, "date_index")  # flight_date-index
SERVING_DATE_KEY = "flight_date"  # the index's partition key (String, ISO date)
SAGEMAKER_JOB_PREFIX = "delay-"  # training jobs / models `delay-model-*`, transform jobs `delay-predictions-*`
ECS_RUN_TASK_FAMILY_PREFIX = "run_"  # EcsRunLauncher's default task_definition_prefix "run" + "_"

__all__ = [
    "DATABASES", "DATASYNC_OPTIONS", "DATASYNC_REPORT_CONFIG", "DMS_TARGET_SETTINGS", "ZONES",
]
