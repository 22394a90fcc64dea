"""Warehouse: Redshift Serverless (namespace + workgroup) in the private subnets, its admin password generated
and kept by Redshift in Secrets Manager (never in a template), and the two roles it assumes:
- Spectrum (dbt's create_spectrum_schemas: external schemas over lake_raw, lake_clean, lake_curated): read those
  Glue databases and their data (raw/, the Iceberg tables of clean and curated);
- UNLOAD (RedshiftWarehouse.export): write `exports/` only.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_redshiftserverless as redshift
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lake_stacks import iam as lake_iam
from lake_stacks import layout
from lake_stacks.config import Config
from lake_stacks.network import VPC_CIDR
from lake_stacks.outputs import env_output

SPECTRUM_ZONES = ("raw", "clean", "curated")  # dbt_project/macros/create_spectrum_schemas.sql
DATABASE = "lake"
WORKGROUP = "lake"
PORT = 5439


class WarehouseStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: Config, bucket: s3.IBucket, key: kms.IKey, vpc: ec2.IVpc, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        redshift_principal = iam.CompositePrincipal(
            iam.ServicePrincipal("redshift.amazonaws.com"), iam.ServicePrincipal("redshift-serverless.amazonaws.com")
        )
        spectrum_data = [layout.RAW] + [layout.iceberg_table_prefix(z) for z in SPECTRUM_ZONES if z != "raw"]
        self.spectrum_role = iam.Role(
            self, "SpectrumRole", assumed_by=redshift_principal,
            description="Redshift Spectrum: read the raw, clean and curated Glue databases and their data",
        )
        for statement in [
            lake_iam.s3_list(bucket, *spectrum_data),
            lake_iam.s3_read(bucket, *spectrum_data),
            lake_iam.kms_use(key, encrypt=False),
            iam.PolicyStatement(
                actions=lake_iam.GLUE_READ + ["glue:GetPartition", "glue:GetPartitions"],
                resources=lake_iam.glue_catalog_resources([layout.DATABASES[z] for z in SPECTRUM_ZONES]),
            ),
        ]:
            self.spectrum_role.add_to_policy(statement)
        lake_iam.prefix_suppression(self.spectrum_role, "object keys under " + ", ".join(f"{p}/" for p in spectrum_data)
                                    + "; the tables of the Spectrum databases")

        self.unload_role = iam.Role(
            self, "UnloadRole", assumed_by=redshift_principal,
            description=f"Redshift UNLOAD (RedshiftWarehouse.export): write {layout.EXPORTS}/ only",
        )
        for statement in [
            lake_iam.s3_list(bucket, layout.EXPORTS),
            lake_iam.s3_write(bucket, layout.EXPORTS),
            lake_iam.kms_use(key),
        ]:
            self.unload_role.add_to_policy(statement)
        lake_iam.prefix_suppression(self.unload_role, f"object keys under {layout.EXPORTS}/")

        self.namespace = redshift.CfnNamespace(
            self,
            "Namespace",
            namespace_name="lake",
            db_name=DATABASE,
            admin_username="lakeadmin",
            manage_admin_password=True,
            admin_password_secret_kms_key_id=key.key_arn,
            kms_key_id=key.key_arn,
            iam_roles=[self.spectrum_role.role_arn, self.unload_role.role_arn],
            default_iam_role_arn=self.spectrum_role.role_arn,
            log_exports=["userlog", "connectionlog", "useractivitylog"],
        )
        self.security_group = ec2.SecurityGroup(
            self, "WorkgroupSecurityGroup", vpc=vpc, description="Redshift Serverless: SQL from the VPC",
        )
        self.security_group.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(PORT), "SQL from the VPC")
        self.workgroup = redshift.CfnWorkgroup(
            self,
            "Workgroup",
            workgroup_name=WORKGROUP,
            namespace_name=self.namespace.namespace_name,
            base_capacity=config.redshift_base_capacity,
            enhanced_vpc_routing=True,
            publicly_accessible=False,
            port=PORT,
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
            security_group_ids=[self.security_group.security_group_id],
            config_parameters=[
                redshift.CfnWorkgroup.ConfigParameterProperty(parameter_key="require_ssl", parameter_value="true"),
                redshift.CfnWorkgroup.ConfigParameterProperty(
                    parameter_key="enable_user_activity_logging", parameter_value="true"
                ),
            ],
        )
        self.workgroup.add_resource_dependency(self.namespace)
        self.workgroup_arn = self.workgroup.attr_workgroup_workgroup_arn

        env_output(self, "LAKE_REDSHIFT_WORKGROUP", WORKGROUP, "the Redshift Serverless workgroup")
        env_output(self, "LAKE_REDSHIFT_DATABASE", DATABASE, "the database dbt builds the warehouse in")
        env_output(self, "LAKE_REDSHIFT_HOST", self.workgroup.attr_workgroup_endpoint_address,
                   "the workgroup's endpoint (dbt-redshift)")
        env_output(self, "LAKE_REDSHIFT_PORT", str(PORT),
                   "the workgroup's port (dbt-redshift)")
        env_output(self, "LAKE_REDSHIFT_UNLOAD_ROLE", self.unload_role.role_arn, "role of Redshift's UNLOAD to exports/")
        env_output(self, "LAKE_REDSHIFT_SPECTRUM_ROLE", self.spectrum_role.role_arn,
                   "role of the Spectrum external schemas (dbt create_spectrum_schemas)")
