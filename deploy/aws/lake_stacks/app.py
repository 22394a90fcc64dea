"""The lake's CDK app: the stacks, wired together, with cdk-nag's AwsSolutions checks as an Aspect.

    Storage  -> Network -> Catalog, Files -> Images -> Ingest, Compute, Warehouse, Serving -> Dagster

`build_app(outdir=...)` is what `deploy/aws/app.py` (the `cdk` CLI) and tests/test_deploy_cdk.py run.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lake_stacks import config as config_module
from lake_stacks.catalog import CatalogStack
from lake_stacks.compute import ComputeStack
from lake_stacks.dagster import SHARED_FILES_PATH, DagsterStack
from lake_stacks.files import FilesStack
from lake_stacks.images import ImagesStack
from lake_stacks.ingest import IngestStack
from lake_stacks.network import NetworkStack
from lake_stacks.serving import ServingStack
from lake_stacks.storage import StorageStack
from lake_stacks.warehouse import PORT, WarehouseStack

# Deployment switches of lake_platform/settings.py, set in the ECS task environment only.
DEPLOYMENT_SWITCHES = {
    "LAKE_ENV": "aws",
    "LAKE_AUTOMATION": "off",  # sensors and schedules start stopped; turn them on in the UI
    "LAKE_ROOT": "/tmp/lake",  # scratch only: on AWS the lake is the bucket (dbt's `lake_root` var is unused)
}


# CDK feature flags the stacks rely on (set here, not only in cdk.json, so tests synthesize the same templates).
FEATURE_FLAGS = {
    # Access logs delivered under a bucket policy, not the legacy LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(outdir: str | None = None, context: dict[str, Any] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    cfg = config_module.load(_context(app))
    env = cdk.Environment(region=cfg.region)
    name = cfg.stack_prefix
    tags = {"project": "lake_platform"}

    def kw(stack: str) -> dict:
        return {"stack_name": f"{name}{stack}", "env": env, "tags": tags,
                "description": f"lake_platform: {stack.lower()} (deploy/aws/lake_stacks)"}

    storage = StorageStack(app, f"{name}Storage", config=cfg, **kw("Storage"))
    network = NetworkStack(app, f"{name}Network", config=cfg, key=storage.key, **kw("Network"))
    CatalogStack(app, f"{name}Catalog", **kw("Catalog"))
    files = FilesStack(app, f"{name}Files", vpc=network.vpc, key=storage.key, **kw("Files"))
    images = ImagesStack(app, f"{name}Images", key=storage.key, **kw("Images"))
    ingest = IngestStack(
        app, f"{name}Ingest", config=cfg, bucket=storage.bucket, key=storage.key, vpc=network.vpc,
        file_system=files.file_system, **kw("Ingest"),
    )
    compute = ComputeStack(
        app, f"{name}Compute", config=cfg, bucket=storage.bucket, key=storage.key,
        emr_repository=images.emr, **kw("Compute"),
    )
    warehouse = WarehouseStack(
        app, f"{name}Warehouse", config=cfg, bucket=storage.bucket, key=storage.key, vpc=network.vpc,
        **kw("Warehouse"),
    )
    serving = ServingStack(app, f"{name}Serving", key=storage.key, **kw("Serving"))

    # Every LAKE_* variable the code reads (tests/test_deploy_cdk.py checks the two sets are equal).
    lake_environment = {
        **DEPLOYMENT_SWITCHES,
        "LAKE_AWS_REGION": cdk.Aws.REGION,
        "LAKE_BUCKET": storage.bucket.bucket_name,
        "LAKE_KMS_KEY_ID": storage.key.key_arn,
        "LAKE_LANDING_QUEUE_URL": storage.landing_queue.queue_url,
        "LAKE_DMS_TASK_ARN": ingest.dms_task.ref,
        "LAKE_DATASYNC_TASK_ARN": ingest.datasync_task.attr_task_arn,
        "LAKE_TRANSFER_SERVER_ID": ingest.sftp_server.attr_server_id,
        "LAKE_WEATHER_DATA_SET_ID": cfg.weather_data_set_id,
        "LAKE_GLUE_ROLE_ARN": compute.glue_role.role_arn,
        "LAKE_EMR_APPLICATION_ID": compute.emr_application.attr_application_id,
        "LAKE_EMR_ROLE_ARN": compute.emr_role.role_arn,
        "LAKE_SAGEMAKER_ROLE_ARN": compute.sagemaker_role.role_arn,
        "LAKE_REDSHIFT_WORKGROUP": warehouse.workgroup.workgroup_name,
        "LAKE_REDSHIFT_DATABASE": warehouse.namespace.db_name,
        "LAKE_REDSHIFT_HOST": warehouse.workgroup.attr_workgroup_endpoint_address,
        "LAKE_REDSHIFT_PORT": str(PORT),
        "LAKE_REDSHIFT_UNLOAD_ROLE": warehouse.unload_role.role_arn,
        "LAKE_REDSHIFT_SPECTRUM_ROLE": warehouse.spectrum_role.role_arn,
        # dbt-redshift logs in as the task role (`iam_role`: redshift-serverless GetCredentials on the workgroup,
        # the database user is the role's IAMR:<name>); the user name is then not used (profiles.yml's default).
        "LAKE_REDSHIFT_AUTH_METHOD": "iam_role",
        "LAKE_REDSHIFT_USER": "dagster",
        "LAKE_SERVING_TABLE": serving.table.table_name,
        "LAKE_SHARED_FILES_PATH": SHARED_FILES_PATH,  # the run tasks' mount of files.access_point (dagster.py)
    }
    DagsterStack(
        app, f"{name}Dagster", config=cfg, vpc=network.vpc, key=storage.key, bucket=storage.bucket,
        landing_queue=storage.landing_queue, image_repository=images.dagster, lake_environment=lake_environment,
        passed_roles={
            "glue.amazonaws.com": compute.glue_role,
            "emr-serverless.amazonaws.com": compute.emr_role,
            "sagemaker.amazonaws.com": compute.sagemaker_role,
        },
        dms_task_arn=ingest.dms_task.ref,
        datasync_task_arn=ingest.datasync_task.attr_task_arn,
        transfer_server_id=ingest.sftp_server.attr_server_id,
        emr_application_id=compute.emr_application.attr_application_id,
        redshift_workgroup_arn=warehouse.workgroup_arn,
        serving_table=serving.table,
        shared_files=files.access_point,
        **kw("Dagster"),
    )
    cdk.Aspects.of(app).add(AwsSolutionsChecks(reports=True, verbose=True))
    return app


def _context(app: cdk.App) -> dict[str, Any]:
    """The context keys config.json knows, as given with `-c key=value` (or build_app's `context`)."""
    keys = config_module.load().values
    return {k: app.node.try_get_context(k) for k in keys if app.node.try_get_context(k) is not None}
