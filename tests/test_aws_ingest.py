"""AWS ingest: the DMS task observer against moto, the Data Exchange exporter against botocore's Stubber.

moto serves DMS tasks and endpoints but not DescribeTableStatistics, and not Data Exchange at all; those
calls are answered by botocore hooks and a Stubber, with the request shapes asserted. The files the
services would write into landing are put in (moto) S3 by the test, as DMS and Data Exchange would.
"""

import json

import boto3
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dms.models import dms_backends

from lake_platform.adapters.aws_ingest import AwsDataExchange, AwsDms
from lake_platform.adapters.storage import S3ObjectStore

REGION = "us-east-1"
BUCKET = "lake-test"
MAPPINGS = {
    "rules": [
        {
            "rule-type": "selection",
            "rule-id": "1",
            "rule-name": "ops",
            "object-locator": {"schema-name": "public", "table-name": "%"},
            "rule-action": "include",
        }
    ]
}
PARQUET_WITH_OP_AND_TIMESTAMP = {
    "DataFormat": "parquet",
    "IncludeOpForFullLoad": True,
    "TimestampColumnName": "dms_commit_ts",
    "UseTaskStartTimeForFullLoadTimestamp": True,  # the settings AWS defaults to (the rest) are left out
    "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms-s3",
}
FLIGHTS_STATS = {
    "SchemaName": "public",
    "TableName": "flights",
    "FullLoadRows": 100,
    "Inserts": 4,
    "Updates": 2,
    "Deletes": 1,
    "TableState": "Table completed",
}


@pytest.fixture
def store(aws):
    return S3ObjectStore(bucket=BUCKET, region_name=REGION)


def answer(events, operation: str, response: dict) -> None:
    """Answer a DMS call moto does not implement, as the service would."""
    http = AWSResponse("https://dms.us-east-1.amazonaws.com/", 200, {}, None)
    events.register(f"before-call.database-migration-service.{operation}", lambda **_: (http, response))


def dms_task(**target_settings) -> str:
    dms = boto3.client("dms")
    source = dms.create_endpoint(
        EndpointIdentifier="ops-db", EndpointType="source", EngineName="postgres",
        ServerName="ops.internal", Port=5432, DatabaseName="ops", Username="dms", Password="x",
    )["Endpoint"]["EndpointArn"]
    settings = {"BucketName": BUCKET, "BucketFolder": "landing/dms", **PARQUET_WITH_OP_AND_TIMESTAMP}
    target = dms.create_endpoint(
        EndpointIdentifier="lake-landing", EndpointType="target", EngineName="s3",
        S3Settings={**settings, **target_settings},
    )["Endpoint"]["EndpointArn"]
    return dms.create_replication_task(
        ReplicationTaskIdentifier="ops-to-lake", SourceEndpointArn=source, TargetEndpointArn=target,
        ReplicationInstanceArn="arn:aws:dms:us-east-1:123456789012:rep:lake",
        MigrationType="full-load-and-cdc",
        TableMappings=json.dumps(MAPPINGS),
    )["ReplicationTask"]["ReplicationTaskArn"]


def set_status(task_arn: str, status: str) -> None:
    # moto never moves a task to "ready" or "failed" by itself.
    dms_backends[DEFAULT_ACCOUNT_ID][REGION].replication_tasks[task_arn].status = status


def dms_writes_landing_files(store) -> None:
    store.put_bytes("landing/dms/public/flights/LOAD00000001.parquet", b"PAR1...")
    store.put_bytes("landing/dms/public/flights/20240102-101500123.parquet", b"PAR1...")
    store.put_bytes("landing/dms/public/retired_table/LOAD00000001.parquet", b"not replicated by this task")


def test_dms_running_task_reports_its_landing_files_and_rows(aws, store):
    task_arn = dms_task()
    boto3.client("dms").start_replication_task(
        ReplicationTaskArn=task_arn, StartReplicationTaskType="start-replication"
    )
    answer(aws, "DescribeTableStatistics", {"TableStatistics": [FLIGHTS_STATS]})
    dms_writes_landing_files(store)
    dms = AwsDms(replication_task_arn=task_arn, region_name=REGION)

    report = dms.replicate(dg.build_asset_context(), store)

    assert [o.key for o in report.objects] == [
        "landing/dms/public/flights/20240102-101500123.parquet",
        "landing/dms/public/flights/LOAD00000001.parquet",
    ]
    assert report.rows == {"flights": 107}
    assert report.details["status"] == "running" and report.details["full_load_percent"] == "100"


