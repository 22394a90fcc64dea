"""DataSync: the local stand-in over a real share directory, and the AWS task execution against moto.

moto's DataSync keeps tasks and locations and moves an execution one status further on each
DescribeTaskExecution (INITIALIZING -> PREPARING -> TRANSFERRING -> VERIFYING -> SUCCESS); it copies no
files, writes no task report and reports no counters, errors or TaskReportConfig. So the files and the task
report DataSync would write are put into (moto) S3 by the test when the execution starts, the task's report
configuration is added to DescribeTask's answer, and an execution's ERROR result is answered, by botocore hooks.
"""

import json
import os

import boto3
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse

from lake_platform.adapters.datasync import (
    REPORTS_PREFIX,
    SHARE_PREFIX,
    LocalDataSync,
    matches,
    read_task_report,
    report_folder,
    selected,
)
from lake_platform.adapters.datasync_aws import AwsDataSync
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.sources.share import SHARE_DIR, seed_share

REGION = "us-east-1"
BUCKET = "lake-datasync"
SEEDED = [
    "audio/synthetic_cockpit_audio_1.wav", "audio/synthetic_cockpit_audio_2.wav",
    "audio/synthetic_cockpit_audio_3.wav", "docs/synthetic_inspection_1.pdf", "docs/synthetic_inspection_2.pdf",
    "docs/synthetic_inspection_3.pdf", "docs/synthetic_maintenance_log_1.txt", "docs/synthetic_parts_list.csv",
    "docs/synthetic_procedure.md", "images/synthetic_engine_photo_1.png", "images/synthetic_engine_photo_2.png",
    "images/synthetic_engine_photo_3.png",
]


@pytest.fixture
def lake(tmp_path):
    seed_share(tmp_path, log=lambda _: None)
    return tmp_path


def local_sync(lake, **filters) -> LocalDataSync:
    state = str(lake / "sources" / "datasync_task_state.json")
    return LocalDataSync(share_dir=str(lake / SHARE_DIR), state_path=state, **filters)


def run(sync: LocalDataSync, lake):
    """(store, LandingReport, the task report's summary) of one execution."""
    store = LocalObjectStore(root=str(lake))
    report = sync.sync(dg.build_asset_context(), store)
    task_report = read_task_report(store, sync.task_id(), report.details["execution_id"])
    assert task_report.location == report.details["task_report"]
    return store, report, task_report.summary


def transferred(report) -> list[str]:
    return sorted(o.key.removeprefix(SHARE_PREFIX) for o in report.objects)


# --- LocalDataSync --------------------------------------------------------------------------------------


def test_first_execution_transfers_every_file_verified_and_the_next_transfers_none(lake):
    sync = local_sync(lake)

    store, first, summary = run(sync, lake)
    _, second, again = run(sync, lake)

    assert transferred(first) == SEEDED
    for name in SEEDED:
        assert store.get_bytes(SHARE_PREFIX + name) == (lake / SHARE_DIR / name).read_bytes()
    assert (summary["Status"], summary["FilesTransferred"], summary["FilesVerified"]) == ("SUCCESS", 12, 12)
    assert summary["BytesTransferred"] == sum((lake / SHARE_DIR / n).stat().st_size for n in SEEDED)
    assert summary["Options"]["VerifyMode"] == "ONLY_FILES_TRANSFERRED"
    assert second.objects == []
    assert (again["FilesTransferred"], again["FilesSkipped"]) == (0, 12)
    assert again["TaskExecutionId"] != summary["TaskExecutionId"]


