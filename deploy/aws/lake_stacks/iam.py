"""IAM helpers, and the ONE list of actions granted on `Resource: "*"` (tests/test_deploy_cdk.py enforces it).

Every other statement names its resources: the lake bucket's prefixes, the key, the tables, the queue, ...
No statement uses a `*` or `service:*` action.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

# action -> why it is granted on "*": each of these actions supports no resource-level permission (AWS Service
# Authorization Reference: the action lists no resource type), so "*" is the only resource IAM accepts.
STAR_RESOURCE_ACTIONS: dict[str, str] = {
    "ecr:GetAuthorizationToken": "ECR's registry login token is account-wide; the image pulls themselves are "
    "limited to the repository (ECS task execution role)",
    "ecs:RegisterTaskDefinition": "EcsRunLauncher registers each job's run task definition; the action has no "
    "resource type",
    "ecs:DescribeTaskDefinition": "EcsRunLauncher reads the daemon's own task definition "
    "(use_current_ecs_task_config); the action has no resource type",
    "ec2:DescribeNetworkInterfaces": "EcsRunLauncher copies the daemon task's subnets, security groups and public-IP "
    "setting from its network interface; EC2 Describe* actions have no resource type",
    "secretsmanager:ListSecrets": "EcsRunLauncher lists the secrets tagged `dagster` (deploy/aws/dagster.yaml "
    "secrets_tag); ListSecrets has no resource type",
    "dms:DescribeReplicationTasks": "AwsDms finds its task with a filter on its ARN; the Describe call has no "
    "resource type",
    "dms:DescribeEndpoints": "AwsDms checks the task's S3 target endpoint settings; the Describe call has no "
    "resource type",
    "dataexchange:CreateJob": "AwsDataExchange creates EXPORT_REVISIONS_TO_S3 jobs; CreateJob has no resource type "
    "(the job's data set is checked through GetJob/StartJob and the data set's entitlement)",
    "redshift-data:DescribeStatement": "RedshiftWarehouse polls its statements; limited to the caller's own "
    "statements by the statement-owner condition",
    "redshift-data:GetStatementResult": "RedshiftWarehouse reads its statements' results; limited to the caller's "
    "own statements by the statement-owner condition",
    "redshift-data:CancelStatement": "RedshiftWarehouse cancels a statement past its timeout; limited to the "
    "caller's own statements by the statement-owner condition",
    "cloudwatch:PutMetricData": "SageMaker training and transform jobs publish their metrics; PutMetricData has no "
    "resource type (limited to the /aws/sagemaker namespaces by condition)",
}

# Resource policies (bucket, queue, key) may use an action wildcard only here: (resource type, Sid) -> reason.
RESOURCE_POLICY_WILDCARDS: dict[tuple[str, str], str] = {
    ("AWS::KMS::Key", "KeyAdministrationByAccount"): "the key policy's account statement (kms:* for the account "
    "root) is AWS's default key policy: it lets IAM policies in this account grant use of the key, which every "
    "role here does for kms:Decrypt/GenerateDataKey only; without it the key becomes unmanageable",
}


def bucket_objects(bucket: s3.IBucket, *prefixes: str) -> list[str]:
    """Object ARNs of the keys under each prefix: `arn:aws:s3:::<bucket>/<prefix>/*`."""
    return [bucket.arn_for_objects(f"{p.strip('/')}/*") for p in prefixes]


def s3_read(bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["s3:GetObject"], resources=bucket_objects(bucket, *prefixes))


def s3_write(bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        resources=bucket_objects(bucket, *prefixes),
    )


def s3_delete(bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["s3:DeleteObject"], resources=bucket_objects(bucket, *prefixes))


def s3_list(bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
    """ListBucket limited to the prefixes (condition s3:prefix: the prefix itself and anything under it)."""
    patterns = [f"{p.strip('/')}/" for p in prefixes] + [f"{p.strip('/')}/*" for p in prefixes]
    return iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions={"StringLike": {"s3:prefix": patterns}}
    )


def kms_use(key: kms.IKey, *, encrypt: bool = True) -> iam.PolicyStatement:
    """Use of the lake key for SSE-KMS objects and encrypted services: decrypt, and (writers) data keys and Encrypt
    (SageMaker's execution role needs kms:Encrypt for OutputDataConfig/TransformOutput KmsKeyId)."""
    actions = ["kms:Decrypt", "kms:DescribeKey"] + (["kms:GenerateDataKey", "kms:Encrypt"] if encrypt else [])
    return iam.PolicyStatement(actions=actions, resources=[key.key_arn])


def arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION if region else ''}:{Aws.ACCOUNT_ID if account else ''}:{resource}"


def glue_catalog_resources(databases: list[str]) -> list[str]:
    """The catalog, the lake's databases and their tables."""
    return (
        [arn("glue", "catalog")]
        + [arn("glue", f"database/{d}") for d in databases]
        + [arn("glue", f"table/{d}/*") for d in databases]
    )


GLUE_READ = ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables"]
GLUE_WRITE = ["glue:CreateTable", "glue:UpdateTable"]


def prefix_suppression(construct: Construct, what: str) -> None:
    """cdk-nag IAM5 (wildcards in resources) on a role or policy whose wildcards are only `what`."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [{"id": "AwsSolutions-IAM5", "reason": f"Wildcards only in resource names: {what}. No `*` action anywhere, "
          "and `*` resources only for the actions in lake_stacks/iam.py STAR_RESOURCE_ACTIONS, each with its "
          "reason (tests/test_deploy_cdk.py enforces both)."}],
        apply_to_children=True,
    )
