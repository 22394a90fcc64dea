"""Network: the VPC the lake's VPC-bound services share (DMS, EFS, DataSync, Redshift Serverless, RDS, ECS).

Three availability zones (a Redshift Serverless workgroup needs subnets in three), public subnets for one NAT
gateway only, private subnets for everything else, gateway endpoints for S3 and DynamoDB (Redshift's enhanced
VPC routing reaches S3 through it), flow logs in CloudWatch encrypted with the lake key.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from lake_stacks.config import Config

# The VPC's range, a constant: security groups admit it by value (cdk-nag can then check them; an imported
# CIDR token would leave its 0.0.0.0/0 rule unverifiable).
VPC_CIDR = "10.40.0.0/16"


def log_group(scope: Construct, id: str, *, config: Config, key: kms.IKey, name: str | None = None) -> logs.LogGroup:
    """A log group of the lake: encrypted with the lake key, kept `log_retention_days`."""
    return logs.LogGroup(
        scope,
        id,
        log_group_name=name,
        encryption_key=key,
        retention=logs.RetentionDays[_retention(config.log_retention_days)],
        removal_policy=RemovalPolicy.RETAIN,
    )


def _retention(days: int) -> str:
    return {
        1: "ONE_DAY", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS",
        180: "SIX_MONTHS", 365: "ONE_YEAR",
    }[days]


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=list(config.availability_zones),
            nat_gateways=1,
            restrict_default_security_group=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                log_group(self, "FlowLogGroup", config=config, key=key)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
