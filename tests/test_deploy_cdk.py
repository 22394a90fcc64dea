"""The AWS CDK app in deploy/aws/ (issue 12), checked offline: it synthesizes; cdk-nag's AwsSolutions pack has no
finding without a written suppression; cfn-lint passes; no IAM statement has a `*` action, nor a `*` resource
outside lake_stacks.iam.STAR_RESOURCE_ACTIONS; the stacks provide exactly the LAKE_* variables the code reads;
and the properties the code depends on are pinned with aws_cdk.assertions.

The app is synthesized once per session (about 25 s on 2 cores; Node.js runs the CDK through jsii).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# aws-cdk-lib and cdk-nag are in requirements.lock (`make install`): a missing install fails here, not skips.
if shutil.which("node") is None:
    pytest.skip("the AWS CDK runs on Node.js (jsii): `node` is not on PATH", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "aws"
sys.path.insert(0, str(DEPLOY))

from aws_cdk.assertions import Match, Template  # noqa: E402

from lake_platform.adapters.aws_ingest import DMS_TARGET_SETTINGS  # noqa: E402
from lake_stacks import config as config_module  # noqa: E402
from lake_stacks import layout  # noqa: E402
from lake_stacks.iam import RESOURCE_POLICY_WILDCARDS, STAR_RESOURCE_ACTIONS  # noqa: E402
from lake_stacks.outputs import env_name, output_key  # noqa: E402

from conftest import CDK_STACKS as STACKS  # noqa: E402  (the app is synthesized once: conftest.cloud_assembly)

# cfn-lint rules ignored, each with its reason:
CFN_LINT_IGNORED = {
    # The three availability zones come from config.json: a Redshift Serverless workgroup needs subnets in three
    # zones, and an account-agnostic CDK stack can only spread a VPC over two zones it does not know by name.
    "W3010": "availability zones named in config.json",
}


def template(templates, stack: str) -> Template:
    return Template.from_json(templates[stack])


def resources(templates, type_: str):
    for stack, body in templates.items():
        for logical_id, resource in body.get("Resources", {}).items():
            if resource["Type"] == type_:
                yield stack, logical_id, resource


# --- the app synthesizes -------------------------------------------------------------------------------------------
def test_every_stack_synthesizes(cloud_assembly, templates):
    assert sorted(p.name for p in cloud_assembly.glob("*.template.json")) == sorted(
        f"Lake{s}.template.json" for s in STACKS
    )
    assert all(body["Resources"] for stack, body in templates.items()), "a stack without resources"


# --- cdk-nag -------------------------------------------------------------------------------------------------------
def test_cdk_nag_reports_no_unsuppressed_finding(cloud_assembly):
    reports = sorted(cloud_assembly.glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == len(STACKS), [r.name for r in reports]
    findings, suppressed = [], 0
    for report in reports:
        with report.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)  # no rows: no rule applies to the stack's resources (the Glue databases)
        assert set(reader.fieldnames or ()) >= {"Rule ID", "Resource ID", "Compliance", "Exception Reason"}
        for row in rows:
            if row["Compliance"] == "Non-Compliant":
                findings.append(f"{row['Rule ID']} {row['Resource ID']}: {row['Rule Info']}")
            elif row["Compliance"] == "Suppressed":
                suppressed += 1
                # A suppression without its written reason is no suppression.
                assert len(row["Exception Reason"]) > 40, row
            else:
                assert row["Compliance"] == "Compliant", row
    assert not findings, "cdk-nag findings without a suppression:\n" + "\n".join(findings)
    assert suppressed, "the reports record no suppression at all: were they read?"


# --- cfn-lint ------------------------------------------------------------------------------------------------------
def test_cfn_lint_passes_on_every_template(cloud_assembly):
    paths = [str(cloud_assembly / f"Lake{s}.template.json") for s in STACKS]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--", *paths],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


# --- IAM -----------------------------------------------------------------------------------------------------------
def _statements(templates):
    """(where, statement) of every identity-policy statement: IAM policies, managed policies, role inline policies."""
    for stack, logical_id, resource in resources(templates, "AWS::IAM::Policy"):
        for s in resource["Properties"]["PolicyDocument"]["Statement"]:
            yield f"{stack}/{logical_id}", s
    for stack, logical_id, resource in resources(templates, "AWS::IAM::ManagedPolicy"):
        for s in resource["Properties"]["PolicyDocument"]["Statement"]:
            yield f"{stack}/{logical_id}", s
    for stack, logical_id, resource in resources(templates, "AWS::IAM::Role"):
        for policy in resource["Properties"].get("Policies", []):
            for s in policy["PolicyDocument"]["Statement"]:
                yield f"{stack}/{logical_id}/{policy['PolicyName']}", s


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions_and_star_resources_only_where_required(templates):
    problems, seen_star_actions = [], set()
    statements = list(_statements(templates))
    assert len(statements) > 50, "too few IAM statements found: is the walk right?"
    for where, statement in statements:
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: NotAction/NotResource {statement}")
            continue
        actions = _list(statement["Action"])
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{where}: wildcard action {action}")
        if "*" in _list(statement.get("Resource", [])):
            for action in actions:
                if action in STAR_RESOURCE_ACTIONS:
                    seen_star_actions.add(action)
                else:
                    problems.append(f"{where}: {action} on Resource '*' (not in lake_stacks/iam.py STAR_RESOURCE_ACTIONS)")
    assert not problems, "\n".join(problems)
    # The exceptions list is kept exact: an exception nothing uses any more is removed.
    assert seen_star_actions == set(STAR_RESOURCE_ACTIONS), set(STAR_RESOURCE_ACTIONS) - seen_star_actions


def test_resource_policies_allow_no_wildcard_action_but_the_named_ones(templates):
    kinds = {"AWS::S3::BucketPolicy": "PolicyDocument", "AWS::SQS::QueuePolicy": "PolicyDocument",
             "AWS::KMS::Key": "KeyPolicy", "AWS::ECR::Repository": "RepositoryPolicyText"}
    problems = []
    for type_, field in kinds.items():
        for stack, logical_id, resource in resources(templates, type_):
            document = resource["Properties"].get(field)
            for statement in (document or {}).get("Statement", []):
                if statement["Effect"] != "Allow":
                    continue  # e.g. enforceSSL: Deny s3:*/sqs:* without TLS
                wild = [a for a in _list(statement["Action"]) if a == "*" or a.endswith(":*")]
                if wild and (type_, statement.get("Sid", "")) not in RESOURCE_POLICY_WILDCARDS:
                    # CDK's default key policy (the Postgres secret's key) has no Sid: the same account statement.
                    root = statement.get("Principal", {}).get("AWS", {})
                    if not (type_ == "AWS::KMS::Key" and wild == ["kms:*"] and ":root" in json.dumps(root)):
                        problems.append(f"{stack}/{logical_id}: {wild} in {statement}")
    assert not problems, "\n".join(problems)


# --- one source of truth for the LAKE_* variables ------------------------------------------------------------------
def _names_the_code_reads() -> set[str]:
    """Every "LAKE_..." string literal of lake_platform/, and every env_var('LAKE_...') of the dbt project (its
    profiles and macros run in the same containers on AWS: dbt-redshift needs LAKE_REDSHIFT_HOST, ...)."""
    names = set()
    for path in (ROOT / "lake_platform").rglob("*.py"):
        names |= set(re.findall(r"""["'](LAKE_[A-Z0-9_]+)["']""", path.read_text()))
    for path in [ROOT / "dbt_project" / "profiles.yml", *(ROOT / "dbt_project" / "macros").rglob("*.sql")]:
        names |= set(re.findall(r"""env_var\(\s*["'](LAKE_[A-Z0-9_]+)["']""", path.read_text()))
    return names


def _ecs_environment(templates) -> dict[str, dict[str, object]]:
    """{task definition: {name: value}} of the Dagster containers."""
    environments = {}
    for _, logical_id, resource in resources(templates, "AWS::ECS::TaskDefinition"):
        for container in resource["Properties"]["ContainerDefinitions"]:
            environments[f"{logical_id}/{container['Name']}"] = {
                e["Name"]: e["Value"] for e in container.get("Environment", [])
            } | {s["Name"]: "<secret>" for s in container.get("Secrets", [])}
    return environments


def test_stack_outputs_and_task_environment_provide_exactly_the_lake_variables(templates):
    read = _names_the_code_reads()
    assert {"LAKE_ENV", "LAKE_BUCKET", "LAKE_DMS_TASK_ARN", "LAKE_SERVING_TABLE"} <= read, read
    outputs = set()
    for stack, body in templates.items():
        for key, output in body.get("Outputs", {}).items():
            description = output.get("Description", "")
            if description.startswith("LAKE_"):
                name = description.split(":", 1)[0]
                assert output_key(name) == key and env_name(key) == name, (stack, key, name)
                outputs.add(name)
    environments = _ecs_environment(templates)
    assert len(environments) == 2, environments.keys()  # webserver, daemon (the run tasks copy the daemon's)
    task_names = set()
    for where, environment in environments.items():
        lake = {n for n in environment if n.startswith("LAKE_")}
        task_names |= lake
        assert lake == read, f"{where}: missing {sorted(read - lake)}, never read {sorted(lake - read)}"
    provided = outputs | task_names
    assert provided == read, (
        f"read by the code but provided by no stack: {sorted(read - provided)}; "
        f"provided but read nowhere: {sorted(provided - read)}"
    )
    # Every output of a LAKE_* name is also in the containers' environment.
    assert outputs <= task_names


def test_task_environment_matches_the_instance_file(templates):
    """deploy/aws/dagster.yaml reads DAGSTER_POSTGRES_* (the password as an ECS secret), LAKE_BUCKET, LAKE_AWS_REGION."""
    instance = (DEPLOY / "dagster.yaml").read_text()
    needed = set(re.findall(r"\{env: ([A-Z_]+)\}", instance))
    assert {"DAGSTER_POSTGRES_PASSWORD", "LAKE_BUCKET"} <= needed
    for where, environment in _ecs_environment(templates).items():
        assert needed <= set(environment), f"{where} lacks {sorted(needed - set(environment))}"
        assert environment["DAGSTER_POSTGRES_PASSWORD"] == "<secret>"
        assert environment["LAKE_ENV"] == "aws" and environment["DAGSTER_EVENT_BATCH_SIZE"] == "10000"


def test_no_plain_secret_in_any_template(templates):
    text = json.dumps(templates)
    for forbidden in ("MasterUserPassword\": \"", "AdminUserPassword", "\"Password\": \""):
        assert forbidden not in text, forbidden


# --- properties the code depends on --------------------------------------------------------------------------------
def test_lake_bucket_encryption_versioning_public_access_tls_and_logs(templates):
    t = template(templates, "Storage")
    t.has_resource_properties("AWS::S3::Bucket", {
        "BucketName": Match.any_value(),
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()},
            "BucketKeyEnabled": True,
        }]},
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": Match.any_value()},
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
            "Prefix": "landing/", "Status": "Enabled", "NoncurrentVersionExpiration": Match.any_value()})])},
        "NotificationConfiguration": {"QueueConfigurations": [{
            "Event": "s3:ObjectCreated:*", "Queue": Match.any_value(),
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "landing/"}]}},
        }]},
    })
    # TLS only: the bucket policy denies requests without aws:SecureTransport.
    t.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_kms_key_rotation(templates):
    template(templates, "Storage").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    for _, logical_id, key in resources(templates, "AWS::KMS::Key"):
        assert key["Properties"].get("EnableKeyRotation") is True, logical_id


