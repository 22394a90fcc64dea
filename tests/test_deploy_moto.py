"""The Storage and Serving stacks of the CDK app deployed with CloudFormation to `moto_server` on loopback, and the
lake's AWS code run against what they create (issue 12): the aws-mode raw copy, a tick of the S3 event
notifications sensor, and a serving load, all configured from the stacks' outputs (LAKE_* variables) only.

The templates are deployed unchanged. Where moto's CloudFormation does not create a resource, or does not apply a
property, the tables below say so with the reason and say whether the test applies that part itself, from the
template with its intrinsics resolved against the deployed stack (the S3 notification configuration, which the
sensor depends on, is one). The tables are checked to be exact, so a resource or property added to these stacks is
noticed here.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# moto is in requirements.lock with its server extras: a missing moto_server fails the module, it never skips.
if shutil.which("node") is None:
    pytest.skip("the AWS CDK runs on Node.js (jsii): `node` is not on PATH", allow_module_level=True)

import boto3  # noqa: E402
import dagster as dg  # noqa: E402

from lake_platform.raw.assets import raw_assets  # noqa: E402
from lake_platform.raw.copy import manifest_key  # noqa: E402
from lake_platform.resources import aws_resources  # noqa: E402
from lake_platform.sensors import sensors_for  # noqa: E402
from lake_platform.sensors.notifications import SENSOR_NAME  # noqa: E402
from lake_platform.sensors.requests import run_key  # noqa: E402
from lake_platform.sensors.sources import landing_sources  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "aws"))
from lake_stacks.outputs import env_name  # noqa: E402

DEPLOYED = ("Storage", "Serving")  # in dependency order: Serving imports the lake key's ARN from Storage
MOTO_SERVER = Path(sys.executable).parent / "moto_server"

# Resource types moto's CloudFormation does not implement (moto 5.2.5 warns "No Moto CloudFormation support" and
# leaves them out of the stack) -> the reason, and what the test does about it.
NOT_CREATED_BY_MOTO = {
    "AWS::S3::BucketPolicy": "not applied: moto's S3 evaluates a bucket policy's Deny statements but ignores their "
        "Condition, so the stack's TLS-only statement (Deny s3:* when aws:SecureTransport is false) would deny every "
        "request, over TLS or not",
    "AWS::SQS::QueuePolicy": "applied by the test as the queue's Policy attribute (SetQueueAttributes, which is what "
        "the resource sets), resolved",
}

# Properties each type's moto CloudFormation model reads (moto 5.2.5, `create_from_cloudformation_json`); None: the
# model passes every property to the service's create call. A type created here that is missing fails the test.
READ_BY_MOTO = {
    # KeyPolicy is read, but stored as the template's object where KMS stores JSON text: see NOT_APPLIED_BY_MOTO.
    "AWS::KMS::Key": {"Description", "Tags", "EnableKeyRotation", "Enabled"},
    "AWS::KMS::Alias": {"AliasName", "TargetKeyId"},
    "AWS::S3::Bucket": {"BucketName", "BucketEncryption", "Tags"},
    "AWS::SQS::Queue": None,
    # SSESpecification is read, but in the API's shape: see NOT_APPLIED_BY_MOTO.
    "AWS::DynamoDB::Table": {
        "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "ProvisionedThroughput",
        "LocalSecondaryIndexes", "StreamSpecification", "Tags", "DeletionProtectionEnabled", "WarmThroughput",
        "BillingMode",
    },
}

# Template properties moto does not apply as the service would: `Type.Property` -> the reason, and what the test
# does about it.
NOT_APPLIED_BY_MOTO = {
    "AWS::KMS::Key.KeyPolicy": "applied by the test with PutKeyPolicy, as JSON text: moto keeps the template's "
        "policy object where KMS keeps text, and then fails every DescribeKey of the key (an internal error: "
        "json.loads of a dict)",
    "AWS::S3::Bucket.NotificationConfiguration": "applied by the test with PutBucketNotificationConfiguration (the "
        "template's queue configurations in the API's shape): the notifications sensor depends on it",
    "AWS::S3::Bucket.VersioningConfiguration": "applied by the test with PutBucketVersioning: S3 event records and "
        "overwrites behave as on the versioned bucket",
    "AWS::S3::Bucket.PublicAccessBlockConfiguration": "applied by the test with PutPublicAccessBlock (same shape)",
    "AWS::S3::Bucket.OwnershipControls": "applied by the test with PutBucketOwnershipControls (same shape)",
    "AWS::S3::Bucket.LoggingConfiguration": "not applied: moto delivers no server access logs, so nothing would "
        "differ; the access-log bucket and its policy are deployed",
    "AWS::S3::Bucket.LifecycleConfiguration": "not applied: moto never expires objects or versions, so the rules "
        "could not act; nothing the lake code does reads them",
    "AWS::DynamoDB::Table.PointInTimeRecoverySpecification": "applied by the test with UpdateContinuousBackups "
        "(same shape)",
    "AWS::DynamoDB::Table.SSESpecification": "not applied: moto looks for the API's `Enabled` where CloudFormation "
        "has `SSEEnabled`, so the table reports no SSE, and moto's UpdateTable ignores SSESpecification; the test "
        "checks instead that the property imports the Storage export whose value is the lake key",
}


# --- moto_server -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """`moto_server` on 127.0.0.1, with every boto3 client of this process pointed at it (AWS_ENDPOINT_URL,
    botocore >= 1.31) under dummy credentials; stopped at teardown."""
    assert MOTO_SERVER.exists(), f"{MOTO_SERVER} is missing: install moto[server] (requirements.lock)"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto_server") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, f"moto_server exited ({server.returncode}):\n{log.read_text()}"
                assert time.monotonic() < deadline, f"moto_server did not answer on {url}:\n{log.read_text()}"
                time.sleep(0.1)
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
                mp.delenv(name, raising=False)
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_CONFIG_FILE", str(log.parent / "no-config"))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(log.parent / "no-credentials"))
            mp.setenv("AWS_ENDPOINT_URL", url)
            mp.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh default session: no hooks left by other tests
            yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- the deployment ------------------------------------------------------------------------------------------
def stack_settings(cloud_assembly, stack: str) -> tuple[str, str]:
    """(stack name, region) of a stack, as the cloud assembly's manifest gives them to `cdk deploy`."""
    manifest = json.loads((cloud_assembly / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        properties = artifact.get("properties", {})
        if artifact["type"] == "aws:cloudformation:stack" and properties.get("templateFile") == f"Lake{stack}.template.json":
            return properties.get("stackName", artifact["displayName"]), artifact["environment"].rsplit("/", 1)[1]
    raise LookupError(f"no stack artifact for Lake{stack}.template.json")


class Resolver:
    """Resolves the intrinsics of a deployed stack's template against the resources moto created."""

    def __init__(self, template: dict, physical: dict[str, str], region: str, account: str):
        self.template, self.physical, self.region, self.account = template, physical, region, account

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            pseudo = {"AWS::Partition": "aws", "AWS::AccountId": self.account, "AWS::Region": self.region}
            return pseudo[value["Ref"]] if value["Ref"] in pseudo else self.physical[value["Ref"]]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(self(parts))
        if set(value) == {"Fn::GetAtt"}:
            return self.arn(*value["Fn::GetAtt"])
        assert not any(k.startswith("Fn::") for k in value), f"intrinsic the test does not resolve: {value}"
        return {k: self(v) for k, v in value.items()}

    def arn(self, logical_id: str, attribute: str) -> str:
        assert attribute == "Arn", (logical_id, attribute)
        kind, physical = self.template["Resources"][logical_id]["Type"], self.physical[logical_id]
        if kind == "AWS::S3::Bucket":
            return f"arn:{self({'Ref': 'AWS::Partition'})}:s3:::{physical}"
        if kind == "AWS::SQS::Queue":
            attributes = boto3.client("sqs", region_name=self.region).get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"])
            return attributes["Attributes"]["QueueArn"]
        if kind == "AWS::KMS::Key":
            return boto3.client("kms", region_name=self.region).describe_key(KeyId=physical)["KeyMetadata"]["Arn"]
        raise AssertionError(f"Fn::GetAtt {logical_id}.Arn of a {kind}: not resolved by the test")


def notification_configuration(properties: dict) -> dict:
    """AWS::S3::Bucket's NotificationConfiguration (resolved) in PutBucketNotificationConfiguration's shape."""
    assert set(properties) == {"QueueConfigurations"}, f"only queue configurations are converted: {set(properties)}"
    return {
        "QueueConfigurations": [
            {
                "QueueArn": q["Queue"],
                "Events": [q["Event"]],
                **({"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}} if "Filter" in q else {}),
            }
            for q in properties["QueueConfigurations"]
        ]
    }


def apply_what_moto_left_out(template: dict, resolve: Resolver, region: str) -> list[str]:
    """Applies, from the template, the resources of NOT_CREATED_BY_MOTO and the properties of NOT_APPLIED_BY_MOTO
    the test applies; returns `Type` or `Type.Property` of each one applied."""
    s3, sqs = boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region)
    kms, dynamodb = boto3.client("kms", region_name=region), boto3.client("dynamodb", region_name=region)
    applied = []

    def apply(kind: str, properties: dict, name: str, call) -> None:
        if name in properties:
            call(resolve(properties[name]))
            applied.append(f"{kind}.{name}")

    # The key first: resolving the other resources' Fn::GetAtt of its Arn calls DescribeKey.
    ordered = sorted(template["Resources"].items(), key=lambda item: item[1]["Type"] != "AWS::KMS::Key")
    for logical_id, resource in ordered:
        kind, properties, physical = resource["Type"], resource.get("Properties", {}), resolve.physical.get(logical_id)
        if kind == "AWS::KMS::Key":
            apply(kind, properties, "KeyPolicy",
                  lambda p: kms.put_key_policy(KeyId=physical, PolicyName="default", Policy=json.dumps(p)))
        elif kind == "AWS::SQS::QueuePolicy":
            properties = resolve(properties)
            for url in properties["Queues"]:
                sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
            applied.append(kind)
        elif kind == "AWS::S3::Bucket":
            apply(kind, properties, "VersioningConfiguration",
                  lambda p: s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration=p))
            apply(kind, properties, "PublicAccessBlockConfiguration",
                  lambda p: s3.put_public_access_block(Bucket=physical, PublicAccessBlockConfiguration=p))
            apply(kind, properties, "OwnershipControls",
                  lambda p: s3.put_bucket_ownership_controls(Bucket=physical, OwnershipControls=p))
            if "NotificationConfiguration" in properties:
                assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=physical), (
                    "moto applied the notification configuration itself: drop the workaround")
            apply(kind, properties, "NotificationConfiguration",
                  lambda p: s3.put_bucket_notification_configuration(
                      Bucket=physical, NotificationConfiguration=notification_configuration(p)))
        elif kind == "AWS::DynamoDB::Table":
            apply(kind, properties, "PointInTimeRecoverySpecification",
                  lambda p: dynamodb.update_continuous_backups(TableName=physical, PointInTimeRecoverySpecification=p))
    return applied


@pytest.fixture(scope="module")
def deployment(moto_endpoint, templates, cloud_assembly):
    """The stacks of DEPLOYED created with CloudFormation on moto, as synthesized. Yields what the checks need:
    the LAKE_* variables of their outputs, the templates' resources moto did not create, and the parts applied."""
    settings = {s: stack_settings(cloud_assembly, s) for s in DEPLOYED}
    regions = {region for _, region in settings.values()}
    assert len(regions) == 1, regions
    region = regions.pop()
    # The templates' BootstrapVersion parameter reads this SSM parameter, which `cdk bootstrap` creates (version 6
    # or later, as each template's CheckBootstrapVersion rule requires; moto does not evaluate Rules).
    boto3.client("ssm", region_name=region).put_parameter(
        Name=templates[DEPLOYED[0]]["Parameters"]["BootstrapVersion"]["Default"], Value="6", Type="String")
    cloudformation = boto3.client("cloudformation", region_name=region)
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    outputs, missing, applied, created = {}, {}, {}, {}
    for stack in DEPLOYED:
        name, template = settings[stack][0], templates[stack]
        cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
        described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE", described
        listed = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}
        assert {r["ResourceStatus"] for r in listed} == {"CREATE_COMPLETE"}, listed
        missing[stack] = {i: r["Type"] for i, r in template["Resources"].items() if i not in physical}
        created[stack] = {i: (r["Type"], set(r.get("Properties", {}))) for i, r in template["Resources"].items()
                          if i in physical}
        applied[stack] = apply_what_moto_left_out(template, Resolver(template, physical, region, account), region)
        outputs.update({o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])})
    lake = {env_name(key): value for key, value in outputs.items() if env_name(key).startswith("LAKE_")}
    yield {"lake": lake, "missing": missing, "created": created, "applied": applied, "region": region}


