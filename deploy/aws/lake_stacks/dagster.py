"""Dagster on ECS Fargate, as deploy/aws/dagster.yaml describes it: a webserver service and a daemon service in
the private subnets, each run an ECS task the daemon launches (EcsRunLauncher, use_current_ecs_task_config),
run/event/schedule storage in RDS Postgres (password generated into Secrets Manager, given to the containers as
an ECS secret), container logs in CloudWatch, step logs in the lake bucket (`_dagster/compute-logs/`).

Roles, one per actor:
- DagsterRunRole: the daemon's task role, which EcsRunLauncher copies into every run task (it reuses the
  daemon's task definition): the sensors' reads and the runs' work on every service the adapters call, plus
  launching the run tasks.
- DagsterWebserverRole: reads step logs, stops run tasks (terminate in the UI).
- DagsterExecutionRole: ECS pulls the image, writes the container logs, reads the Postgres secret.

Shared files: the daemon's task definition mounts the EFS access point (IAM authorization, TLS in transit) at
SHARED_FILES_PATH, so every run task, a copy of it, has the mount; LAKE_SHARED_FILES_PATH names that path (the
SharedFiles resource's root on AWS). The webserver has the variable (every container gets all LAKE_* ones) but
no mount: it runs no steps.

The webserver has no load balancer: reach it inside the VPC (e.g. through a bastion or a VPN); put an
authenticating load balancer in front of it before exposing it.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagSuppressions
from constructs import Construct

from lake_stacks import iam as lake_iam
from lake_stacks import layout
from lake_stacks.config import Config
from lake_stacks.network import VPC_CIDR, log_group
from lake_stacks.outputs import env_output

DAGSTER_HOME = "/opt/dagster/dagster_home"  # holds deploy/aws/dagster.yaml in the image
WORKSPACE = "/opt/dagster/app/workspace.yaml"
CONTAINER = "run"  # EcsRunLauncher's default container_name
POSTGRES_DB = "dagster"
POSTGRES_USER = "dagster"
POSTGRES_PORT = 5432  # deploy/aws/dagster.yaml: `port: 5432`
SHARED_FILES_PATH = "/mnt/lake-shared"  # LAKE_SHARED_FILES_PATH: the EFS access point's mount in the run tasks
SHARED_FILES_VOLUME = "shared-files"
NFS_PORT = 2049


class DagsterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        vpc: ec2.IVpc,
        key: kms.IKey,
        bucket: s3.IBucket,
        landing_queue: sqs.IQueue,
        image_repository: ecr.IRepository,
        lake_environment: dict[str, str],
        passed_roles: dict[str, iam.IRole],
        dms_task_arn: str,
        datasync_task_arn: str,
        transfer_server_id: str,
        emr_application_id: str,
        redshift_workgroup_arn: str,
        serving_table: dynamodb.ITable,
        shared_files: efs.IAccessPoint,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self._transfer_server_id = transfer_server_id  # the partners' SFTP server, read by _grant_runs
        self._shared_files = shared_files  # the EFS access point the run tasks mount, read by _grant_runs
        # Grants on the lake key go into this stack's role policies, never into the key policy (no cycle).
        self.add_stack_dependency(Stack.of(key))
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        tasks_sg = ec2.SecurityGroup(self, "TasksSecurityGroup", vpc=vpc,
                                     description="Dagster webserver, daemon and run tasks")
        tasks_sg.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(3000), "Dagster UI from the VPC")
        # NFS from the tasks into the file system's security group (the rule is created in this stack: the Files
        # stack does not depend on this one).
        tasks_sg.connections.allow_to(shared_files.file_system, ec2.Port.tcp(NFS_PORT),
                                      "NFS from the Dagster run tasks to the shared files (EFS)")

        # --- Postgres ---------------------------------------------------------------------------------------------
        db_sg = ec2.SecurityGroup(self, "PostgresSecurityGroup", vpc=vpc, description="Dagster Postgres",
                                  allow_all_outbound=False)
        db_sg.add_ingress_rule(tasks_sg, ec2.Port.tcp(POSTGRES_PORT), "Postgres from the Dagster tasks")
        # The password's own key, in this stack: ECS reads the secret through Secrets Manager, and that grant must
        # go into a key policy, which for the lake key would make the storage stack depend on this one.
        secret_key = kms.Key(self, "PostgresSecretKey", enable_key_rotation=True,
                             description="Encrypts the Dagster Postgres password secret",
                             removal_policy=RemovalPolicy.RETAIN)
        self.database = rds.DatabaseInstance(
            self,
            "Postgres",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_6),
            instance_type=ec2.InstanceType(config.rds_instance_type),
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[db_sg],
            database_name=POSTGRES_DB,
            port=POSTGRES_PORT,
            credentials=rds.Credentials.from_generated_secret(POSTGRES_USER, encryption_key=secret_key),
            storage_encrypted=True,
            storage_encryption_key=key,
            multi_az=config.rds_multi_az,
            allocated_storage=20,
            max_allocated_storage=100,
            backup_retention=Duration.days(7),
            deletion_protection=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            auto_minor_version_upgrade=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        secret = self.database.secret
        NagSuppressions.add_resource_suppressions(self.database, [
            {"id": "AwsSolutions-RDS11", "reason": "deploy/aws/dagster.yaml connects on port 5432; a non-default "
             "port adds no protection here: the instance is private and its security group admits the Dagster "
             "tasks only."},
            {"id": "AwsSolutions-RDS3", "reason": "Single-AZ by default to keep the idle cost low (config.json "
             "rds_multi_az): Dagster's run storage can be restored from the daily backups; set rds_multi_az for "
             "production."},
        ])
        NagSuppressions.add_resource_suppressions(self.database, apply_to_children=True, suppressions=[
            {"id": "AwsSolutions-SMG4", "reason": "The webserver, daemon and run tasks read the password once, at "
             "task start (ECS secret): rotating it would break the running daemon's and webserver's connections "
             "until they restart. Rotate by hand with a service restart; the secret never leaves Secrets Manager "
             "and ECS."},
        ])

        # --- logs and roles ---------------------------------------------------------------------------------------
        logs_ = log_group(self, "DagsterLogs", config=config, key=key)
        execution_role = iam.Role(
            self, "DagsterExecutionRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="ECS: pull the Dagster image, write container logs, read the Postgres secret",
        )
        run_role = iam.Role(
            self, "DagsterRunRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Dagster daemon and run tasks: sensors, launching runs, and the runs' work",
        )
        webserver_role = iam.Role(
            self, "DagsterWebserverRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Dagster webserver: read step logs, stop run tasks",
        )
        self._grant_runs(run_role, execution_role, bucket, key, landing_queue, passed_roles, dms_task_arn,
                         datasync_task_arn, emr_application_id, redshift_workgroup_arn, serving_table, logs_, config)
        tasks_arn = lake_iam.arn("ecs", f"task/{self.cluster.cluster_name}/*")
        for statement in [
            lake_iam.s3_list(bucket, layout.COMPUTE_LOGS),
            lake_iam.s3_read(bucket, layout.COMPUTE_LOGS),
            lake_iam.kms_use(key, encrypt=False),
            iam.PolicyStatement(actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[tasks_arn]),
        ]:
            webserver_role.add_to_policy(statement)
        lake_iam.prefix_suppression(webserver_role, f"object keys under {layout.COMPUTE_LOGS}/; the cluster's tasks")

        # --- task definitions and services ------------------------------------------------------------------------
        image = ecs.ContainerImage.from_ecr_repository(image_repository, config.image_tag)
        image_uri = f"{image_repository.repository_uri}:{config.image_tag}"
        environment = {
            **lake_environment,
            "DAGSTER_HOME": DAGSTER_HOME,
            "DAGSTER_POSTGRES_HOST": self.database.db_instance_endpoint_address,
            "DAGSTER_POSTGRES_USER": POSTGRES_USER,
            "DAGSTER_POSTGRES_DB": POSTGRES_DB,
            # dagster-postgres writes a range's materialization events in one insert (README, Deployments).
            "DAGSTER_EVENT_BATCH_SIZE": "10000",
            # The code location's image: EcsRunLauncher registers the run tasks with it.
            "DAGSTER_CURRENT_IMAGE": image_uri,
        }
        secrets = {"DAGSTER_POSTGRES_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password")}
        self.task_environment = environment

        # The run tasks' mount of the shared files: where LAKE_SHARED_FILES_PATH points (one value for both).
        shared_files_path = lake_environment["LAKE_SHARED_FILES_PATH"]
        env_output(self, "LAKE_SHARED_FILES_PATH", shared_files_path,
                   "where the Dagster run tasks mount the shared files (the EFS access point)")

        def service(name: str, role: iam.IRole, command: list[str], port: int | None,
                    mount_shared_files: bool = False) -> ecs.FargateService:
            task = ecs.FargateTaskDefinition(
                self, f"{name}Task", cpu=config.dagster_cpu, memory_limit_mib=config.dagster_memory_mib,
                task_role=role, execution_role=execution_role, family=f"lake-dagster-{name.lower()}",
            )
            container = task.add_container(
                CONTAINER,
                image=image,
                command=command,
                environment=environment,
                secrets=secrets,
                logging=ecs.LogDriver.aws_logs(stream_prefix=name.lower(), log_group=logs_),
                port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            )
            if mount_shared_files:
                # IAM authorization (the task role's ClientMount/ClientWrite through this access point) needs TLS.
                task.add_volume(name=SHARED_FILES_VOLUME, efs_volume_configuration=ecs.EfsVolumeConfiguration(
                    file_system_id=shared_files.file_system.file_system_id,
                    transit_encryption="ENABLED",
                    authorization_config=ecs.AuthorizationConfig(
                        access_point_id=shared_files.access_point_id, iam="ENABLED"),
                ))
                container.add_mount_points(ecs.MountPoint(
                    container_path=shared_files_path, source_volume=SHARED_FILES_VOLUME, read_only=False))
            NagSuppressions.add_resource_suppressions(task, [
                {"id": "AwsSolutions-ECS2", "reason": "The environment holds names and ARNs only (the LAKE_* "
                 "settings the code reads, the Postgres host/user/db); the one secret, the Postgres password, is "
                 "an ECS secret from Secrets Manager."},
            ])
            return ecs.FargateService(
                self, name, cluster=self.cluster, task_definition=task, desired_count=1,
                vpc_subnets=private, security_groups=[tasks_sg], assign_public_ip=False,
                circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
                min_healthy_percent=0 if name == "Daemon" else 100,
                max_healthy_percent=100 if name == "Daemon" else 200,
            )

        self.webserver = service(
            "Webserver", webserver_role, ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", WORKSPACE], 3000
        )
        # One daemon at a time (min 0 %, max 100 %): two would both launch the queued runs.
        # The daemon's task definition is the one EcsRunLauncher copies into every run task
        # (use_current_ecs_task_config): its volume and mount point are the run tasks' mount of the shared files.
        self.daemon = service("Daemon", run_role, ["dagster-daemon", "run", "-w", WORKSPACE], None,
                              mount_shared_files=True)
        self.run_role, self.webserver_role, self.execution_role = run_role, webserver_role, execution_role
        # After the containers: their image, log and secret grants create the execution role's policy.
        lake_iam.prefix_suppression(execution_role, "the Dagster log group's streams (`<log group>:*`)")

    def _grant_runs(self, role, execution_role, bucket, key, queue, passed_roles, dms_task_arn, datasync_task_arn,
                    emr_application_id, workgroup_arn, table, logs_, config) -> None:
        read = [layout.LANDING, layout.RAW, layout.EXPORTS, layout.ML, layout.ICEBERG, layout.CODE, layout.PIPES,
                layout.COMPUTE_LOGS]
        write = [layout.RAW, layout.EXPORTS, layout.ML, layout.iceberg_table_prefix("ml"),
                 layout.DATA_EXCHANGE_LANDING, layout.CODE, layout.PIPES, layout.COMPUTE_LOGS]
        delete = [f"{layout.RAW}/_versions", f"{layout.EXPORTS}/_versions", layout.ML_SCORING,
                  layout.DATA_EXCHANGE_LANDING, layout.PIPES]
        databases = list(layout.DATABASES.values())
        region = Aws.REGION
        cluster_arn = self.cluster.cluster_arn
        groups = {}
        groups["LakeData"] = [
            # --- the lake bucket and key
            lake_iam.s3_list(bucket, *read),
            lake_iam.s3_read(bucket, *read),
            lake_iam.s3_write(bucket, *write),
            lake_iam.s3_delete(bucket, *delete),
            lake_iam.kms_use(key),
            # --- the shared files: mount and write the EFS file system through the lake's access point only
            iam.PolicyStatement(
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[self._shared_files.file_system.file_system_arn],
                conditions={"StringEquals": {
                    "elasticfilesystem:AccessPointArn": self._shared_files.access_point_arn}},
            ),
        ]
        groups["Compute"] = [
            # --- Glue: the jobs `lake-<job>` (created/updated by GlueJobs.ensure_job) and the lake's catalog
            iam.PolicyStatement(
                actions=["glue:GetJob", "glue:CreateJob", "glue:UpdateJob", "glue:StartJobRun", "glue:GetJobRun",
                         "glue:BatchStopJobRun"],
                resources=[lake_iam.arn("glue", f"job/{layout.GLUE_JOB_PREFIX}*")],
            ),
            iam.PolicyStatement(
                actions=lake_iam.GLUE_READ + lake_iam.GLUE_WRITE + ["glue:CreateDatabase"],
                resources=lake_iam.glue_catalog_resources(databases),
            ),
            # --- EMR Serverless job runs on the lake's application
            iam.PolicyStatement(
                actions=["emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun",
                         "emr-serverless:GetDashboardForJobRun"],
                resources=[
                    lake_iam.arn("emr-serverless", f"/applications/{emr_application_id}"),
                    lake_iam.arn("emr-serverless", f"/applications/{emr_application_id}/jobruns/*"),
                ],
            ),
            # --- SageMaker: training jobs and models `delay-model-*`, transform jobs `delay-predictions-*`
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:CreateModel",
                         "sagemaker:DescribeModel", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob"],
                resources=[
                    lake_iam.arn("sagemaker", f"training-job/{layout.SAGEMAKER_JOB_PREFIX}*"),
                    lake_iam.arn("sagemaker", f"model/{layout.SAGEMAKER_JOB_PREFIX}*"),
                    lake_iam.arn("sagemaker", f"transform-job/{layout.SAGEMAKER_JOB_PREFIX}*"),
                ],
            ),
            # --- pass the job roles to their services only
            *[
                iam.PolicyStatement(
                    actions=["iam:PassRole"], resources=[passed.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": service}},
                )
                for service, passed in passed_roles.items()
            ],
        ]
        groups["Warehouse"] = [
            # --- Redshift Serverless through the Data API (statements of this role only) and dbt's IAM login
            iam.PolicyStatement(actions=["redshift-data:ExecuteStatement"], resources=[workgroup_arn]),
            iam.PolicyStatement(
                actions=["redshift-data:DescribeStatement", "redshift-data:GetStatementResult",
                         "redshift-data:CancelStatement"],
                resources=["*"],
                conditions={"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}},
            ),
            iam.PolicyStatement(actions=["redshift-serverless:GetCredentials", "redshift-serverless:GetWorkgroup"],
                                resources=[workgroup_arn]),
        ]
        groups["IngestServing"] = [
            # --- ingest: DMS, DataSync, Data Exchange, the landing queue
            iam.PolicyStatement(actions=["dms:DescribeReplicationTasks", "dms:DescribeEndpoints"], resources=["*"]),
            iam.PolicyStatement(actions=["dms:DescribeTableStatistics", "dms:StartReplicationTask"],
                                resources=[dms_task_arn]),
            iam.PolicyStatement(actions=["datasync:DescribeTask", "datasync:StartTaskExecution"],
                                resources=[datasync_task_arn]),
            iam.PolicyStatement(actions=["datasync:DescribeTaskExecution"],
                                resources=[f"{datasync_task_arn}/execution/*"]),
            iam.PolicyStatement(actions=["datasync:DescribeLocationS3"],
                                resources=[lake_iam.arn("datasync", "location/*")]),
            # --- Transfer Family: the partners' homes (AwsTransferPartners), on the lake's SFTP server only
            iam.PolicyStatement(actions=["transfer:DescribeServer"],
                                resources=[lake_iam.arn("transfer", f"server/{self._transfer_server_id}")]),
            iam.PolicyStatement(actions=["transfer:DescribeUser"],
                                resources=[lake_iam.arn("transfer", f"user/{self._transfer_server_id}/*")]),
            iam.PolicyStatement(
                actions=["dataexchange:ListDataSetRevisions", "dataexchange:GetDataSet"],
                resources=[f"arn:{Aws.PARTITION}:dataexchange:{region}:*:data-sets/{config.weather_data_set_id}"],
            ),
            iam.PolicyStatement(
                actions=["dataexchange:GetRevision", "dataexchange:GetAsset"],
                resources=[f"arn:{Aws.PARTITION}:dataexchange:{region}:*:data-sets/{config.weather_data_set_id}/*"],
            ),
            iam.PolicyStatement(actions=["dataexchange:CreateJob"], resources=["*"]),
            iam.PolicyStatement(actions=["dataexchange:StartJob", "dataexchange:GetJob"],
                                resources=[lake_iam.arn("dataexchange", "jobs/*")]),
            iam.PolicyStatement(actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                                resources=[queue.queue_arn]),
            # --- serving: the table and its date index
            iam.PolicyStatement(
                actions=["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                         "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:Scan"],
                resources=[table.table_arn, f"{table.table_arn}/index/{layout.SERVING_DATE_INDEX}"],
            ),
        ]
        groups["RunLauncher"] = [
            # --- EcsRunLauncher: a run is an ECS task of a task definition `run_*` in this cluster
            iam.PolicyStatement(actions=["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
                                resources=["*"]),
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[lake_iam.arn("ecs", f"task-definition/{layout.ECS_RUN_TASK_FAMILY_PREFIX}*:*")],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            ),
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"],
                resources=[lake_iam.arn("ecs", f"task/{self.cluster.cluster_name}/*")],
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[role.role_arn, execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ),
            iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces"], resources=["*"]),
            iam.PolicyStatement(actions=["secretsmanager:ListSecrets"], resources=["*"]),
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[f"{logs_.log_group_arn}:*"]),
        ]
        # Managed policies (not the role's default policy, whose overflow CDK would split at synth time): each
        # is a readable unit, and its cdk-nag suppression applies when it is created.
        for name, statements in groups.items():
            policy = iam.ManagedPolicy(self, f"DagsterRun{name}", statements=statements, roles=[role],
                                       description=f"Dagster daemon and run tasks: {name}")
            lake_iam.prefix_suppression(
                policy,
                "object keys under the lake prefixes of lake_stacks/layout.py; the lake databases' tables; Glue jobs "
                "`lake-*`; SageMaker jobs and models `delay-*`; the application's EMR job runs; DataSync executions; "
                "Data Exchange jobs and the data set's revisions; ECS task definitions `run_*` and the cluster's tasks",
            )
