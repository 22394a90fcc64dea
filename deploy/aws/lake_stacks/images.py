"""Images: the ECR repositories of the two images the lake runs (built and pushed outside CDK, see
deploy/aws/README.md): `lake-dagster` (the code location: webserver, daemon, run tasks) and `lake-emr-spark`
(the EMR Serverless custom image: Python >= 3.10 for dagster-pipes). Deployed first: the other stacks
reference `<repository>:<image_tag>`, which must exist when EMR Serverless and ECS start.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class ImagesStack(Stack):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))

        def repository(id: str, name: str) -> ecr.Repository:
            return ecr.Repository(
                self,
                id,
                repository_name=name,
                image_scan_on_push=True,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=key,
                lifecycle_rules=[ecr.LifecycleRule(description="keep the last 20 images", max_image_count=20)],
                removal_policy=RemovalPolicy.RETAIN,
            )

        self.dagster = repository("DagsterImages", "lake-dagster")
        self.emr = repository("EmrSparkImages", "lake-emr-spark")
        # EMR Serverless pulls the custom image itself (not the job role): the repository policy allows the
        # service, for this account's applications only.
        self.emr.add_to_resource_policy(iam.PolicyStatement(
            sid="EmrServerlessCustomImage",
            principals=[iam.ServicePrincipal("emr-serverless.amazonaws.com")],
            actions=["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"],
            conditions={"StringLike": {"aws:SourceArn":
                                       f"arn:{Aws.PARTITION}:emr-serverless:{Aws.REGION}:{Aws.ACCOUNT_ID}:/applications/*"}},
        ))
