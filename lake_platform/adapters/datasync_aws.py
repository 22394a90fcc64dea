"""AWS DataSync: start the share's task execution, wait for it, read its task report, report what it wrote.

The task (source: the NFS/SMB/EFS share; destination: an S3 location at `landing/datasync/share/` of the
lake bucket) is created by the platform's infrastructure (deploy/aws/) with the options LocalDataSync emulates
(TransferMode CHANGED, VerifyMode ONLY_FILES_TRANSFERRED, PreserveDeletedFiles PRESERVE) and a standard task
report at level SUCCESSES_AND_ERRORS into `landing/datasync/_reports/` of the lake bucket. DataSync writes into
S3 itself; this resource checks the destination is the lake's and the options and the report configuration are
those (OPTIONS, REPORT_CONFIG; an option the task leaves out counts as DataSync's default), then starts an
execution and follows it to SUCCESS or ERROR. After SUCCESS it waits for the report (DescribeTaskExecution's
ReportResult), reads it from the bucket with the reader LocalDataSync's own report goes through
(`datasync.read_task_report`), puts its totals in the LandingReport, and fails naming every file whose
transfer, verification, skip or deletion the report marks as an error: an execution can end SUCCESS with
failed files (DescribeTaskExecution's FilesFailed counts them, in Enhanced mode), and those are not in landing.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lake_platform.adapters.aws_ingest import AwsService
from lake_platform.adapters.datasync import (
    OPTIONS,
    REPORTS_PREFIX,
    SHARE_PREFIX,
    FileShareSync,
    TaskReport,
    read_task_report,
    report_folder,
)
from lake_platform.adapters.ingest import LandingReport
from lake_platform.adapters.storage import ObjectStore, S3ObjectStore

# DataSync's default for an option DescribeTask leaves out (the DataSync API's Options reference).
OPTION_DEFAULTS = {
    "TransferMode": "CHANGED",
    "VerifyMode": "POINT_IN_TIME_CONSISTENT",
    "PreserveDeletedFiles": "PRESERVE",
    "OverwriteMode": "ALWAYS",
}
# The task report the lake reads (deploy/aws/lake_stacks/ingest.py configures it): every file, its result.
REPORT_CONFIG = {"OutputType": "STANDARD", "ReportLevel": "SUCCESSES_AND_ERRORS"}
COUNTERS = ("FilesTransferred", "FilesVerified", "FilesSkipped", "FilesDeleted", "BytesTransferred", "BytesWritten")


class AwsDataSync(FileShareSync, AwsService):
    """Runs the DataSync task that copies the maintenance share into `landing/datasync/share/`."""

    task_arn: str = Field(description="ARN of the DataSync task (share -> lake bucket).")
    poll_seconds: float = Field(default=10.0, description="Seconds between execution status polls.")

    def sync(self, context, store: ObjectStore) -> LandingReport:
        if not isinstance(store, S3ObjectStore):
            raise TypeError("AwsDataSync writes into S3: the lake store must be an S3ObjectStore")
        client = self._client("datasync")
        task = client.describe_task(TaskArn=self.task_arn)
        _check_destination(client, task, store)
        _check_options(task)
        _check_report_config(task, store)
        execution_arn = client.start_task_execution(TaskArn=self.task_arn)["TaskExecutionArn"]
        context.log.info(f"started DataSync task {self.task_arn}: execution {execution_arn}")
        execution = self._poll(
            lambda: client.describe_task_execution(TaskExecutionArn=execution_arn),
            lambda e: _finished(e, self.task_arn),
            f"DataSync task {self.task_arn} execution {execution_arn}",
        )
        report = _task_report(store, self.task_arn, execution)
        report.raise_for_errors()
        failed = {k: v for k, v in (execution.get("FilesFailed") or {}).items() if v}
        if failed:  # counted by DataSync but named by no report entry
            raise RuntimeError(
                f"DataSync task {self.task_arn} execution {execution_arn} ended SUCCESS with failed files"
                f" {failed} (FilesFailed) that its task report ({report.location}) does not name"
            )
        written = report.transferred_keys()
        context.log.info(
            f"DataSync {execution_arn}: task report {report.location}: "
            + ", ".join(f"{len(v)} {k.lower()}" for k, v in report.entries.items())
        )
        return LandingReport(
            objects=[o for o in store.list(SHARE_PREFIX) if o.key in written],
            details={
                "task_arn": self.task_arn,
                "execution_arn": execution_arn,
                "status": execution["Status"],
                # moto (the tests) reports no counters; the service always does.
                **{_snake(k): str(execution[k]) for k in COUNTERS if k in execution},
                **report.details(),
            },
        )


def _finished(execution: dict[str, Any], task_arn: str) -> bool:
    """SUCCESS, once DataSync has also finished writing the task report (ReportResult no longer PENDING)."""
    if execution["Status"] == "ERROR":
        raise RuntimeError(
            f"DataSync task {task_arn} execution {execution['TaskExecutionArn']} ended ERROR: "
            + _reason(execution.get("Result", {}))
        )
    return execution["Status"] == "SUCCESS" and (execution.get("ReportResult") or {}).get("Status") != "PENDING"


def _reason(result: dict[str, Any]) -> str:
    return ": ".join(filter(None, (result.get("ErrorCode"), result.get("ErrorDetail")))) or "no error detail"


def _task_report(store: S3ObjectStore, task_arn: str, execution: dict[str, Any]) -> TaskReport:
    """The execution's task report from the lake bucket, or an error saying why it is not there."""
    execution_arn = execution["TaskExecutionArn"]
    task_id, execution_id = task_arn.rsplit("/", 1)[-1], execution_arn.rsplit("/", 1)[-1]
    result = execution.get("ReportResult") or {}  # moto (the tests) reports none; the service does
    if result.get("Status") == "ERROR":
        raise RuntimeError(
            f"DataSync task {task_arn} execution {execution_arn} ended SUCCESS but DataSync could not write its"
            f" task report: {_reason(result)}; check that its role may write {store.uri(REPORTS_PREFIX)}"
        )
    report = read_task_report(store, task_id, execution_id)
    if report is None:
        raise RuntimeError(
            f"DataSync task {task_arn} execution {execution_arn} ended SUCCESS but wrote no task report under"
            f" {store.uri(report_folder(task_id, execution_id))}: the task's TaskReportConfig must send a"
            f" {REPORT_CONFIG['OutputType']} report at level {REPORT_CONFIG['ReportLevel']} to"
            f" {store.uri(REPORTS_PREFIX)} (deploy/aws/lake_stacks/ingest.py)"
        )
    return report