def test_writers_get_the_lake_key_and_glue_jobs_an_sse_kms_security_configuration(templates):
    """LAKE_KMS_KEY_ID is the lake key's ARN; the roles that write with it may encrypt (GenerateDataKey, Encrypt:
    SageMaker's KmsKeyId needs the latter); the Glue jobs' security configuration writes SSE-KMS with it."""
    storage = templates["Storage"]
    key_id = next(k for k, r in storage["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    assert storage["Outputs"][output_key("LAKE_KMS_KEY_ID")]["Value"] == {"Fn::GetAtt": [key_id, "Arn"]}
    compute = template(templates, "Compute")
    compute.has_resource_properties("AWS::Glue::SecurityConfiguration", {
        "Name": layout.GLUE_SECURITY_CONFIG,
        "EncryptionConfiguration": {"S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": Match.any_value()}]},
    })
    writers = {"Compute": ("GlueJobRole", "EmrJobRole", "SageMakerRole"), "Warehouse": ("UnloadRole",)}
    for stack, roles in writers.items():
        policies = [r for _, r in template(templates, stack).find_resources("AWS::IAM::Policy").items()]
        for role in roles:
            actions = {
                action
                for policy in policies
                if any(role in json.dumps(ref) for ref in policy["Properties"].get("Roles", []))
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]
                for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
            }
            assert {"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"} <= actions, (stack, role, sorted(actions))