def test_only_new_and_changed_files_are_transferred_and_a_touched_file_is_not(lake):
    sync = local_sync(lake)
    run(sync, lake)
    share = lake / SHARE_DIR
    (share / "docs" / "synthetic_new_note.txt").write_text("new\n")
    with open(share / "docs" / "synthetic_maintenance_log_1.txt", "a") as log:
        log.write("2013-01-02 N999UA gearbox: replaced\n")
    touched = share / "images" / "synthetic_engine_photo_1.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))

    store, report, summary = run(sync, lake)

    assert transferred(report) == ["docs/synthetic_maintenance_log_1.txt", "docs/synthetic_new_note.txt"]
    assert store.get_bytes(SHARE_PREFIX + "docs/synthetic_maintenance_log_1.txt").endswith(b"replaced\n")
    detailed = read_task_report(store, sync.task_id(), report.details["execution_id"])
    reasons = {s["RelativePath"]: s["SkippedReason"] for s in detailed.entries["Skipped"]}
    assert reasons["/images/synthetic_engine_photo_1.png"] == "CONTENT_UNCHANGED"
    assert (summary["FilesTransferred"], summary["FilesSkipped"]) == (2, 11)


def test_a_file_deleted_from_the_share_stays_in_landing(lake):
    sync = local_sync(lake)
    run(sync, lake)
    (lake / SHARE_DIR / "docs" / "synthetic_procedure.md").unlink()

    store, report, summary = run(sync, lake)

    assert store.exists(SHARE_PREFIX + "docs/synthetic_procedure.md")
    assert report.details["files_kept_after_source_deletion"] == "1"
    assert summary["FilesDeleted"] == 0 and summary["Options"]["PreserveDeletedFiles"] == "PRESERVE"


def test_lost_task_state_does_not_transfer_unchanged_files_again(lake):
    sync = local_sync(lake)
    run(sync, lake)
    (lake / "sources" / "datasync_task_state.json").unlink()

    _, report, summary = run(sync, lake)

    assert report.objects == [] and summary["FilesSkipped"] == 12


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/docs", "docs/a.pdf", True),
        ("/docs/", "docs/sub/a.pdf", True),
        ("/docs*", "docs_old/a.pdf", True),
        ("/docs", "images/docs.png", False),
        ("*.tmp", "a/b/c.tmp", True),
        ("*.tmp", "a/b/c.tmpx", False),
        ("*/scratch", "docs/scratch/a.txt", True),
        ("/folder/file1.txt", "folder/file1.txt", True),
        ("/folder/file1.txt", "folder/file10.txt", False),
    ],
)
def test_filter_patterns_match_as_datasync_documents(pattern, path, expected):
    assert matches(pattern, path) is expected