@pytest.mark.parametrize(
    ("status", "expected_start_type"), [("stopped", "resume-processing"), ("ready", "start-replication")]
)
def test_dms_task_is_started_or_resumed_when_start_if_stopped(aws, store, status, expected_start_type):
    task_arn = dms_task()
    if status == "stopped":
        dms = boto3.client("dms")
        dms.start_replication_task(ReplicationTaskArn=task_arn, StartReplicationTaskType="start-replication")
        dms.stop_replication_task(ReplicationTaskArn=task_arn)
    else:
        set_status(task_arn, "ready")
    starts = []
    aws.register(
        "before-parameter-build.database-migration-service.StartReplicationTask",
        lambda params, **_: starts.append(params),
    )
    answer(aws, "DescribeTableStatistics", {"TableStatistics": [FLIGHTS_STATS]})
    dms = AwsDms(replication_task_arn=task_arn, start_if_stopped=True, region_name=REGION, poll_seconds=0)

    report = dms.replicate(dg.build_asset_context(), store)

    assert starts == [{"ReplicationTaskArn": task_arn, "StartReplicationTaskType": expected_start_type}]
    assert report.details["status"] == "running"


def test_dms_task_that_never_ran_is_not_started_without_start_if_stopped(aws, store):
    task_arn = dms_task()
    set_status(task_arn, "ready")

    with pytest.raises(RuntimeError, match="has never run: start it, or set start_if_stopped"):
        AwsDms(replication_task_arn=task_arn, region_name=REGION).replicate(dg.build_asset_context(), store)


def test_dms_task_still_loading_is_waited_for_until_the_timeout(aws, store):
    task_arn = dms_task()
    set_status(task_arn, "starting")
    dms = AwsDms(replication_task_arn=task_arn, region_name=REGION, poll_seconds=0, timeout_minutes=0)

    with pytest.raises(TimeoutError, match=f"DMS task {task_arn} did not finish within 0 minutes"):
        dms.replicate(dg.build_asset_context(), store)


def test_dms_failed_task_fails_the_ingest_naming_the_task(aws, store):
    task_arn = dms_task()
    set_status(task_arn, "failed")

    with pytest.raises(RuntimeError, match=f"DMS task {task_arn} is failed"):
        AwsDms(replication_task_arn=task_arn, region_name=REGION).replicate(dg.build_asset_context(), store)


def test_dms_errored_tables_fail_the_ingest_naming_them(aws, store):
    task_arn = dms_task()
    boto3.client("dms").start_replication_task(
        ReplicationTaskArn=task_arn, StartReplicationTaskType="start-replication"
    )
    weather = {"SchemaName": "public", "TableName": "weather", "TableState": "Table error"}
    answer(aws, "DescribeTableStatistics", {"TableStatistics": [FLIGHTS_STATS, weather]})

    with pytest.raises(RuntimeError, match=r"1 errored table\(s\): public\.weather"):
        AwsDms(replication_task_arn=task_arn, region_name=REGION).replicate(dg.build_asset_context(), store)


def test_dms_target_that_does_not_write_the_lake_layout_is_rejected_before_ingesting(aws, store):
    task_arn = dms_task(BucketFolder="exports/dms", DataFormat="csv")
    dms = AwsDms(replication_task_arn=task_arn, region_name=REGION)

    with pytest.raises(RuntimeError, match="does not match the lake") as failure:
        dms.replicate(dg.build_asset_context(), store)

    assert "writes to s3://lake-test/exports/dms/, not s3://lake-test/landing/dms/" in str(failure.value)
    assert "DataFormat='csv' (expected 'parquet')" in str(failure.value)


@pytest.mark.parametrize("setting, value, shown", [
    # AWS's default stamps full-load rows with their transfer time: a change committed during the load may lose.
    ("UseTaskStartTimeForFullLoadTimestamp", False, "UseTaskStartTimeForFullLoadTimestamp=False (expected True)"),
    ("DatePartitionEnabled", True, "DatePartitionEnabled=True (expected False)"),
    ("CdcInsertsOnly", True, "CdcInsertsOnly=True (expected False)"),
    ("PreserveTransactions", True, "PreserveTransactions=True (expected False)"),
])
def test_dms_target_whose_changes_the_emulator_does_not_write_is_rejected(aws, store, setting, value, shown):
    task_arn = dms_task(**{setting: value})
    with pytest.raises(RuntimeError, match="does not match the lake") as failure:
        AwsDms(replication_task_arn=task_arn, region_name=REGION).replicate(dg.build_asset_context(), store)
    assert shown in str(failure.value)


# --- Data Exchange ------------------------------------------------------------------------------------