def test_landing_queue_redrives_to_an_encrypted_dead_letter_queue(templates):
    t = template(templates, "Storage")
    queues = t.find_resources("AWS::SQS::Queue")
    assert len(queues) == 2
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())
    t.has_resource_properties("AWS::SQS::Queue", {"RedrivePolicy": {
        "deadLetterTargetArn": {"Fn::GetAtt": [Match.string_like_regexp("LandingDeadLetters"), "Arn"]},
        "maxReceiveCount": 5,
    }})


def test_dms_s3_target_carries_the_settings_the_code_checks(templates):
    endpoints = [r for _, _, r in resources(templates, "AWS::DMS::Endpoint") if r["Properties"]["EngineName"] == "s3"]
    assert len(endpoints) == 1
    settings = endpoints[0]["Properties"]["S3Settings"]
    # CloudFormation's S3Settings keys are the DMS API's (DataFormat, IncludeOpForFullLoad, TimestampColumnName).
    assert {k: settings.get(k) for k in DMS_TARGET_SETTINGS} == DMS_TARGET_SETTINGS
    assert settings["BucketFolder"] == layout.DMS_LANDING == "landing/dms"
    assert settings["EncryptionMode"] == "SSE_KMS"
    assert settings["UseTaskStartTimeForFullLoadTimestamp"] is True