def test_include_and_exclude_filters_select_what_is_transferred(lake):
    share = lake / SHARE_DIR
    (share / "docs" / "draft.tmp").write_text("temporary")
    (share / "docs" / "scratch").mkdir()
    (share / "docs" / "scratch" / "notes.txt").write_text("scratch")
    sync = local_sync(lake, include=["/docs*|/images"], exclude=["*.tmp|*/scratch"])

    _, report, summary = run(sync, lake)

    assert transferred(report) == [n for n in SEEDED if not n.startswith("audio/")]
    assert summary["Includes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "/docs*|/images"}]
    assert not selected("audio/x.wav", ["/docs*", "/images"], [])


def test_include_pattern_with_a_wildcard_before_its_end_is_rejected_as_datasync_does(lake):
    with pytest.raises(ValueError, match=r"include pattern\(s\) \['\*\.pdf'\]"):
        run(local_sync(lake, include=["*.pdf"]), lake)


def test_a_corrupted_write_fails_verification_naming_the_file_and_the_next_execution_repairs_it(lake, monkeypatch):
    real_put = LocalObjectStore.put_bytes

    def flaky_put(self, key, data):
        corrupt = key.endswith("synthetic_inspection_2.pdf")
        real_put(self, key, data[:-1] + b"X" if corrupt else data)

    monkeypatch.setattr(LocalObjectStore, "put_bytes", flaky_put)
    store = LocalObjectStore(root=str(lake))
    with pytest.raises(RuntimeError, match="verification failed for 1 file") as failure:
        local_sync(lake).sync(dg.build_asset_context(), store)
    monkeypatch.undo()

    named = "/docs/synthetic_inspection_2.pdf (verified FAILED: ChecksumMismatch: checksum mismatch"
    assert named in str(failure.value)
    [summary_key] = [o.key for o in store.list(REPORTS_PREFIX) if o.key.endswith("summary.json")]
    assert summary_key.startswith(f"{REPORTS_PREFIX}Detailed-Reports/{local_sync(lake).task_id()}/exec-")
    summary = json.loads(store.get_bytes(summary_key))
    assert summary["Status"] == "ERROR" and summary["FilesFailed"] == {"Transfer": 0, "Verify": 1}
    assert summary["Result"]["ErrorCode"] == "VerificationFailure"
    _, repaired, _ = run(local_sync(lake), lake)
    assert transferred(repaired) == ["docs/synthetic_inspection_2.pdf"]
    pdf = "docs/synthetic_inspection_2.pdf"
    assert store.get_bytes(SHARE_PREFIX + pdf) == (lake / SHARE_DIR / pdf).read_bytes()


# --- AwsDataSync against moto -----------------------------------------------------------------------------


def datasync_task(subdirectory: str = "/landing/datasync/share/", **options) -> str:
    client = boto3.client("datasync")
    source = client.create_location_smb(
        ServerHostname="share.maintenance.internal", Subdirectory="/maintenance", User="datasync",
        Password="x", AgentArns=["arn:aws:datasync:us-east-1:111222333444:agent/agent-0"],
    )["LocationArn"]
    destination = client.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{BUCKET}", Subdirectory=subdirectory,
        S3Config={"BucketAccessRoleArn": "arn:aws:iam::111222333444:role/datasync"},
    )["LocationArn"]
    return client.create_task(
        SourceLocationArn=source, DestinationLocationArn=destination, Name="share-to-lake",
        # PreserveDeletedFiles and OverwriteMode left to DataSync's defaults (PRESERVE, ALWAYS): what the lake expects.
        Options={"VerifyMode": "ONLY_FILES_TRANSFERRED", "TransferMode": "CHANGED", **options},
    )["TaskArn"]


@pytest.fixture
def s3_store(aws):
    return S3ObjectStore(bucket=BUCKET, region_name=REGION)


# The task report deploy/aws/lake_stacks/ingest.py configures; moto's DescribeTask leaves TaskReportConfig out.
REPORT_CONFIG = {
    "Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{BUCKET}", "Subdirectory": "landing/datasync/_reports/",
                           "BucketAccessRoleArn": "arn:aws:iam::111222333444:role/datasync"}},
    "OutputType": "STANDARD",
    "ReportLevel": "SUCCESSES_AND_ERRORS",
}


def with_report_config(aws, **changes) -> None:
    def describe_task(parsed, **_):
        parsed["TaskReportConfig"] = {**REPORT_CONFIG, **changes}

    aws.register("after-call.datasync.DescribeTask", describe_task)


def regular(size: int) -> dict:
    return {"Type": "Regular", "ContentSize": size, "Mtime": "2024-05-02T10:00:00Z", "Uid": 0, "Gid": 0,
            "Mode": "0644"}


def aws_task_report(store, execution_arn: str, transferred: list[dict], verified: list[dict]) -> str:
    """A standard SUCCESSES_AND_ERRORS report as DataSync writes it: under Detailed-Reports/<task id>/<execution
    id>/, a summary and a file per section, a section split in numbered parts. Returns the folder."""
    task_id, execution_id = execution_arn.split("/")[1], execution_arn.split("/")[-1]
    folder = f"{REPORTS_PREFIX}Detailed-Reports/{task_id}/{execution_id}/"
    summary = {"TaskExecutionId": execution_id, "AccountId": "111222333444", "Result": {"Status": "SUCCESS"},
               "FilesTransferred": len(transferred), "FilesVerified": len(verified)}
    store.put_bytes(f"{folder}{execution_id}.summary-v1.json", json.dumps(summary).encode())
    for section, entries in (("transferred", transferred), ("verified", verified)):
        for part, start in enumerate(range(0, len(entries), 2), start=1):
            body = {"TaskExecutionId": execution_id, section.capitalize(): entries[start : start + 2]}
            name = f"{execution_id}.files-{section}-v1-{part:05d}-0c6e6f1c5d3b0aa0.json"
            store.put_bytes(folder + name, json.dumps(body).encode())
    return folder


