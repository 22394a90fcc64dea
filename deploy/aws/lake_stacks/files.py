"""Shared files: an EFS file system (encrypted with the lake key, backed up) and the access point the Dagster
run tasks mount. Its `/share` folder is also the default source of the DataSync task (config.json,
datasync_source_location_arn)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_kms as kms
from constructs import Construct

from lake_stacks.network import VPC_CIDR

EFS_POSIX_USER = "1000"  # the Dagster image's user (uid and gid)


class FilesStack(Stack):
    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        self.security_group = ec2.SecurityGroup(
            self, "EfsSecurityGroup", vpc=vpc, description="NFS to the lake shared file system from the VPC",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(2049), "NFS from the VPC")
        self.file_system = efs.FileSystem(
            self,
            "SharedFiles",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_group=self.security_group,
            encrypted=True,
            kms_key=key,
            enable_automatic_backups=True,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_point = self.file_system.add_access_point(
            "LakeAccessPoint",
            path="/lake",
            create_acl=efs.Acl(owner_uid=EFS_POSIX_USER, owner_gid=EFS_POSIX_USER, permissions="750"),
            posix_user=efs.PosixUser(uid=EFS_POSIX_USER, gid=EFS_POSIX_USER),
        )
