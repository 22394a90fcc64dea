"""Ingest: DMS replication of the operations database into `landing/dms/`, the partners' SFTP server (Transfer
Family) into `landing/sftp/<partner>/`, and the DataSync task copying the maintenance share into
`landing/datasync/share/` with its task report. (The S3 event notifications of landing/ are in the storage
stack: see storage.py.) Each service writes with its own role, limited to its own landing prefix.
"""

from __future__ import annotations

import json
import re

from aws_cdk import Aws, Stack
from aws_cdk import aws_datasync as datasync
from aws_cdk import aws_dms as dms
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_transfer as transfer
from cdk_nag import NagSuppressions
from constructs import Construct

from lake_platform.adapters.local_ingest import LocalDms
from lake_stacks import iam as lake_iam
from lake_stacks import layout
from lake_stacks.config import Config
from lake_stacks.network import VPC_CIDR, log_group
from lake_stacks.outputs import env_output

DMS_SCHEMA: str = LocalDms.model_fields["schema_name"].default  # ops
DMS_TABLES: list[str] = list(LocalDms.model_fields["tables"].default)  # ["flights"]
PREFIX_SETTINGS = {"postgres": "postgre_sql_settings", "mysql": "my_sql_settings"}


def snake(name: str) -> str:
    """A CloudFormation property name as the CDK's Python property (DataFormat -> data_format)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def dms_s3_settings(**extra) -> dict:
    """DMS_TARGET_SETTINGS (the settings AwsDms checks, every one the emulator follows), as S3SettingsProperty
    arguments."""
    return {snake(k): v for k, v in layout.DMS_TARGET_SETTINGS.items()} | extra


def service_role(scope: Construct, id: str, service: str, description: str) -> iam.Role:
    """A role only `service` can assume, and only on behalf of this account (confused-deputy guard)."""
    return iam.Role(
        scope,
        id,
        description=description,
        assumed_by=iam.ServicePrincipal(service, conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
    )


class IngestStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        key: kms.IKey,
        vpc: ec2.IVpc,
        file_system: efs.IFileSystem,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        self.bucket, self.key = bucket, key
        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self._dms(config, vpc, private)
        self._transfer(config)
        self._datasync(config, vpc, private, file_system)
        env_output(self, "LAKE_WEATHER_DATA_SET_ID", config.weather_data_set_id,
                   "the entitled AWS Data Exchange data set of the weather product (config.json)")

    # --- DMS ------------------------------------------------------------------------------------------------------
    def _dms(self, config: Config, vpc: ec2.IVpc, private: ec2.SelectedSubnets) -> None:
        subnet_group = dms.CfnReplicationSubnetGroup(
            self,
            "DmsSubnets",
            replication_subnet_group_description="Private subnets of the lake's DMS replication instance",
            subnet_ids=private.subnet_ids,
        )
        if config.create_dms_vpc_role:
            # DMS looks this role up by its exact name to manage the subnet group's network interfaces.
            vpc_role = iam.Role(
                self,
                "DmsVpcRole",
                role_name="dms-vpc-role",
                assumed_by=iam.ServicePrincipal("dms.amazonaws.com"),
                managed_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonDMSVPCManagementRole")
                ],
            )
            subnet_group.node.add_dependency(vpc_role)
            NagSuppressions.add_resource_suppressions(
                vpc_role,
                [{"id": "AwsSolutions-IAM4", "reason": "DMS requires the role named dms-vpc-role with the AWS managed "
                  "policy AmazonDMSVPCManagementRole (AWS DMS User Guide, 'Creating the IAM roles to use with AWS "
                  "DMS'); it only manages DMS's network interfaces."}],
            )
        security_group = ec2.SecurityGroup(
            self, "DmsSecurityGroup", vpc=vpc, description="DMS replication instance: out to the source DB and S3",
        )
        instance = dms.CfnReplicationInstance(
            self,
            "DmsInstance",
            replication_instance_class=config.dms_replication_instance_class,
            allocated_storage=50,
            publicly_accessible=False,
            multi_az=False,
            auto_minor_version_upgrade=True,
            kms_key_id=self.key.key_arn,
            replication_subnet_group_identifier=subnet_group.ref,
            vpc_security_group_ids=[security_group.security_group_id],
        )

        # The S3 target: exactly the settings AwsDms checks, SSE-KMS with the lake key, into landing/dms/.
        target_role = service_role(self, "DmsTargetRole", "dms.amazonaws.com",
                                   f"DMS writes its S3 target files under {layout.DMS_LANDING}/ only")
        target_role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"],
            resources=lake_iam.bucket_objects(self.bucket, layout.DMS_LANDING),
        ))
        target_role.add_to_policy(lake_iam.s3_list(self.bucket, layout.DMS_LANDING))
        target_role.add_to_policy(lake_iam.kms_use(self.key))
        lake_iam.prefix_suppression(target_role, f"object keys under {layout.DMS_LANDING}/")
        self.dms_target = dms.CfnEndpoint(
            self,
            "DmsS3Target",
            endpoint_type="target",
            engine_name="s3",
            s3_settings=dms.CfnEndpoint.S3SettingsProperty(
                **dms_s3_settings(
                    bucket_name=self.bucket.bucket_name,
                    bucket_folder=layout.DMS_LANDING,
                    service_access_role_arn=target_role.role_arn,
                    encryption_mode="SSE_KMS",
                    server_side_encryption_kms_key_id=self.key.key_arn,
                )
            ),
        )
        self.dms_target.node.add_dependency(_policy(target_role))

        # The source: the operations database, its connection read by DMS from Secrets Manager.
        source = config.dms_source
        engine = source["engine_name"]
        if engine not in PREFIX_SETTINGS:
            raise ValueError(f"config.json dms_source.engine_name {engine!r}: expected one of {sorted(PREFIX_SETTINGS)}")
        secret = secretsmanager.Secret.from_secret_name_v2(self, "OpsDbSecret", source["secret_name"])
        secret_role = service_role(self, "DmsSecretRole", f"dms.{Aws.REGION}.amazonaws.com",
                                   "DMS reads the operations database's connection secret")
        secret_role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"],
                                                      resources=[secret.secret_arn]))
        settings_class = {"postgres": dms.CfnEndpoint.PostgreSqlSettingsProperty,
                          "mysql": dms.CfnEndpoint.MySqlSettingsProperty}[engine]
        source_endpoint = dms.CfnEndpoint(
            self,
            "DmsSource",
            endpoint_type="source",
            engine_name=engine,
            database_name=source["database_name"],
            ssl_mode="require",
            **{PREFIX_SETTINGS[engine]: settings_class(
                secrets_manager_access_role_arn=secret_role.role_arn,
                secrets_manager_secret_id=secret.secret_name,
            )},
        )
        source_endpoint.node.add_dependency(_policy(secret_role))
        mappings = {"rules": [
            {"rule-type": "selection", "rule-id": str(i + 1), "rule-name": f"include-{table}",
             "object-locator": {"schema-name": DMS_SCHEMA, "table-name": table}, "rule-action": "include"}
            for i, table in enumerate(DMS_TABLES)
        ]}
        self.dms_task = dms.CfnReplicationTask(
            self,
            "DmsTask",
            migration_type="full-load-and-cdc",
            replication_instance_arn=instance.ref,
            source_endpoint_arn=source_endpoint.ref,
            target_endpoint_arn=self.dms_target.ref,
            table_mappings=json.dumps(mappings),
            replication_task_settings=json.dumps({"Logging": {"EnableLogging": True}}),
        )
        env_output(self, "LAKE_DMS_TASK_ARN", self.dms_task.ref, "the DMS replication task (ops DB -> landing/dms/)")

    # --- Transfer Family ------------------------------------------------------------------------------------------
    def _transfer(self, config: Config) -> None:
        logging_role = service_role(self, "SftpLoggingRole", "transfer.amazonaws.com",
                                    "Transfer Family writes the SFTP server's logs")
        logging_role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[lake_iam.arn("logs", "log-group:/aws/transfer/*")],
        ))
        lake_iam.prefix_suppression(logging_role, "Transfer Family's log groups /aws/transfer/<server id>")
        self.sftp_server = transfer.CfnServer(
            self,
            "SftpServer",
            domain="S3",
            endpoint_type="PUBLIC",
            identity_provider_type="SERVICE_MANAGED",
            protocols=["SFTP"],
            logging_role=logging_role.role_arn,
            security_policy_name="TransferSecurityPolicy-2024-01",
        )
        env_output(self, "LAKE_TRANSFER_SERVER_ID", self.sftp_server.attr_server_id,
                   f"the partners' SFTP server (Transfer Family; its users' homes are {layout.SFTP_LANDING}/<partner>)")
        for partner in config.partners:
            prefix = f"{layout.SFTP_LANDING}/{partner.name}"
            role = service_role(self, f"Partner{_camel(partner.name)}Role", "transfer.amazonaws.com",
                                f"SFTP partner {partner.name}: its own {prefix}/ only")
            role.add_to_policy(lake_iam.s3_list(self.bucket, prefix))
            # Put, read back, and delete: SFTP clients overwrite and rename (copy + delete) their uploads.
            role.add_to_policy(iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=lake_iam.bucket_objects(self.bucket, prefix),
            ))
            role.add_to_policy(lake_iam.kms_use(self.key))
            lake_iam.prefix_suppression(role, f"object keys under {prefix}/")
            transfer.CfnUser(
                self,
                f"Partner{_camel(partner.name)}",
                server_id=self.sftp_server.attr_server_id,
                user_name=partner.name,
                role=role.role_arn,
                home_directory_type="LOGICAL",
                home_directory_mappings=[transfer.CfnUser.HomeDirectoryMapEntryProperty(
                    entry="/", target=f"/{self.bucket.bucket_name}/{prefix}"
                )],
                ssh_public_keys=list(partner.ssh_public_keys),
            )

    # --- DataSync -------------------------------------------------------------------------------------------------
    def _datasync(self, config, vpc, private, file_system) -> None:
        role = service_role(self, "DataSyncRole", "datasync.amazonaws.com",
                            f"DataSync writes {layout.DATASYNC_SHARE}/ and its task reports only")
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            resources=[self.bucket.bucket_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:GetObjectTagging",
                     "s3:ListMultipartUploadParts", "s3:PutObject", "s3:PutObjectTagging"],
            resources=lake_iam.bucket_objects(self.bucket, layout.DATASYNC_SHARE, layout.DATASYNC_REPORTS),
        ))
        role.add_to_policy(lake_iam.kms_use(self.key))
        lake_iam.prefix_suppression(role, f"object keys under {layout.DATASYNC_SHARE}/ and {layout.DATASYNC_REPORTS}/")
        destination = datasync.CfnLocationS3(
            self,
            "ShareDestination",
            s3_bucket_arn=self.bucket.bucket_arn,
            subdirectory=f"/{layout.DATASYNC_SHARE}/",
            s3_config=datasync.CfnLocationS3.S3ConfigProperty(bucket_access_role_arn=role.role_arn),
        )
        destination.node.add_dependency(_policy(role))
        source_arn = config.datasync_source_location_arn
        if not source_arn:
            subnet = private.subnets[0]
            # DataSync's network interfaces for the EFS location: out to NFS (the file system admits the VPC).
            datasync_sg = ec2.SecurityGroup(self, "DataSyncSecurityGroup", vpc=vpc,
                                            description="DataSync to the shared file system", allow_all_outbound=False)
            datasync_sg.add_egress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(2049), "NFS to the shared file system")
            source = datasync.CfnLocationEFS(
                self,
                "ShareSource",
                efs_filesystem_arn=file_system.file_system_arn,
                subdirectory="/share",
                in_transit_encryption="TLS1_2",
                ec2_config=datasync.CfnLocationEFS.Ec2ConfigProperty(
                    subnet_arn=lake_iam.arn("ec2", f"subnet/{subnet.subnet_id}"),
                    security_group_arns=[lake_iam.arn("ec2", f"security-group/{datasync_sg.security_group_id}")],
                ),
            )
            source_arn = source.attr_location_arn
        task_logs = log_group(self, "DataSyncLogs", config=config, key=self.key)
        logs.CfnResourcePolicy(
            self,
            "DataSyncLogsPolicy",
            policy_name="lake-datasync-logs",
            policy_document=self.to_json_string({"Version": "2012-10-17", "Statement": [{
                "Sid": "DataSyncLogs",
                "Effect": "Allow",
                "Principal": {"Service": "datasync.amazonaws.com"},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": task_logs.log_group_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            }]}),
        )
        options = {snake(k): v for k, v in layout.DATASYNC_OPTIONS.items()}
        self.datasync_task = datasync.CfnTask(
            self,
            "ShareTask",
            name="lake-share",
            source_location_arn=source_arn,
            destination_location_arn=destination.attr_location_arn,
            cloud_watch_log_group_arn=task_logs.log_group_arn,
            options=datasync.CfnTask.OptionsProperty(log_level="TRANSFER", **options),
            task_report_config=datasync.CfnTask.TaskReportConfigProperty(
                destination=datasync.CfnTask.DestinationProperty(
                    s3=datasync.CfnTask.S3Property(
                        bucket_access_role_arn=role.role_arn,
                        s3_bucket_arn=self.bucket.bucket_arn,
                        subdirectory=f"{layout.DATASYNC_REPORTS}/",
                    )
                ),
                # The report AwsDataSync checks for and reads (DATASYNC_REPORT_CONFIG: one source of truth).
                **{snake(k): v for k, v in layout.DATASYNC_REPORT_CONFIG.items()},
            ),
        )
        env_output(self, "LAKE_DATASYNC_TASK_ARN", self.datasync_task.attr_task_arn,
                   f"the DataSync task (share -> {layout.DATASYNC_SHARE}/)")


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def _policy(role: iam.Role) -> Construct:
    """The role's policy: a service checks its permissions when the resource using the role is created."""
    return role.node.find_child("DefaultPolicy")