def transferred_entry(path: str, size: int, status="SUCCESS", **error) -> dict:
    return {"RelativePath": path, "SrcMetadata": regular(size), "Overwrite": "False",
            "TransferTimestamp": "2024-05-02T10:01:00Z", "TransferType": "CONTENT_AND_METADATA",
            "TransferStatus": status, **error}


def verified_entry(path: str, size: int, status="SUCCESS", **error) -> dict:
    return {"RelativePath": path, "SrcMetadata": regular(size), "DstMetadata": regular(size),
            "SrcChecksum": "SHA256:1f2e", "DstChecksum": "SHA256:1f2e", "VerifyTimestamp": "2024-05-02T10:02:00Z",
            "VerifyStatus": status, **error}


FOLDER_ENTRY = {"RelativePath": "/docs", "SrcMetadata": {"Type": "Directory"}, "TransferType": "METADATA",
                "TransferStatus": "SUCCESS", "TransferTimestamp": "2024-05-02T10:01:00Z"}


def test_aws_execution_is_followed_to_success_and_reports_the_objects_its_task_report_lists(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)
    s3_store.put_bytes(SHARE_PREFIX + "docs/old.pdf", b"%PDF-1.4 from an earlier execution")
    # Written during the execution by someone else: not in the report, so not what DataSync delivered.
    s3_store.put_bytes(SHARE_PREFIX + "docs/stray.pdf", b"%PDF-1.4 not from DataSync")

    def datasync_writes(parsed, **_):
        s3_store.put_bytes(SHARE_PREFIX + "docs/new.pdf", b"%PDF-1.4 new")
        aws_task_report(s3_store, parsed["TaskExecutionArn"], [FOLDER_ENTRY, transferred_entry("/docs/new.pdf", 12)],
                        [verified_entry("/docs/new.pdf", 12)])

    aws.register("after-call.datasync.StartTaskExecution", datasync_writes)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)

    report = sync.sync(dg.build_asset_context(), s3_store)

    assert [o.key for o in report.objects] == [SHARE_PREFIX + "docs/new.pdf"]
    assert report.details["status"] == "SUCCESS"
    execution_arn = report.details["execution_arn"]
    assert execution_arn.startswith(task_arn + "/execution/exec-")
    assert (report.details["report_transferred"], report.details["report_verified"]) == ("2", "1")
    assert report.details["report_errors"] == "0"
    task_id, execution_id = task_arn.split("/")[-1], execution_arn.split("/")[-1]
    assert report.details["task_report"] == s3_store.uri(report_folder(task_id, execution_id))
    assert boto3.client("datasync").describe_task(TaskArn=task_arn)["Status"] == "AVAILABLE"


def test_aws_execution_ending_success_with_failed_files_in_its_report_fails_naming_them(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)

    def datasync_writes(parsed, **_):
        denied = {"ErrorCode": "AccessDenied", "ErrorDetail": "Permission denied reading source file"}
        aws_task_report(
            s3_store, parsed["TaskExecutionArn"],
            [transferred_entry("/docs/a.pdf", 10), transferred_entry("/docs/locked.pdf", 0, "FAILED", **denied)],
            [verified_entry("/docs/a.pdf", 10, "FAILED", ErrorCode="ChecksumMismatch",
                            ErrorDetail="destination checksum differs")],
        )

    aws.register("after-call.datasync.StartTaskExecution", datasync_writes)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)

    with pytest.raises(RuntimeError) as failure:
        sync.sync(dg.build_asset_context(), s3_store)

    message = str(failure.value)
    assert "transfer and verification failed for 2 file(s)" in message
    assert "/docs/locked.pdf (transferred FAILED: AccessDenied: Permission denied reading source file)" in message
    assert "/docs/a.pdf (verified FAILED: ChecksumMismatch: destination checksum differs)" in message
    assert f"s3://{BUCKET}/{REPORTS_PREFIX}Detailed-Reports/{task_arn.split('/')[-1]}/exec-" in message