def _check_report_config(task: dict[str, Any], store: S3ObjectStore) -> None:
    """The task must write a standard report of every file's result where `_task_report` reads it."""
    config = task.get("TaskReportConfig") or {}
    s3 = (config.get("Destination") or {}).get("S3") or {}
    wrong = []
    if not s3.get("S3BucketArn", "").endswith(f":::{store.bucket}") or (
        (s3.get("Subdirectory") or "").strip("/") != REPORTS_PREFIX.strip("/")
    ):
        where = f"{s3.get('S3BucketArn', 'no bucket')} {s3.get('Subdirectory', '')!r}" if s3 else "none"
        wrong.append(f"destination {where} (expected {store.uri(REPORTS_PREFIX)})")
    wrong += [f"{k}={config.get(k)!r} (expected {v!r})" for k, v in REPORT_CONFIG.items() if config.get(k) != v]
    lowered = [k for k, o in (config.get("Overrides") or {}).items() if (o or {}).get("ReportLevel") == "ERRORS_ONLY"]
    if lowered:
        wrong.append(f"Overrides {lowered} at ERRORS_ONLY (the lake reads every file's result)")
    if wrong:
        raise RuntimeError(
            f"DataSync task {task['TaskArn']} task report configuration does not match the lake: " + "; ".join(wrong)
        )


def _check_destination(client, task: dict[str, Any], store: S3ObjectStore) -> None:
    """The task must write where raw/share reads: `s3://<lake bucket>/landing/datasync/share/`."""
    location = client.describe_location_s3(LocationArn=task["DestinationLocationArn"])
    bucket, _, folder = location["LocationUri"].removeprefix("s3://").partition("/")
    if bucket != store.bucket or folder.strip("/") != SHARE_PREFIX.strip("/"):
        raise RuntimeError(
            f"DataSync task {task['TaskArn']} writes to {location['LocationUri']}, not the lake's "
            f"{store.uri(SHARE_PREFIX)}: point its destination location there"
        )


def _check_options(task: dict[str, Any]) -> None:
    """The task must copy as LocalDataSync emulates (OPTIONS): only changed files, each verified after its transfer,
    a file deleted on the share kept in the lake, a changed file overwritten."""
    options = task.get("Options") or {}
    wrong = [
        f"{k}={options.get(k, OPTION_DEFAULTS.get(k))!r} (expected {v!r})"
        for k, v in OPTIONS.items() if options.get(k, OPTION_DEFAULTS.get(k)) != v
    ]
    if wrong:
        raise RuntimeError(f"DataSync task {task['TaskArn']} options do not match the lake: " + "; ".join(wrong))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
