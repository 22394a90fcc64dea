"""Resources per deployment: the same keys, different implementations (README, "Deployments").

`local` runs on embedded defaults under the lake root; `aws` takes account-specific names from environment
variables (`dg.EnvVar`, resolved when a run starts, never at import), so its definitions load with no
credentials and no network.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from lake_platform.adapters.aws_ingest import AwsDataExchange, AwsDms
from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.catalog_glue import GlueCatalog
from lake_platform.adapters.datasync import LocalDataSync
from lake_platform.adapters.datasync_aws import AwsDataSync
from lake_platform.adapters.local_ingest import LocalDataExchange, LocalDms
from lake_platform.adapters.partners import LocalPartners
from lake_platform.adapters.sagemaker import LocalScriptMode
from lake_platform.adapters.sagemaker_aws import SageMakerTraining
from lake_platform.adapters.serving import DynamoDBTable, LocalKeyValueTable
from lake_platform.adapters.shared_files import SharedFiles
from lake_platform.adapters.spark import LocalSparkJobs
from lake_platform.adapters.spark_aws import GLUE_SECURITY_CONFIGURATION, EmrServerlessJobs, GlueJobs
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.adapters.transfer_aws import AwsTransferPartners
from lake_platform.sources.seed import DATA_EXCHANGE_DIR, OPERATIONS_DB
from lake_platform.sources.share import SHARE_DIR
from lake_platform.warehouse import warehouse_resources


def local_resources(lake_root: Path) -> dict:
    store = LocalObjectStore(root=str(lake_root))
    spark = LocalSparkJobs(lake_root=str(lake_root))
    return {
        "store": store,
        "catalog": LocalCatalog(store=store),
        "dms": LocalDms(
            source_url=f"sqlite:///{lake_root / OPERATIONS_DB}",
            state_path=str(lake_root / "sources" / "dms_task_state.json"),
        ),
        "data_exchange": LocalDataExchange(provider_dir=str(lake_root / DATA_EXCHANGE_DIR)),
        "datasync": LocalDataSync(
            share_dir=str(lake_root / SHARE_DIR),
            state_path=str(lake_root / "sources" / "datasync_task_state.json"),
        ),
        "partners": LocalPartners(lake_root=str(lake_root)),
        "glue": spark,
        "emr": spark,
        **warehouse_resources("local", lake_root),
        "sagemaker": LocalScriptMode(store=store),
        "serving": LocalKeyValueTable(path=str(lake_root / "serving" / "serving.db")),
        # Created on first write, not here: loading the definitions writes nothing under the lake root.
        "shared_files": SharedFiles(root=str(lake_root / "shared"), create_root=True),
    }


def aws_resources(lake_root: Path) -> dict:
    region = dg.EnvVar("LAKE_AWS_REGION")
    bucket = dg.EnvVar("LAKE_BUCKET")
    # SSE-KMS with the lake key on every S3 write and on the services' outputs (README, "Deployments").
    kms_key_id = dg.EnvVar("LAKE_KMS_KEY_ID")
    store = S3ObjectStore(bucket=bucket, region_name=region, kms_key_id=kms_key_id)
    return {
        "store": store,
        "catalog": GlueCatalog(store=store, region_name=region),
        "dms": AwsDms(replication_task_arn=dg.EnvVar("LAKE_DMS_TASK_ARN"), region_name=region),
        "data_exchange": AwsDataExchange(data_set_id=dg.EnvVar("LAKE_WEATHER_DATA_SET_ID"), region_name=region),
        "datasync": AwsDataSync(task_arn=dg.EnvVar("LAKE_DATASYNC_TASK_ARN"), region_name=region),
        # The partners are the Transfer Family server's users (partners.py): their homes are read at run time.
        "partners": AwsTransferPartners(
            server_id=dg.EnvVar("LAKE_TRANSFER_SERVER_ID"), bucket=bucket, region_name=region
        ),
        "glue": GlueJobs(
            bucket=bucket, role_arn=dg.EnvVar("LAKE_GLUE_ROLE_ARN"), region_name=region, kms_key_id=kms_key_id,
            security_configuration=GLUE_SECURITY_CONFIGURATION,
        ),
        "emr": EmrServerlessJobs(
            bucket=bucket,
            application_id=dg.EnvVar("LAKE_EMR_APPLICATION_ID"),
            execution_role_arn=dg.EnvVar("LAKE_EMR_ROLE_ARN"),
            region_name=region,
            kms_key_id=kms_key_id,
        ),
        **warehouse_resources("aws", lake_root),  # lake_root: unused by the redshift target
        "sagemaker": SageMakerTraining(
            store=store, role_arn=dg.EnvVar("LAKE_SAGEMAKER_ROLE_ARN"), region_name=region, kms_key_id=kms_key_id
        ),
        "serving": DynamoDBTable(table_name=dg.EnvVar("LAKE_SERVING_TABLE"), region_name=region),
        # The EFS access point's mount in the run task (deploy/aws/lake_stacks/dagster.py); never created here.
        "shared_files": SharedFiles(root=dg.EnvVar("LAKE_SHARED_FILES_PATH")),
    }


def resources_for(deployment: str, lake_root: Path) -> dict:
    if deployment == "local":
        return local_resources(lake_root)
    if deployment == "aws":
        return aws_resources(lake_root)
    raise ValueError(f"unknown deployment {deployment!r}")