# Where each actor may write in the lake bucket: role (stack, logical id prefix) -> prefixes of s3:PutObject.
WRITES = {
    ("Ingest", "DmsTargetRole"): {"landing/dms"},
    ("Ingest", "PartnerFaaRole"): {"landing/sftp/faa"},
    ("Ingest", "DataSyncRole"): {"landing/datasync/share", "landing/datasync/_reports"},
    ("Compute", "GlueJobRole"): {"iceberg", "_pipes"},
    ("Compute", "EmrJobRole"): {"iceberg/lake_curated.db", "_pipes"},
    ("Compute", "SageMakerRole"): {"ml/models", "ml/_scoring"},
    ("Warehouse", "UnloadRole"): {"exports"},
    ("Warehouse", "SpectrumRole"): set(),
    ("Dagster", "DagsterWebserverRole"): set(),
    ("Dagster", "DagsterRunRole"): {"raw", "exports", "ml", "iceberg/lake_ml.db", "landing/data_exchange/weather",
                                    "_code/spark_jobs", "_pipes", "_dagster/compute-logs"},
}


def _write_prefixes(templates, stack: str, role_prefix: str) -> set[str]:
    """The key prefixes of the lake bucket on which the role's policies allow s3:PutObject."""
    body = templates[stack]["Resources"]
    (role_id,) = [k for k, r in body.items() if r["Type"] == "AWS::IAM::Role" and k.startswith(role_prefix)]
    prefixes = set()
    for logical_id, resource in body.items():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        if {"Ref": role_id} not in resource["Properties"].get("Roles", []):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if "s3:PutObject" not in _list(statement["Action"]):
                continue
            for arn in _list(statement["Resource"]):
                # arn_for_objects of the imported bucket: {"Fn::Join": ["", [<bucket arn>, "/<prefix>/*"]]}
                suffix = arn["Fn::Join"][1][-1]
                assert suffix.startswith("/") and suffix.endswith("/*"), arn
                prefixes.add(suffix[1:-2])
    return prefixes