DATA_SET = "ds-weather-0001"
KEY_PATTERN = "landing/data_exchange/weather/${Revision.Id}/${Asset.Name}"


def revision(revision_id: str, day: int, finalized: bool = True) -> dict:
    return {
        "Arn": f"arn:aws:dataexchange:us-east-1::data-sets/{DATA_SET}/revisions/{revision_id}",
        "Id": revision_id,
        "DataSetId": DATA_SET,
        "CreatedAt": f"2024-01-{day:02d}T00:00:00Z",
        "UpdatedAt": f"2024-01-{day:02d}T00:00:00Z",
        "Finalized": finalized,
    }


def job(job_id: str, state: str, **extra) -> dict:
    return {"Id": job_id, "State": state, "Type": "EXPORT_REVISIONS_TO_S3", **extra}


@pytest.fixture
def data_exchange(aws, store, monkeypatch):
    """A stubbed Data Exchange client that, like the service, writes a revision's assets on StartJob."""
    client = boto3.client("dataexchange")
    stubber = Stubber(client)
    exports = {}

    def remember_destination(params, **_):
        exports["destination"] = params["Details"]["ExportRevisionsToS3"]["RevisionDestinations"][0]

    def export_assets(**_):
        destination = exports["destination"]
        for asset in ("weather_jfk.csv", "weather_lga.csv"):
            key = destination["KeyPattern"].replace("${Revision.Id}", destination["RevisionId"])
            store.put_bytes(key.replace("${Asset.Name}", asset), b"origin,temp\n")

    client.meta.events.register("before-parameter-build.dataexchange.CreateJob", remember_destination)
    client.meta.events.register("after-call.dataexchange.StartJob", export_assets)
    monkeypatch.setattr(AwsDataExchange, "_client", lambda self, service: client)
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expect_export(stubber, revision_id: str, job_id: str) -> None:
    details = {
        "ExportRevisionsToS3": {
            "DataSetId": DATA_SET,
            "RevisionDestinations": [
                {"Bucket": BUCKET, "KeyPattern": KEY_PATTERN, "RevisionId": revision_id}
            ],
        }
    }
    stubber.add_response(
        "create_job", job(job_id, "WAITING"), {"Type": "EXPORT_REVISIONS_TO_S3", "Details": details}
    )
    stubber.add_response("start_job", {}, {"JobId": job_id})


def test_data_exchange_exports_only_finalized_revisions_not_yet_in_landing(data_exchange, store):
    store.put_bytes("landing/data_exchange/weather/rev-1/weather_jfk.csv", b"exported last run\n")
    revisions = [revision("rev-2", 2), revision("rev-1", 1), revision("rev-3", 3, finalized=False)]
    data_exchange.add_response("list_data_set_revisions", {"Revisions": revisions}, {"DataSetId": DATA_SET})
    expect_export(data_exchange, "rev-2", "job-2")
    data_exchange.add_response("get_job", job("job-2", "IN_PROGRESS"), {"JobId": "job-2"})
    data_exchange.add_response("get_job", job("job-2", "COMPLETED"), {"JobId": "job-2"})
    exchange = AwsDataExchange(data_set_id=DATA_SET, poll_seconds=0)

    report = exchange.export_new_revisions(dg.build_asset_context(), store)

    assert [o.key for o in report.objects] == [
        "landing/data_exchange/weather/rev-2/weather_jfk.csv",
        "landing/data_exchange/weather/rev-2/weather_lga.csv",
    ]
    assert report.details["export_jobs"] == "rev-2: job-2"


def test_data_exchange_failed_export_names_job_and_revision_and_leaves_nothing_behind(data_exchange, store):
    revisions = {"Revisions": [revision("rev-7", 7)]}
    data_exchange.add_response("list_data_set_revisions", revisions, {"DataSetId": DATA_SET})
    expect_export(data_exchange, "rev-7", "job-7")
    error = {"Code": "ACCESS_DENIED_EXCEPTION", "Message": "no s3:PutObject on lake-test"}
    data_exchange.add_response("get_job", job("job-7", "ERROR", Errors=[error]), {"JobId": "job-7"})
    exchange = AwsDataExchange(data_set_id=DATA_SET, poll_seconds=0)

    with pytest.raises(RuntimeError) as failure:
        exchange.export_new_revisions(dg.build_asset_context(), store)

    message = str(failure.value)
    assert "revision rev-7" in message and "job job-7" in message
    assert "ended ERROR: ACCESS_DENIED_EXCEPTION: no s3:PutObject on lake-test" in message
    assert store.list("landing/data_exchange/weather/") == [], "the partial export is removed for a retry"