@pytest.fixture(scope="module")
def lake_env(deployment):
    """The LAKE_* variables of the stacks' outputs in the environment, where the aws resources read them."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in deployment["lake"].items():
            mp.setenv(name, value)
        yield deployment["lake"]


# --- the deployment, checked -------------------------------------------------------------------------------------
def test_the_stacks_deploy_and_what_moto_leaves_out_is_exactly_the_documented_list(deployment, moto_endpoint):
    assert boto3.client("s3", region_name=deployment["region"]).meta.endpoint_url == moto_endpoint  # not AWS
    missing_types = {t for stack in DEPLOYED for t in deployment["missing"][stack].values()}
    assert missing_types == set(NOT_CREATED_BY_MOTO), "update NOT_CREATED_BY_MOTO with the reason"
    ignored = set()
    for stack in DEPLOYED:
        for logical_id, (kind, properties) in deployment["created"][stack].items():
            assert kind in READ_BY_MOTO, f"{stack}/{logical_id}: {kind} is not in READ_BY_MOTO"
            read = READ_BY_MOTO[kind]
            ignored |= {f"{kind}.{p}" for p in properties - (properties if read is None else read)}
    assert ignored == set(NOT_APPLIED_BY_MOTO), "update NOT_APPLIED_BY_MOTO with the reason"
    # Each entry says whether the test applies it, and the test applies exactly those.
    documented = {**NOT_CREATED_BY_MOTO, **NOT_APPLIED_BY_MOTO}
    assert all(r.startswith(("applied by the test", "not applied:")) for r in documented.values())
    applied = {a for stack in DEPLOYED for a in deployment["applied"][stack]}
    assert applied == {k for k, reason in documented.items() if reason.startswith("applied by the test")}


def logical_id(template: dict, kind: str) -> str:
    (found,) = [i for i, r in template["Resources"].items() if r["Type"] == kind]
    return found


def test_the_outputs_name_the_variables_of_the_deployed_resources(lake_env, deployment, templates):
    region = deployment["region"]
    assert set(lake_env) == {"LAKE_BUCKET", "LAKE_AWS_REGION", "LAKE_KMS_KEY_ID", "LAKE_LANDING_QUEUE_URL",
                             "LAKE_SERVING_TABLE"}
    assert lake_env["LAKE_AWS_REGION"] == region
    key = boto3.client("kms", region_name=region).describe_key(KeyId=lake_env["LAKE_KMS_KEY_ID"])["KeyMetadata"]
    assert key["Arn"] == lake_env["LAKE_KMS_KEY_ID"] and key["Enabled"]
    s3 = boto3.client("s3", region_name=region)
    rule = s3.get_bucket_encryption(Bucket=lake_env["LAKE_BUCKET"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                          "KMSMasterKeyID": lake_env["LAKE_KMS_KEY_ID"]}
    assert s3.get_bucket_versioning(Bucket=lake_env["LAKE_BUCKET"])["Status"] == "Enabled"
    sqs = boto3.client("sqs", region_name=region)
    queue = sqs.get_queue_attributes(QueueUrl=lake_env["LAKE_LANDING_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert queue["KmsMasterKeyId"] == lake_env["LAKE_KMS_KEY_ID"] and queue["VisibilityTimeout"] == "300"
    assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] == 5
    statements = {s.get("Sid"): s for s in json.loads(queue["Policy"])["Statement"]}
    from_bucket = statements["S3EventNotificationsFromTheLakeBucket"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert from_bucket == f"arn:aws:s3:::{lake_env['LAKE_BUCKET']}"  # the queue policy names the stack's bucket
    table = boto3.client("dynamodb", region_name=region).describe_table(TableName=lake_env["LAKE_SERVING_TABLE"])
    table = table["Table"]
    assert [(i["IndexName"], i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]] == [
        ("flight_date-index", [{"AttributeName": "flight_date", "KeyType": "HASH"}], {"ProjectionType": "KEYS_ONLY"})]
    # The table's key is the Storage stack's key, through Fn::ImportValue (moto resolved it: the stack deployed).
    imported = templates["Serving"]["Resources"][logical_id(templates["Serving"], "AWS::DynamoDB::Table")]
    export = imported["Properties"]["SSESpecification"]["KMSMasterKeyId"]["Fn::ImportValue"]
    exports = {e["Name"]: e["Value"] for e in boto3.client("cloudformation", region_name=region).list_exports()["Exports"]}
    assert exports[export] == lake_env["LAKE_KMS_KEY_ID"]


# --- the lake's AWS code against it ----------------------------------------------------------------------------
def in_queue(sqs, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def drain(sqs, url: str) -> list[dict]:
    """Receives and deletes every message in the queue; returns their bodies."""
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])
    return bodies


def test_the_aws_raw_copy_copies_a_landed_object_under_the_stack_key(lake_env, tmp_path):
    region, bucket, key_arn = lake_env["LAKE_AWS_REGION"], lake_env["LAKE_BUCKET"], lake_env["LAKE_KMS_KEY_ID"]
    s3 = boto3.client("s3", region_name=region)
    body = b"carrier,name\nAA,American Airlines Inc.\nUA,United Air Lines Inc.\n"
    landing = "landing/sftp/faa/airlines.csv"
    s3.put_object(Bucket=bucket, Key=landing, Body=body)  # as the SFTP server does: no encryption header
    landed = s3.head_object(Bucket=bucket, Key=landing)
    assert (landed["ServerSideEncryption"], landed["SSEKMSKeyId"]) == ("aws:kms", key_arn)  # the bucket default

    resources = aws_resources(tmp_path)
    assert resources["store"].bucket == dg.EnvVar("LAKE_BUCKET")  # names come from the environment only
    raw_airlines = next(a for a in raw_assets if a.key == dg.AssetKey(["raw", "airlines"]))
    result = dg.materialize([raw_airlines], resources=resources)

    assert result.success
    metadata = result.asset_materializations_for_node(raw_airlines.op.name)[0].metadata
    assert (metadata["objects_copied"].value, metadata["bytes_current"].value) == (1, len(body))
    assert metadata["manifest"].value == f"s3://{bucket}/{manifest_key('airlines')}"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key("airlines"))["Body"].read())
    raw_key = manifest["current"][landing]["raw_key"]
    assert raw_key.startswith("raw/sftp/faa/") and raw_key.endswith("/airlines.csv")
    assert s3.get_object(Bucket=bucket, Key=raw_key)["Body"].read() == body
    for written in (raw_key, manifest_key("airlines")):  # S3ObjectStore's own writes: SSE-KMS, the stack's key
        head = s3.head_object(Bucket=bucket, Key=written)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn), written


def test_a_landed_object_reaches_the_stack_queue_and_the_sensor_tick_requests_its_runs(lake_env, tmp_path):
    region, bucket, url = lake_env["LAKE_AWS_REGION"], lake_env["LAKE_BUCKET"], lake_env["LAKE_LANDING_QUEUE_URL"]
    s3, sqs = boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region)
    drained = drain(sqs, url)  # the s3:TestEvent of the notification configuration, and other tests' objects
    assert any(b.get("Event") == "s3:TestEvent" for b in drained), drained  # S3 reached the queue when configured
    weather = next(s for s in landing_sources() if s.name == "weather")
    key = f"{weather.prefix}0123456789abcdef/weather 2013-01.csv"  # S3 URL-encodes it in the event
    body = b"origin,year,month,day,hour\nJFK,2013,01,01,0\nJFK,2013,01,02,0\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="exports/not-landing.csv", Body=b"x")  # outside landing/: no notification
    assert in_queue(sqs, url) == 1

    sensor = next(s for s in sensors_for("aws") if s.name == SENSOR_NAME)  # reads LAKE_LANDING_QUEUE_URL
    store = aws_resources(tmp_path)["store"]
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, resources={"store": store}))

        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        assert [(r.run_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in result.run_requests] == [
            (run_key(weather, [f"s3://{bucket}/{key}@{etag}"], "2013-01-01..2013-01-02"),
             ["clean/weather", "raw/weather"])
        ]
        assert result.run_requests[0].tags["dagster/asset_partition_range_start"] == "2013-01-01"
        assert in_queue(sqs, url) == 1  # kept, in flight, until the runs are recorded

        # What the daemon does with the tick's requests; the next tick then deletes the message from the queue.
        for request in result.run_requests:
            tags = {"dagster/run_key": request.run_key, "dagster/sensor_name": SENSOR_NAME}
            instance.create_run_for_job(dg.GraphDefinition("sensor_run").to_job(), tags=tags)
        settled = sensor(dg.build_sensor_context(cursor=result.cursor, instance=instance, resources={"store": store}))
    assert not settled.run_requests and in_queue(sqs, url) == 0


def test_a_serving_load_replaces_a_day_through_the_stack_table_and_its_date_index(lake_env, tmp_path, monkeypatch):
    region, name = lake_env["LAKE_AWS_REGION"], lake_env["LAKE_SERVING_TABLE"]
    serving = aws_resources(tmp_path)["serving"]
    assert serving.table_name == dg.EnvVar("LAKE_SERVING_TABLE")
    table = serving.process_config_and_initialize()  # resolves the EnvVars, as a run does
    assert table.table_name == name
    calls: list[str] = []
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3.Session(region_name=region))  # the table's clients' session
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))

    def day(date: str, ids, probability: float = 0.25):
        return [{"flight_id": i, "flight_date": date, "probability_late": probability} for i in ids]

    assert table.replace_range(day("2013-01-01", range(1, 4)), "flight_id", "2013-01-01", "2013-01-01").written == 3
    table.replace_range(day("2013-01-02", range(10, 15)), "flight_id", "2013-01-02", "2013-01-02")
    calls.clear()
    report = table.replace_range(day("2013-01-02", [10, 11, 20], 0.75), "flight_id", "2013-01-02", "2013-01-02")

    assert (report.written, report.deleted, report.in_range) == (3, 3, 3)
    assert "Scan" not in calls and calls.count("Query") == 1  # the stale keys were found through the GSI
    client = boto3.client("dynamodb", region_name=region)
    by_day = {}
    for date in ("2013-01-01", "2013-01-02"):
        items = client.query(TableName=name, IndexName="flight_date-index",
                             KeyConditionExpression="flight_date = :d",
                             ExpressionAttributeValues={":d": {"S": date}})["Items"]
        by_day[date] = sorted(int(i["flight_id"]["N"]) for i in items)
    assert by_day == {"2013-01-01": [1, 2, 3], "2013-01-02": [10, 11, 20]}
    assert table.get(20) == {"flight_id": 20, "flight_date": "2013-01-02", "probability_late": 0.75}
    assert table.get(12) is None
