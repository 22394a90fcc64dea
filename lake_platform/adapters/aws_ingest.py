"""AWS implementations of the ingest services: DMS replication and Data Exchange exports into landing.

Both write into the lake bucket themselves; these resources start or observe the service, fail with a
message naming what went wrong, and report what is in landing afterwards (see `ingest.py`).
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg
from pydantic import Field

from lake_platform.adapters.ingest import DataExchange, DmsReplication, LandingReport
from lake_platform.adapters.storage import ObjectStore, S3ObjectStore

DMS_FAILED = {"failed", "failed-move"}
DMS_STARTABLE = {"ready", "stopped"}
# The S3 target settings whose output LocalDms emulates and raw/clean read (README, principle 2); AwsDms refuses a
# task whose target endpoint differs, and the CDK app (deploy/aws/) creates the endpoint from this dict.
DMS_TARGET_SETTINGS = {
    "DataFormat": "parquet",
    "IncludeOpForFullLoad": True,  # full-load rows carry Op = I, as CDC rows carry I/U/D
    "TimestampColumnName": "dms_commit_ts",
    # Full-load rows carry the task's start time, not their transfer time (AWS's default): a change committed while
    # the full load runs then sorts after the snapshot row it changes, instead of losing to it.
    "UseTaskStartTimeForFullLoadTimestamp": True,
    "DatePartitionEnabled": False,  # CDC files directly under <schema>/<table>/, as the raw copy lists them
    "CdcInsertsOnly": False,  # updates and deletes too (Op U/D), not inserts only
    "PreserveTransactions": False,  # one row per change, not transaction files under a CdcPath
}
# What DescribeEndpoints means by a setting it leaves out: AWS's default for it.
DMS_SETTING_DEFAULTS = {
    "IncludeOpForFullLoad": False,
    "UseTaskStartTimeForFullLoadTimestamp": False,
    "DatePartitionEnabled": False,
    "CdcInsertsOnly": False,
    "PreserveTransactions": False,
}


class AwsService(dg.ConfigurableResource):
    """Region, endpoint and status polling shared by the AWS ingest services."""

    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests).")
    poll_seconds: float = Field(default=15.0, description="Seconds between status polls.")
    timeout_minutes: int = Field(default=120, description="Give up waiting after this long.")

    def _client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region_name, endpoint_url=self.endpoint_url)

    def _poll(self, fetch, done, what: str):
        """Call `fetch()` until `done(result)`; `done` raises on a failed state."""
        deadline = time.monotonic() + self.timeout_minutes * 60
        while True:
            result = fetch()
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not finish within {self.timeout_minutes} minutes")
            time.sleep(self.poll_seconds)


class AwsDms(DmsReplication, AwsService):
    """Observes (and optionally starts) the DMS task replicating the operations database into landing.

    The task's S3 target endpoint must write Parquet (DMS_TARGET_SETTINGS) to `<landing_prefix>/` of the
    lake bucket; DMS lays out `<schema>/<table>/LOAD*.parquet` (full load) and timestamped CDC files there,
    which is what the report lists, with rows per table from the task's table statistics.
    """

    replication_task_arn: str = Field(description="ARN of the DMS replication task.")
    start_if_stopped: bool = Field(
        default=False, description="Start a task that is ready, or resume one that is stopped."
    )
    landing_prefix: str = Field(default="landing/dms", description="Where the task's S3 target writes.")

    def replicate(self, context, store):
        dms = self._client("dms")
        task = self._task(dms)
        _check_target(dms, task, store, self.landing_prefix)
        if task["Status"] in DMS_STARTABLE and self.start_if_stopped:
            # Resuming continues CDC where it stopped; a task that never ran needs a fresh start.
            started_before = bool(task.get("ReplicationTaskStartDate"))
            start_type = "resume-processing" if started_before else "start-replication"
            context.log.info(f"starting DMS task {self.replication_task_arn} ({start_type})")
            dms.start_replication_task(
                ReplicationTaskArn=self.replication_task_arn, StartReplicationTaskType=start_type
            )
            task = self._task(dms)
        elif task["Status"] == "ready":
            raise RuntimeError(
                f"DMS task {self.replication_task_arn} has never run: start it, or set start_if_stopped"
            )
        what = f"DMS task {self.replication_task_arn}"
        task = self._poll(lambda: self._task(dms), _full_load_done, what)
        tables = _table_statistics(dms, self.replication_task_arn)
        _raise_for_errored_tables(task, tables)
        objects = [
            o
            for t in tables
            for o in store.list(f"{self.landing_prefix}/{t['SchemaName']}/{t['TableName']}/")
        ]
        return LandingReport(
            objects=objects,
            rows={t["TableName"]: _rows(t) for t in tables},
            details=_task_details(task),
        )

    def pending(self, store):
        """A stopped task that a landing run would resume (with `start_if_stopped`). A running task writes
        its CDC files itself, which the landing sensor sees; a failed one raises, naming the reason."""
        task = self._task(self._client("dms"))
        if task["Status"] in DMS_STARTABLE and self.start_if_stopped:
            return [f"task {task['ReplicationTaskArn']} is {task['Status']} ({task.get('StopReason', 'never started')})"]
        return []

    def _task(self, dms) -> dict[str, Any]:
        tasks = dms.describe_replication_tasks(
            Filters=[{"Name": "replication-task-arn", "Values": [self.replication_task_arn]}]
        )["ReplicationTasks"]
        if not tasks:
            raise LookupError(f"DMS task {self.replication_task_arn} does not exist")
        task = tasks[0]
        if task["Status"] in DMS_FAILED:
            reason = task.get("LastFailureMessage") or task.get("StopReason") or "no reason given"
            raise RuntimeError(f"DMS task {self.replication_task_arn} is {task['Status']}: {reason}")
        return task


def _full_load_done(task: dict[str, Any]) -> bool:
    """Landing holds a complete full load (or the task only replicates changes)."""
    if task["Status"] == "stopped":
        return True
    progress = task.get("ReplicationTaskStats", {}).get("FullLoadProgressPercent", 0)
    return task["Status"] == "running" and (task.get("MigrationType") == "cdc" or progress >= 100)


def _check_target(dms, task: dict[str, Any], store: ObjectStore, landing_prefix: str) -> None:
    endpoint = dms.describe_endpoints(
        Filters=[{"Name": "endpoint-arn", "Values": [task["TargetEndpointArn"]]}]
    )["Endpoints"][0]
    s3 = endpoint.get("S3Settings") or {}
    bucket, folder = s3.get("BucketName"), (s3.get("BucketFolder") or "").strip("/")
    wrong = [
        f"{k}={s3.get(k, DMS_SETTING_DEFAULTS.get(k))!r} (expected {v!r})"
        for k, v in DMS_TARGET_SETTINGS.items() if s3.get(k, DMS_SETTING_DEFAULTS.get(k)) != v
    ]
    if folder != landing_prefix or (isinstance(store, S3ObjectStore) and bucket != store.bucket):
        wrong.insert(0, f"writes to s3://{bucket}/{folder}/, not {store.uri(landing_prefix)}/")
    if wrong:
        raise RuntimeError(
            f"the S3 target endpoint of DMS task {task['ReplicationTaskArn']} does not match the lake: "
            + "; ".join(wrong)
        )


def _table_statistics(dms, task_arn: str) -> list[dict[str, Any]]:
    pages = dms.get_paginator("describe_table_statistics").paginate(ReplicationTaskArn=task_arn)
    return [t for page in pages for t in page["TableStatistics"]]


def _raise_for_errored_tables(task: dict[str, Any], tables: list[dict[str, Any]]) -> None:
    errored = [
        f"{t['SchemaName']}.{t['TableName']}" for t in tables if t.get("TableState") == "Table error"
    ]
    count = task.get("ReplicationTaskStats", {}).get("TablesErrored", 0)
    if errored or count:
        raise RuntimeError(
            f"DMS task {task['ReplicationTaskArn']} has {max(count, len(errored))} errored table(s): "
            f"{', '.join(errored) or 'see the task in the DMS console'}; reload them before ingesting"
        )


def _rows(table: dict[str, Any]) -> int:
    # Each full-load row and each change is one line in the task's S3 output.
    return sum(table.get(k, 0) for k in ("FullLoadRows", "Inserts", "Updates", "Deletes"))


def _task_details(task: dict[str, Any]) -> dict[str, str]:
    stats = task.get("ReplicationTaskStats", {})
    return {
        "task_arn": task["ReplicationTaskArn"],
        "status": task["Status"],
        "full_load_percent": str(stats.get("FullLoadProgressPercent", "")),
        "tables_loaded": str(stats.get("TablesLoaded", "")),
        "tables_errored": str(stats.get("TablesErrored", "")),
    }


class AwsDataExchange(DataExchange, AwsService):
    """Exports each new revision of an entitled data set to `landing/data_exchange/<data_set>/<revision id>/`.

    A revision counts as exported when its folder exists in landing; an export that fails has its
    partial folder removed, so the next run exports that revision again.
    """

    data_set_id: str = Field(description="Id of the entitled Data Exchange data set.")
    data_set: str = Field(default="weather", description="The data set's folder name in landing.")
    poll_seconds: float = Field(default=10.0, description="Seconds between export job polls.")

    def export_new_revisions(self, context, store):
        if not isinstance(store, S3ObjectStore):
            raise TypeError("AwsDataExchange exports into S3: the lake store must be an S3ObjectStore")
        prefix = f"landing/data_exchange/{self.data_set}"
        exported = {o.key[len(prefix) + 1 :].split("/", 1)[0] for o in store.list(f"{prefix}/")}
        dx = self._client("dataexchange")
        revisions = self._revisions(dx)
        jobs = {}
        report = LandingReport()
        for revision in (r["Id"] for r in revisions if r["Id"] not in exported):
            jobs[revision] = self._export(dx, store, prefix, revision)
            context.log.info(f"exported revision {revision} of {self.data_set} (job {jobs[revision]})")
            report.objects.extend(store.list(f"{prefix}/{revision}/"))
        report.details = {
            "data_set": self.data_set,
            "revisions_available": str(len(revisions)),
            "export_jobs": ", ".join(f"{revision}: {job}" for revision, job in jobs.items()),
        }
        return report

    def pending(self, store):
        """Finalized revisions of the data set whose folder is not in landing yet: what an export would do."""
        prefix = f"landing/data_exchange/{self.data_set}"
        exported = {o.key[len(prefix) + 1 :].split("/", 1)[0] for o in store.list(f"{prefix}/")}
        return [r["Id"] for r in self._revisions(self._client("dataexchange")) if r["Id"] not in exported]

    def _revisions(self, dx) -> list[dict[str, Any]]:
        """Finalized, unrevoked revisions, oldest first (only finalized revisions can be exported)."""
        pages = dx.get_paginator("list_data_set_revisions").paginate(DataSetId=self.data_set_id)
        revisions = [r for page in pages for r in page["Revisions"]]
        usable = [r for r in revisions if r.get("Finalized") and not r.get("Revoked")]
        return sorted(usable, key=lambda r: r["CreatedAt"])

    def _export(self, dx, store: S3ObjectStore, prefix: str, revision_id: str) -> str:
        job_id = dx.create_job(
            Type="EXPORT_REVISIONS_TO_S3",
            Details={
                "ExportRevisionsToS3": {
                    "DataSetId": self.data_set_id,
                    "RevisionDestinations": [
                        {
                            "Bucket": store.bucket,
                            "KeyPattern": f"{prefix}/${{Revision.Id}}/${{Asset.Name}}",
                            "RevisionId": revision_id,
                        }
                    ],
                    # The exported objects: SSE-KMS with the store's key (none: the bucket's default applies).
                    **(
                        {"Encryption": {"Type": "aws:kms", "KmsKeyArn": store.kms_key_id}}
                        if store.kms_key_id else {}
                    ),
                }
            },
        )["Id"]
        dx.start_job(JobId=job_id)
        try:
            self._poll(lambda: dx.get_job(JobId=job_id), _export_done, f"Data Exchange job {job_id}")
        except Exception as error:
            store.delete_prefix(f"{prefix}/{revision_id}/")
            raise RuntimeError(
                f"exporting revision {revision_id} of data set {self.data_set_id} failed "
                f"(Data Exchange job {job_id}): {error}"
            ) from error
        return job_id


def _export_done(job: dict[str, Any]) -> bool:
    if job["State"] in ("ERROR", "CANCELLED", "TIMED_OUT"):
        errors = "; ".join(f"{e.get('Code')}: {e.get('Message')}" for e in job.get("Errors", []))
        raise RuntimeError(f"the job ended {job['State']}" + (f": {errors}" if errors else ""))
    return job["State"] == "COMPLETED"
