"""AWS DataSync: start the share's task execution, wait for it, report what it wrote into landing.

The task (source: the NFS/SMB/EFS share; destination: an S3 location at `landing/datasync/share/` of the
lake bucket) is created by the platform's infrastructure with the options LocalDataSync emulates
(TransferMode CHANGED, VerifyMode ONLY_FILES_TRANSFERRED, PreserveDeletedFiles PRESERVE) and, if wanted, a
task report into `landing/datasync/_reports/` (deploy/aws/ creates it; not read yet). DataSync writes into S3
itself; this resource checks the destination is the lake's and the options are those (OPTIONS; an option the task
leaves out counts as DataSync's default), then starts an execution and follows it to SUCCESS or ERROR.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import Field

from lake_platform.adapters.aws_ingest import AwsService
from lake_platform.adapters.datasync import OPTIONS, SHARE_PREFIX, FileShareSync
from lake_platform.adapters.ingest import LandingReport
from lake_platform.adapters.storage import ObjectStore, S3ObjectStore

# DataSync's default for an option DescribeTask leaves out (the DataSync API's Options reference).
OPTION_DEFAULTS = {
    "TransferMode": "CHANGED",
    "VerifyMode": "POINT_IN_TIME_CONSISTENT",
    "PreserveDeletedFiles": "PRESERVE",
    "OverwriteMode": "ALWAYS",
}
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
        # S3's LastModified has whole seconds: objects written in the execution's first second count too.
        started = datetime.now(timezone.utc).replace(microsecond=0)
        execution_arn = client.start_task_execution(TaskArn=self.task_arn)["TaskExecutionArn"]
        context.log.info(f"started DataSync task {self.task_arn}: execution {execution_arn}")
        execution = self._poll(
            lambda: client.describe_task_execution(TaskExecutionArn=execution_arn),
            lambda e: _finished(e, self.task_arn),
            f"DataSync task {self.task_arn} execution {execution_arn}",
        )
        since = execution.get("StartTime") or started
        return LandingReport(
            objects=[o for o in store.list(SHARE_PREFIX) if o.last_modified >= since],
            details={
                "task_arn": self.task_arn,
                "execution_arn": execution_arn,
                "status": execution["Status"],
                # moto (the tests) reports no counters; the service always does.
                **{_snake(k): str(execution[k]) for k in COUNTERS if k in execution},
            },
        )


def _finished(execution: dict[str, Any], task_arn: str) -> bool:
    if execution["Status"] == "ERROR":
        result = execution.get("Result", {})
        reason = ": ".join(filter(None, (result.get("ErrorCode"), result.get("ErrorDetail")))) or "no error detail"
        raise RuntimeError(
            f"DataSync task {task_arn} execution {execution['TaskExecutionArn']} ended ERROR: {reason}"
        )
    return execution["Status"] == "SUCCESS"


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