def test_aws_execution_without_its_task_report_fails_saying_where_it_was_expected(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)

    with pytest.raises(RuntimeError) as failure:
        sync.sync(dg.build_asset_context(), s3_store)

    message = str(failure.value)
    assert "ended SUCCESS but wrote no task report under" in message
    assert f"s3://{BUCKET}/{REPORTS_PREFIX}Detailed-Reports/{task_arn.split('/')[-1]}/exec-" in message
    assert "STANDARD report at level SUCCESSES_AND_ERRORS" in message


def test_aws_execution_waits_for_its_report_and_fails_when_datasync_could_not_write_it(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)
    seen = []

    def report_result(parsed, **_):
        if parsed["Status"] == "SUCCESS":
            seen.append(parsed["Status"])  # the first SUCCESS answer: report still being written
            parsed["ReportResult"] = {"Status": "PENDING"} if len(seen) == 1 else {
                "Status": "ERROR", "ErrorCode": "AccessDenied", "ErrorDetail": "cannot PutObject"}

    aws.register("after-call.datasync.DescribeTaskExecution", report_result)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)

    with pytest.raises(RuntimeError, match="could not write its task report: AccessDenied: cannot PutObject"):
        sync.sync(dg.build_asset_context(), s3_store)
    assert len(seen) == 2, "polled again while the report was PENDING"


@pytest.mark.parametrize("changes, shown", [
    ({"ReportLevel": "ERRORS_ONLY"}, "ReportLevel='ERRORS_ONLY' (expected 'SUCCESSES_AND_ERRORS')"),
    ({"OutputType": "SUMMARY_ONLY"}, "OutputType='SUMMARY_ONLY' (expected 'STANDARD')"),
    ({"Destination": {"S3": {**REPORT_CONFIG["Destination"]["S3"], "Subdirectory": "reports/"}}},
     f"expected s3://{BUCKET}/landing/datasync/_reports/"),
    ({"Overrides": {"Transferred": {"ReportLevel": "ERRORS_ONLY"}}}, "Overrides ['Transferred'] at ERRORS_ONLY"),
])
def test_aws_task_whose_report_the_lake_cannot_read_is_rejected_before_it_starts(aws, s3_store, changes, shown):
    task_arn = datasync_task()
    with_report_config(aws, **changes)
    started = []
    aws.register("before-call.datasync.StartTaskExecution", lambda **kwargs: started.append(kwargs))
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)
    with pytest.raises(RuntimeError, match="task report configuration does not match the lake") as failure:
        sync.sync(dg.build_asset_context(), s3_store)
    assert shown in str(failure.value)
    assert started == [], "no execution is started"