@pytest.mark.parametrize("role", sorted(WRITES), ids=lambda r: r[1])
def test_each_actor_writes_only_its_prefixes(templates, role):
    assert _write_prefixes(templates, *role) == WRITES[role]


def test_transfer_users_have_a_logical_home_in_their_landing_prefix(templates):
    t = template(templates, "Ingest")
    partners = config_module.load().partners
    assert partners
    for partner in partners:
        t.has_resource_properties("AWS::Transfer::User", {
            "UserName": partner.name,
            "HomeDirectoryType": "LOGICAL",
            "HomeDirectoryMappings": [{"Entry": "/", "Target": {"Fn::Join": ["", Match.array_with([
                Match.string_like_regexp(f"/landing/sftp/{partner.name}$")])]}}],
        })
    t.has_resource_properties("AWS::Transfer::Server", {"Domain": "S3", "Protocols": ["SFTP"],
                                                       "IdentityProviderType": "SERVICE_MANAGED"})


def test_runs_may_describe_the_transfer_server_and_its_users_only(templates):
    """AwsTransferPartners reads the partners' homes: DescribeServer on the lake's server, DescribeUser on its users;
    the server's id is LAKE_TRANSFER_SERVER_ID (an Ingest output, in the Dagster containers' environment)."""
    ingest = templates["Ingest"]
    (server_id,) = [k for k, r in ingest["Resources"].items() if r["Type"] == "AWS::Transfer::Server"]
    output = ingest["Outputs"][output_key("LAKE_TRANSFER_SERVER_ID")]
    assert output["Value"] == {"Fn::GetAtt": [server_id, "ServerId"]}
    statements = [s for _, s in _statements({"Dagster": templates["Dagster"]})
                  if any(a.startswith("transfer:") for a in _list(s["Action"]))]
    by_action = {a: json.dumps(s["Resource"]) for s in statements for a in _list(s["Action"])}
    assert set(by_action) == {"transfer:DescribeServer", "transfer:DescribeUser"}
    assert ":server/" in by_action["transfer:DescribeServer"] and "ServerId" in by_action["transfer:DescribeServer"]
    assert ":user/" in by_action["transfer:DescribeUser"] and by_action["transfer:DescribeUser"].endswith('/*"]]}')
    for environment in _ecs_environment(templates).values():
        assert "LAKE_TRANSFER_SERVER_ID" in environment


def test_datasync_task_options_and_report(templates):
    t = template(templates, "Ingest")
    t.has_resource_properties("AWS::DataSync::Task", {
        "Options": Match.object_like(dict(layout.DATASYNC_OPTIONS)),
        "TaskReportConfig": {"Destination": {"S3": Match.object_like({"Subdirectory": "landing/datasync/_reports/"})},
                             "OutputType": "STANDARD", "ReportLevel": Match.any_value()},
    })
    t.has_resource_properties("AWS::DataSync::LocationS3", {"Subdirectory": "/landing/datasync/share/"})


def test_serving_table_as_the_adapter_expects(templates):
    template(templates, "Serving").has_resource_properties("AWS::DynamoDB::Table", {
        "KeySchema": [{"AttributeName": "flight_id", "KeyType": "HASH"}],
        "AttributeDefinitions": Match.array_with([{"AttributeName": "flight_id", "AttributeType": "N"},
                                                  {"AttributeName": "flight_date", "AttributeType": "S"}]),
        "GlobalSecondaryIndexes": [Match.object_like({
            "IndexName": "flight_date-index",
            "KeySchema": [{"AttributeName": "flight_date", "KeyType": "HASH"}],
        })],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
    })


def test_glue_databases_are_the_catalogs_names(templates):
    names = {r["Properties"]["DatabaseInput"]["Name"] for _, _, r in resources(templates, "AWS::Glue::Database")}
    assert names == set(layout.DATABASES.values()) >= {"lake_raw", "lake_clean", "lake_curated", "lake_ml"}


