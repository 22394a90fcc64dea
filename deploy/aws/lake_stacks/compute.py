"""Compute: the roles of the Spark jobs and the model, and the EMR Serverless application.

- Glue (clean, maintenance: spark_jobs/clean.py, maintenance.py) reads `raw/`, commits the Iceberg tables of
  the clean, quarantine and raw-index databases and (maintenance) rewrites every Iceberg table: read/write
  `iceberg/`. On AWS the clean and quarantine tables are Iceberg tables under `iceberg/lake_clean.db/` and
  `iceberg/lake_quarantine.db/`; nothing is written to top-level `clean/` or `quarantine/` prefixes.
- EMR Serverless (curated: curated_features.py, route_performance.py) reads the clean tables and commits the
  curated ones: read `iceberg/`, write `iceberg/lake_curated.db/`.
- Both read the shipped code (`_code/spark_jobs/`, the scripts location: AwsSparkJobs.code_prefix) and exchange
  Dagster Pipes messages under `_pipes/`.
- SageMaker trains on the data files of `lake_curated.flight_features` (listed in a manifest under `ml/models/`)
  and writes models under `ml/models/`, batch predictions under `ml/_scoring/`.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lake_stacks import iam as lake_iam
from lake_stacks import layout
from lake_stacks.config import Config
from lake_stacks.outputs import env_output


class ComputeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        key: kms.IKey,
        emr_repository: ecr.IRepository,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        databases = list(layout.DATABASES.values())
        source_account = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}

        # --- Glue -----------------------------------------------------------------------------------------------
        self.glue_role = iam.Role(
            self,
            "GlueJobRole",
            description="Glue jobs (clean, maintenance): read raw/, read/write the Iceberg warehouse",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com", conditions=source_account),
        )
        glue_statements = [
            lake_iam.s3_list(bucket, layout.RAW, layout.ICEBERG, layout.CODE, layout.PIPES),
            lake_iam.s3_read(bucket, layout.RAW, layout.ICEBERG, layout.CODE, layout.PIPES),
            lake_iam.s3_write(bucket, layout.ICEBERG, layout.PIPES),
            # Iceberg's maintenance (expire_snapshots, remove_orphan_files) deletes unreferenced files.
            lake_iam.s3_delete(bucket, layout.ICEBERG, layout.PIPES),
            lake_iam.kms_use(key),
            iam.PolicyStatement(
                actions=lake_iam.GLUE_READ + lake_iam.GLUE_WRITE,
                resources=lake_iam.glue_catalog_resources(databases),
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[lake_iam.arn("logs", "log-group:/aws-glue/*")],
            ),
        ]
        for statement in glue_statements:
            self.glue_role.add_to_policy(statement)
        # The jobs' security configuration (GlueJobs.security_configuration): Glue's S3 writes SSE-KMS with the lake
        # key. (Iceberg's own writes are encrypted by its S3FileIO settings, spark_aws.iceberg_spark_conf.)
        self.glue_security_configuration = glue.CfnSecurityConfiguration(
            self,
            "GlueSecurityConfiguration",
            name=layout.GLUE_SECURITY_CONFIG,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
            ),
        )
        lake_iam.prefix_suppression(self.glue_role, f"object keys under {layout.RAW}/, {layout.ICEBERG}/, {layout.CODE}/, "
                                    f"{layout.PIPES}/; the lake databases' tables; Glue's log groups /aws-glue/*")

        # --- EMR Serverless -------------------------------------------------------------------------------------
        image_uri = f"{emr_repository.repository_uri}:{config.image_tag}"
        self.emr_application = emrserverless.CfnApplication(
            self,
            "EmrApplication",
            name="lake-curated",
            release_label=config.emr_release_label,
            type="Spark",
            architecture="X86_64",
            image_configuration=emrserverless.CfnApplication.ImageConfigurationInputProperty(image_uri=image_uri),
            auto_start_configuration=emrserverless.CfnApplication.AutoStartConfigurationProperty(enabled=True),
            auto_stop_configuration=emrserverless.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=15
            ),
            maximum_capacity=emrserverless.CfnApplication.MaximumAllowedResourcesProperty(
                cpu="32 vCPU", memory="128 GB", disk="1000 GB"
            ),
        )
        self.emr_role = iam.Role(
            self,
            "EmrJobRole",
            description="EMR Serverless curated jobs: read the Iceberg warehouse, write lake_curated",
            assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com", conditions=source_account),
        )
        for statement in [
            lake_iam.s3_list(bucket, layout.ICEBERG, layout.CODE, layout.PIPES),
            lake_iam.s3_read(bucket, layout.ICEBERG, layout.CODE, layout.PIPES),
            lake_iam.s3_write(bucket, layout.iceberg_table_prefix("curated"), layout.PIPES),
            lake_iam.s3_delete(bucket, layout.PIPES),
            lake_iam.kms_use(key),
            iam.PolicyStatement(actions=lake_iam.GLUE_READ, resources=lake_iam.glue_catalog_resources(databases)),
            iam.PolicyStatement(
                actions=lake_iam.GLUE_WRITE,
                resources=lake_iam.glue_catalog_resources([layout.DATABASES["curated"]]),
            ),
        ]:
            self.emr_role.add_to_policy(statement)
        lake_iam.prefix_suppression(self.emr_role, f"object keys under {layout.ICEBERG}/, {layout.CODE}/, {layout.PIPES}/; "
                                    "the lake databases' tables")

        # --- SageMaker ------------------------------------------------------------------------------------------
        self.sagemaker_role = iam.Role(
            self,
            "SageMakerRole",
            description="SageMaker training and batch transform: read features, write ml/models and ml/_scoring",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions=source_account),
        )
        for statement in [
            lake_iam.s3_list(bucket, layout.iceberg_table_prefix("curated"), layout.ML),
            lake_iam.s3_read(bucket, layout.iceberg_table_prefix("curated"), layout.ML),
            lake_iam.s3_write(bucket, layout.ML_MODELS, layout.ML_SCORING),
            lake_iam.kms_use(key),
            # The training and transform instances' EBS volumes are encrypted with the lake key (VolumeKmsKeyId):
            # the volume is attached under a grant, which only an AWS service may use.
            iam.PolicyStatement(
                actions=["kms:CreateGrant"], resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[lake_iam.arn("logs", "log-group:/aws/sagemaker/*")],
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]:
            self.sagemaker_role.add_to_policy(statement)
        lake_iam.prefix_suppression(self.sagemaker_role, f"object keys under {layout.iceberg_table_prefix('curated')}/ and "
                                    f"{layout.ML}/; SageMaker's log groups /aws/sagemaker/*")

        env_output(self, "LAKE_GLUE_ROLE_ARN", self.glue_role.role_arn, "role of the Glue jobs")
        env_output(self, "LAKE_EMR_APPLICATION_ID", self.emr_application.attr_application_id,
                   "the EMR Serverless Spark application (custom image)")
        env_output(self, "LAKE_EMR_ROLE_ARN", self.emr_role.role_arn, "execution role of the EMR Serverless job runs")
        env_output(self, "LAKE_SAGEMAKER_ROLE_ARN", self.sagemaker_role.role_arn, "SageMaker execution role")
