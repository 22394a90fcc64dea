"""README's "What it costs at rest" table against the synthesized CDK app: every billable resource type the stacks
create is a row, with as many of it as the templates hold (`×N`), so the table cannot silently fall behind the
stacks. A resource type is billable unless it is in FREE_TYPES below, each with why it costs nothing itself."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

if shutil.which("node") is None:
    pytest.skip("the AWS CDK runs on Node.js (jsii): `node` is not on PATH", allow_module_level=True)

README = Path(__file__).resolve().parents[1] / "README.md"

# Resource types with no charge of their own (what they configure is billed on the resource they belong to).
FREE_TYPES = {
    "AWS::IAM::Role": "IAM is free",
    "AWS::IAM::Policy": "IAM is free",
    "AWS::IAM::ManagedPolicy": "IAM is free",
    "AWS::EC2::VPC": "no charge for a VPC",
    "AWS::EC2::Subnet": "no charge for subnets",
    "AWS::EC2::RouteTable": "no charge for route tables",
    "AWS::EC2::Route": "no charge for routes",
    "AWS::EC2::SubnetRouteTableAssociation": "no charge",
    "AWS::EC2::InternetGateway": "no charge for an internet gateway (its traffic is data transfer)",
    "AWS::EC2::VPCGatewayAttachment": "no charge",
    "AWS::EC2::SecurityGroup": "no charge for security groups",
    "AWS::EC2::SecurityGroupIngress": "no charge",
    "AWS::EC2::VPCEndpoint": "gateway endpoints (S3, DynamoDB) are free; test_vpc_endpoints_are_gateways checks",
    "AWS::KMS::Alias": "no charge for an alias (the key is billed)",
    "AWS::S3::BucketPolicy": "part of the bucket",
    "AWS::SQS::QueuePolicy": "part of the queue",
    "AWS::ECS::Cluster": "no charge for a Fargate cluster (its tasks are billed)",
    "AWS::ECS::TaskDefinition": "no charge (running tasks are billed)",
    "AWS::RDS::DBSubnetGroup": "no charge",
    "AWS::SecretsManager::SecretTargetAttachment": "part of the secret",
    "AWS::EFS::MountTarget": "no charge (storage and throughput are billed)",
    "AWS::EFS::AccessPoint": "no charge",
    "AWS::DMS::ReplicationSubnetGroup": "no charge",
    "AWS::DMS::Endpoint": "no charge (the replication instance is billed)",
    "AWS::DMS::ReplicationTask": "no charge (the replication instance is billed)",
    "AWS::Transfer::User": "no charge per user (the server's endpoint is billed)",
    "AWS::DataSync::LocationS3": "no charge (the data a task copies is billed)",
    "AWS::DataSync::LocationEFS": "no charge",
    "AWS::Logs::ResourcePolicy": "no charge",
    "AWS::Glue::SecurityConfiguration": "no charge",
}


def _cost_table() -> str:
    text = README.read_text()
    start = text.index("### What it costs at rest")
    end = text.index("\n## ", start)
    return text[start:end]


def _listed(table: str) -> Counter:
    """`AWS::X::Y` of each row's "Billable resource" cell, with its `×N` (1 when absent)."""
    listed = Counter()
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[2].startswith("`AWS::"):
            continue
        for kind, times in re.findall(r"`(AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)`(?:\s*×(\d+))?", cells[2]):
            listed[kind] += int(times or 1)
    return listed


def test_the_cost_table_lists_every_billable_resource_of_the_stacks(templates):
    created = Counter(
        r["Type"] for body in templates.values() for r in body.get("Resources", {}).values()
        if not r["Type"].startswith(("AWS::CDK::", "Custom::"))
    )
    billable = Counter({kind: n for kind, n in created.items() if kind not in FREE_TYPES})
    listed = _listed(_cost_table())
    assert listed, "no row found in README's cost table"
    assert billable == listed, (
        "README's 'What it costs at rest' table and the stacks differ: "
        f"missing or too few {dict(billable - listed)}, extra or too many {dict(listed - billable)}"
    )


def test_vpc_endpoints_are_gateways(templates):
    """Interface endpoints are billed by the hour: the table counts none, so every endpoint must be a gateway."""
    kinds = [
        r["Properties"].get("VpcEndpointType", "Gateway") for body in templates.values()
        for r in body.get("Resources", {}).values() if r["Type"] == "AWS::EC2::VPCEndpoint"
    ]
    assert kinds and set(kinds) == {"Gateway"}, kinds


def test_the_total_is_the_sum_of_the_rows():
    """The monthly figures in bold add up to the total (a range where a price is a range)."""
    table = _cost_table()
    rows = [line for line in table.splitlines() if line.startswith("|") and "Total at rest" not in line]
    low = high = 0.0
    for row in rows:
        money = re.search(r"\*\*\$([\d.]+)(?:-([\d.]+))?\*\*", row)
        if money:
            low += float(money.group(1))
            high += float(money.group(2) or money.group(1))
    total = re.search(r"Total at rest\*\* \| \*\*≈ \$(\d+)-(\d+)\*\*", table)
    assert total, "the total row is missing"
    assert (round(low), round(high)) == (int(total.group(1)), int(total.group(2))), (low, high)