def test_one_reader_parses_the_local_report_and_datasyncs_layout_variants(lake):
    """The local stand-in's report and an AWS-shaped one (a summary-only folder, a section as a bare list in a
    file named after it) read the same way."""
    store, local, _ = run(local_sync(lake), lake)
    mine = read_task_report(store, local_sync(lake).task_id(), local.details["execution_id"])
    assert {k: len(v) for k, v in mine.entries.items()} == {"Transferred": 12, "Verified": 12}
    assert mine.summary["FilesTransferred"] == 12 and mine.errors() == []
    assert mine.transferred_keys() == {SHARE_PREFIX + n for n in SEEDED}

    task, execution = "task-0123456789abcdef0", "exec-0fedcba9876543210"
    summary_folder = f"{REPORTS_PREFIX}Summary-Reports/{task}/{execution}/"
    store.put_bytes(f"{summary_folder}{execution}.summary-v1.json", b'{"TaskExecutionId": "exec-0fedcba9876543210"}')
    detailed = report_folder(task, execution)
    skipped = [{"RelativePath": "/x.tmp", "SkippedStatus": "SUCCESS"},
               {"RelativePath": "/secret.pdf", "SkippedStatus": "FAILED", "ErrorCode": "PermissionDenied"}]
    store.put_bytes(f"{detailed}{execution}.files-skipped-v1-00001-abc.json", json.dumps(skipped).encode())
    theirs = read_task_report(store, task, execution)
    assert theirs.summary == {"TaskExecutionId": execution} and theirs.entries == {"Skipped": skipped}
    assert theirs.errors() == ["/secret.pdf (skipped FAILED: PermissionDenied)"]
    assert read_task_report(store, task, "exec-00000000000000000") is None


def test_aws_execution_that_ends_in_error_fails_naming_task_execution_and_error(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)

    def errored(params, **_):
        http = AWSResponse("https://datasync.us-east-1.amazonaws.com/", 200, {}, None)
        result = {"ErrorCode": "VerificationFailure", "ErrorDetail": "checksum mismatch on /docs/a.pdf"}
        execution_arn = json.loads(params["body"])["TaskExecutionArn"]
        return http, {"TaskExecutionArn": execution_arn, "Status": "ERROR", "Result": result}

    aws.register("before-call.datasync.DescribeTaskExecution", errored)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)

    with pytest.raises(RuntimeError) as failure:
        sync.sync(dg.build_asset_context(), s3_store)

    message = str(failure.value)
    assert f"DataSync task {task_arn} execution {task_arn}/execution/exec-" in message
    assert "ended ERROR: VerificationFailure: checksum mismatch on /docs/a.pdf" in message


def test_aws_execution_still_running_at_the_timeout_fails_naming_it(aws, s3_store):
    task_arn = datasync_task()
    with_report_config(aws)
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0, timeout_minutes=0)

    with pytest.raises(TimeoutError, match=f"DataSync task {task_arn} execution .* did not finish within 0"):
        sync.sync(dg.build_asset_context(), s3_store)


def test_aws_task_writing_outside_the_lake_landing_is_rejected_before_it_starts(aws, s3_store):
    task_arn = datasync_task(subdirectory="/exports/share/")

    with pytest.raises(RuntimeError, match="writes to s3://lake-datasync/+exports/share/, not the lake's"):
        AwsDataSync(task_arn=task_arn, region_name=REGION).sync(dg.build_asset_context(), s3_store)

    task = boto3.client("datasync").describe_task(TaskArn=task_arn)
    assert task["Status"] == "AVAILABLE" and task.get("CurrentTaskExecutionArn") is None  # never started


@pytest.mark.parametrize("options, shown", [
    ({"VerifyMode": "NONE"}, "VerifyMode='NONE' (expected 'ONLY_FILES_TRANSFERRED')"),
    ({"TransferMode": "ALL"}, "TransferMode='ALL' (expected 'CHANGED')"),
    # DataSync would delete from the lake what left the share: the lake keeps every file it received.
    ({"PreserveDeletedFiles": "REMOVE"}, "PreserveDeletedFiles='REMOVE' (expected 'PRESERVE')"),
])
def test_aws_task_with_other_options_than_the_emulated_ones_is_rejected_before_it_starts(aws, s3_store, options, shown):
    task_arn = datasync_task(**options)
    started = []
    aws.register("before-call.datasync.StartTaskExecution", lambda **kwargs: started.append(kwargs))
    sync = AwsDataSync(task_arn=task_arn, region_name=REGION, poll_seconds=0)
    with pytest.raises(RuntimeError, match="options do not match the lake") as failure:
        sync.sync(dg.build_asset_context(), s3_store)
    assert shown in str(failure.value)
    assert started == [], "no execution is started"
