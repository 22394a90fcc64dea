"""Serving: the DynamoDB table of the scored flights, as DynamoDBTable expects it: partition key `flight_id`
(Number), a global secondary index `flight_date-index` on `flight_date` (String; KEYS_ONLY is enough: a day's
load only needs the keys), point-in-time recovery, encrypted with the lake key."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from lake_stacks import layout
from lake_stacks.outputs import env_output


class ServingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        self.table = dynamodb.Table(
            self,
            "DelayPredictions",
            partition_key=dynamodb.Attribute(name=layout.SERVING_KEY, type=dynamodb.AttributeType.NUMBER),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=layout.SERVING_DATE_INDEX,
            partition_key=dynamodb.Attribute(name=layout.SERVING_DATE_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        env_output(self, "LAKE_SERVING_TABLE", self.table.table_name, "the DynamoDB table of the delay predictions")