def test_emr_application_runs_the_custom_image(templates):
    template(templates, "Compute").has_resource_properties("AWS::EMRServerless::Application", {
        "Type": "Spark", "ReleaseLabel": Match.string_like_regexp(r"^emr-7\."),
        "ImageConfiguration": {"ImageUri": Match.any_value()},
    })


def test_redshift_admin_password_is_managed_by_secrets_manager(templates):
    t = template(templates, "Warehouse")
    t.has_resource_properties("AWS::RedshiftServerless::Namespace", {"ManageAdminPassword": True})
    t.has_resource_properties("AWS::RedshiftServerless::Workgroup", {"PubliclyAccessible": False})


def test_run_tasks_mount_the_shared_files_where_lake_shared_files_path_points(templates):
    """The daemon's task definition (which EcsRunLauncher copies into every run task, use_current_ecs_task_config)
    mounts the EFS access point with IAM authorization and TLS at LAKE_SHARED_FILES_PATH; the run role may mount
    and write through that access point only; NFS reaches the file system from the tasks' security group."""
    assert re.search(r"use_current_ecs_task_config:\s*true", (DEPLOY / "dagster.yaml").read_text())
    dagster = templates["Dagster"]
    path = dagster["Outputs"][output_key("LAKE_SHARED_FILES_PATH")]["Value"]
    assert path.startswith("/mnt/")
    access_point = {"Fn::ImportValue": Match.string_like_regexp("SharedFilesLakeAccessPoint")}
    t = template(templates, "Dagster")
    t.has_resource_properties("AWS::ECS::TaskDefinition", {
        "Family": "lake-dagster-daemon",
        "Volumes": [{"Name": "shared-files", "EFSVolumeConfiguration": {
            "FilesystemId": {"Fn::ImportValue": Match.string_like_regexp("ExportsOutputRefSharedFiles")},
            "TransitEncryption": "ENABLED",
            "AuthorizationConfig": {"AccessPointId": access_point, "IAM": "ENABLED"},
        }}],
        "ContainerDefinitions": [Match.object_like({
            "Name": "run",
            "MountPoints": [{"ContainerPath": path, "SourceVolume": "shared-files", "ReadOnly": False}],
            "Environment": Match.array_with([{"Name": "LAKE_SHARED_FILES_PATH", "Value": path}]),
        })],
    })
    # Only the daemon's task (the run tasks' template) mounts it: the webserver runs no steps.
    tasks = t.find_resources("AWS::ECS::TaskDefinition")
    assert [body["Properties"]["Family"] for body in tasks.values() if "Volumes" in body["Properties"]] == [
        "lake-dagster-daemon"
    ]
    # The file system's own stack: the access point is the one FilesStack creates, on the encrypted file system.
    files = template(templates, "Files")
    files.has_resource_properties("AWS::EFS::AccessPoint", {"RootDirectory": Match.object_like({"Path": "/lake"})})
    files.has_resource_properties("AWS::EFS::FileSystem", {"Encrypted": True})

    statements = [(where, s) for where, s in _statements(templates)
                  if any(a.startswith("elasticfilesystem:") for a in _list(s["Action"]))]
    assert [where for where, _ in statements] == [
        where for where, _ in statements if where.startswith("Dagster/DagsterRunLakeData")
    ] and len(statements) == 1, statements
    ((_, efs),) = statements
    assert sorted(_list(efs["Action"])) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert re.fullmatch(r"LakeFiles:ExportsOutputFnGetAttSharedFiles\w*Arn\w*", efs["Resource"]["Fn::ImportValue"])
    condition = efs["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]
    assert "SharedFilesLakeAccessPoint" in json.dumps(condition) and ":access-point/" in json.dumps(condition)

    t.has_resource_properties("AWS::EC2::SecurityGroupIngress", {
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049,
        "GroupId": {"Fn::ImportValue": Match.string_like_regexp("EfsSecurityGroup")},
        "SourceSecurityGroupId": {"Fn::GetAtt": [Match.string_like_regexp("TasksSecurityGroup"), "GroupId"]},
    })
