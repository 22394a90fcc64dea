"""Storage: the lake's KMS key, the lake bucket, its access-log bucket, and the S3 event notifications of
`landing/` into an SQS queue with a dead-letter queue (`landing_notifications_sensor`).

The queue lives here, not in the ingest stack: the bucket's notification configuration names it, and the queue
policy names the bucket, so both must be in one stack. The bucket has a known name (`<prefix>-<account>-<region>`)
so the queue policy can name it without referring to the bucket resource (no circular dependency, and no custom
resource Lambda to set the notifications afterwards).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

from lake_stacks import layout
from lake_stacks.config import Config
from lake_stacks.outputs import env_output


class StorageStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.bucket_name = f"{config.bucket_name_prefix}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
        bucket_arn = f"arn:{Aws.PARTITION}:s3:::{self.bucket_name}"

        self.key = kms.Key(
            self,
            "LakeKey",
            alias="alias/lake-platform",
            description="Encrypts the lake: S3 objects, queues, DynamoDB, EFS, Redshift, RDS, logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="KeyAdministrationByAccount",
                        principals=[iam.AccountRootPrincipal()],
                        actions=["kms:*"],
                        resources=["*"],
                    ),
                    # S3 encrypts the event notifications it sends to the (KMS-encrypted) landing queue.
                    iam.PolicyStatement(
                        sid="S3EventNotifications",
                        principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                        actions=["kms:GenerateDataKey", "kms:Decrypt"],
                        resources=["*"],
                        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                    ),
                    # CloudWatch Logs encrypts the lake's log groups with this key.
                    iam.PolicyStatement(
                        sid="CloudWatchLogs",
                        principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                        actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                                 "kms:GenerateDataKey", "kms:DescribeKey"],
                        resources=["*"],
                        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"}},
                    ),
                ]
            ),
        )

        # Server access logs cannot be delivered to an SSE-KMS bucket: this one uses SSE-S3.
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.access_log_retention_days),
                    noncurrent_version_expiration=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        NagSuppressions.add_resource_suppressions(
            self.log_bucket,
            [{"id": "AwsSolutions-S1", "reason": "This is the access-log bucket: logging it into itself would loop; "
              "the lake bucket's access is logged here."}],
        )

        # Landing notifications: the queue and its dead-letter queue, encrypted with the lake key, TLS only.
        self.dead_letters = sqs.Queue(
            self,
            "LandingDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.landing_queue = sqs.Queue(
            self,
            "LandingNotifications",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(5),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=5),
        )
        self.landing_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3EventNotificationsFromTheLakeBucket",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.landing_queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )

        lifecycle = [
            s3.LifecycleRule(
                id="landing-versions",
                prefix=f"{layout.LANDING}/",
                noncurrent_version_expiration=Duration.days(config.landing_noncurrent_days),
                expiration=(Duration.days(config.landing_expiration_days)
                            if config.landing_expiration_days else None),
            ),
            # Pipes context and message objects are deleted by the run that wrote them; leftovers of killed runs go.
            s3.LifecycleRule(id="pipes-leftovers", prefix=f"{layout.PIPES}/", expiration=Duration.days(7)),
            s3.LifecycleRule(id="incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
        ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=self.bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="lake-bucket/",
            lifecycle_rules=lifecycle,
            removal_policy=RemovalPolicy.RETAIN,
        )
        cfn_bucket: s3.CfnBucket = self.bucket.node.default_child
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    queue=self.landing_queue.queue_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=f"{layout.LANDING}/")]
                        )
                    ),
                )
            ]
        )
        # S3 checks that it may send to the queue when the configuration is set: the policy must exist first.
        self.bucket.node.add_dependency(self.landing_queue.node.find_child("Policy"))

        env_output(self, "LAKE_BUCKET", self.bucket.bucket_name, "the lake bucket")
        env_output(self, "LAKE_AWS_REGION", Aws.REGION, "the region of every lake resource")
        env_output(self, "LAKE_KMS_KEY_ID", self.key.key_arn,
                   "the lake key: SSE-KMS of every S3 write and of the services' outputs (UNLOAD, exports, SageMaker)")
        env_output(self, "LAKE_LANDING_QUEUE_URL", self.landing_queue.queue_url,
                   "SQS queue of the bucket's landing/ ObjectCreated notifications (landing_notifications_sensor)")
