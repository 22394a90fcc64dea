"""AWS DataSync copying a file share into landing; locally, a sync with DataSync's semantics.

`LocalDataSync` behaves as a task with `TransferMode=CHANGED`, `VerifyMode=ONLY_FILES_TRANSFERRED`,
`PreserveDeletedFiles=PRESERVE` and `OverwriteMode=ALWAYS`, copying `share_dir` to `landing/datasync/share/`:
- only new or changed files are transferred: a file whose size and mtime match what the last execution
  transferred is skipped without being read; one whose metadata changed is checksummed and skipped if its
  content did not (a `touch`);
- each transferred file is read back from landing and its SHA-256 compared with the source's; a mismatch
  fails the execution naming the file (as DataSync, the object stays as written and the next execution
  transfers it again, since its checksum no longer matches);
- include / exclude filters use DataSync's syntax (`|`-separated patterns, `*` wildcard, `/x` anchored at
  the share's root and matching the folder `x` and everything in it);
- a file deleted from the share stays in landing;
- each execution writes a standard task report at level SUCCESSES_AND_ERRORS where DataSync writes one
  (`landing/datasync/_reports/Detailed-Reports/<task id>/<execution id>/`): a summary with the counters of
  DescribeTaskExecution (FilesTransferred, FilesVerified, …) and one file per section (Transferred, Verified,
  Skipped), an entry per file with its `RelativePath` and its result (`TransferStatus`, `VerifyStatus`, …:
  `SUCCESS`, else an error with `ErrorCode`/`ErrorDetail`). `read_task_report` parses it, and the report
  AwsDataSync reads from the bucket after each execution, the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from pydantic import Field

from lake_platform.adapters.ingest import LandingReport
from lake_platform.adapters.storage import ObjectInfo, ObjectStore, replace_atomically

SHARE_PREFIX = "landing/datasync/share/"
REPORTS_PREFIX = "landing/datasync/_reports/"  # the task report's destination (TaskReportConfig Subdirectory)
DETAILED_REPORTS = "Detailed-Reports"  # a STANDARD report's folder under it; SUMMARY_ONLY: Summary-Reports
SUMMARY_REPORTS = "Summary-Reports"
REPORT_SECTIONS = ("Transferred", "Verified", "Skipped", "Deleted")
OPTIONS = {
    "TransferMode": "CHANGED",
    "VerifyMode": "ONLY_FILES_TRANSFERRED",
    "PreserveDeletedFiles": "PRESERVE",
    "OverwriteMode": "ALWAYS",
}


class FileShareSync(dg.ConfigurableResource):
    """AWS DataSync copying the maintenance file share (NFS/SMB/EFS) into `landing/datasync/share/`."""

    def sync(self, context: dg.AssetExecutionContext, store: ObjectStore) -> LandingReport:
        raise NotImplementedError


def patterns(filters: list[str]) -> list[str]:
    """The patterns of DataSync filter strings (`/docs*|*.tmp` holds two)."""
    return [p.strip() for f in filters for p in f.split("|") if p.strip()]


def matches(pattern: str, relative: str) -> bool:
    """Whether a DataSync pattern selects `relative` (a `/`-separated path under the share), itself or
    through one of its folders: `/docs` selects `docs/a.pdf`, `*.tmp` selects `a/b.tmp`."""
    regex = re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern.rstrip("/") or "/"))
    parts = relative.strip("/").split("/")
    return any(regex.fullmatch("/" + "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def selected(relative: str, include: list[str], exclude: list[str]) -> bool:
    included = not include or any(matches(p, relative) for p in include)
    return included and not any(matches(p, relative) for p in exclude)


@dataclass
class Execution:
    """What one execution did, file by file: the task report's content."""

    execution_id: str
    started: datetime
    transferred: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    verified: list[dict] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # in landing, deleted from the share (PreserveDeletedFiles)

    @property
    def failed(self) -> list[dict]:
        return [v for v in self.verified if v["VerifyStatus"] != "SUCCESS"]

    @property
    def bytes_transferred(self) -> int:
        return sum(t["SrcMetadata"]["ContentSize"] for t in self.transferred)


class LocalDataSync(FileShareSync):
    """Syncs a local share directory into landing with DataSync's semantics (see the module docstring)."""

    share_dir: str = Field(description="The file share: a local directory (the source location).")
    include: list[str] = Field(default=[], description="DataSync include filters, e.g. `/docs*|/images`.")
    exclude: list[str] = Field(default=[], description="DataSync exclude filters, e.g. `*.tmp|*/scratch`.")
    state_path: str = Field(description="JSON file: size, mtime and checksum of each file last transferred.")

    def sync(self, context, store: ObjectStore) -> LandingReport:
        include, exclude = patterns(self.include), patterns(self.exclude)
        wildcards = [p for p in include if "*" in p[:-1]]
        if wildcards:  # DataSync rejects these too: include filters take `*` only as the last character
            raise ValueError(f"include pattern(s) {wildcards} have `*` before the end, which DataSync rejects")
        share = Path(self.share_dir)
        if not share.is_dir():
            raise FileNotFoundError(f"the file share {share} does not exist (locally, `lake seed` creates it)")
        run = Execution(f"exec-{uuid.uuid4().hex[:17]}", datetime.now(timezone.utc))
        state = self._state()
        landed = {o.key: o for o in store.list(SHARE_PREFIX)}
        files = {p.relative_to(share).as_posix(): p for p in sorted(share.rglob("*")) if p.is_file()}
        sources = {relative: p for relative, p in files.items() if selected(relative, include, exclude)}
        for relative, path in sources.items():
            self._sync_file(store, run, state, relative, path, landed.get(SHARE_PREFIX + relative))
        in_landing = {k[len(SHARE_PREFIX) :] for k in landed}
        run.kept = sorted(r for r in in_landing - sources.keys() if selected(r, include, exclude))
        self._save(state)
        destination = store.uri(SHARE_PREFIX)
        task_id = self.task_id()
        write_task_report(store, run, task_id, self.share_dir, destination, self.include, self.exclude)
        report = read_task_report(store, task_id, run.execution_id)  # as AwsDataSync reads DataSync's
        if report is None:  # written just above: only a store that lost the writes gets here
            raise RuntimeError(f"DataSync execution {run.execution_id}: its task report was not written")
        report.raise_for_errors()
        context.log.info(
            f"DataSync {run.execution_id}: {len(run.transferred)} transferred and verified,"
            f" {len(run.skipped)} unchanged, {len(run.kept)} kept after deletion from the share"
        )
        written = report.transferred_keys()
        return LandingReport(
            objects=[o for o in store.list(SHARE_PREFIX) if o.key in written],
            details={
                "execution_id": run.execution_id,
                "files_transferred": str(len(run.transferred)),
                "files_verified": str(len(run.verified) - len(run.failed)),
                "files_skipped": str(len(run.skipped)),
                "files_kept_after_source_deletion": str(len(run.kept)),
                "bytes_transferred": str(run.bytes_transferred),
                **report.details(),
            },
        )

    def task_id(self) -> str:
        """The local task's id, shaped like DataSync's (`task-` + 17 hex), stable for a share."""
        return f"task-{hashlib.sha256(str(Path(self.share_dir).resolve()).encode()).hexdigest()[:17]}"

    def _sync_file(self, store, run: Execution, state: dict, relative: str, path: Path, dest: ObjectInfo | None):
        stat = path.stat()
        meta = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        source = {"Type": "Regular", "ContentSize": stat.st_size, "Mtime": _iso(stat.st_mtime_ns)}
        entry = {"RelativePath": "/" + relative, "SrcMetadata": source}
        record = state["files"].get(relative)
        skipped = {**entry, "SkippedStatus": "SUCCESS", "SkippedTimestamp": _now()}
        if dest is not None and record and dest.etag == record["etag"] and meta.items() <= record.items():
            run.skipped.append({**skipped, "SkippedReason": "UNCHANGED"})  # size and mtime as last transferred
            return
        body = path.read_bytes()
        checksum = hashlib.sha256(body).hexdigest()
        if dest is not None and checksum == _landed_checksum(store, record, dest, len(body)):
            # Metadata changed (a `touch`), content did not: DataSync moves no data.
            state["files"][relative] = {**meta, "sha256": checksum, "etag": dest.etag}
            run.skipped.append({**skipped, "SkippedReason": "CONTENT_UNCHANGED"})
            return
        key = SHARE_PREFIX + relative
        store.put_bytes(key, body)
        run.transferred.append(
            {**entry, "TransferType": "CONTENT", "TransferStatus": "SUCCESS", "TransferTimestamp": _now()}
        )
        written = hashlib.sha256(store.get_bytes(key)).hexdigest()
        verify = {
            **entry, "SrcChecksum": f"sha256:{checksum}", "DstChecksum": f"sha256:{written}", "VerifyTimestamp": _now()
        }
        if written != checksum:
            detail = f"checksum mismatch: source sha256 {checksum[:12]}…, landing {written[:12]}…"
            run.verified.append({**verify, "VerifyStatus": "FAILED", "ErrorCode": "ChecksumMismatch",
                                 "ErrorDetail": detail})
            state["files"].pop(relative, None)  # transferred again by the next execution
            return
        run.verified.append({**verify, "VerifyStatus": "SUCCESS"})
        etag = next(o.etag for o in store.list(key) if o.key == key)
        state["files"][relative] = {**meta, "sha256": checksum, "etag": etag}

    def _state(self) -> dict:
        path = Path(self.state_path)
        return json.loads(path.read_text()) if path.exists() else {"files": {}}

    def _save(self, state: dict) -> None:
        replace_atomically(Path(self.state_path), lambda tmp: tmp.write_text(json.dumps(state, indent=1)))


def report_folder(task_id: str, execution_id: str, kind: str = DETAILED_REPORTS) -> str:
    """Where DataSync writes an execution's task report in the report destination: `<prefix>/<kind>/<task id>/
    <execution id>/`, kind `Detailed-Reports` (a standard report) or `Summary-Reports` (summary only)."""
    return f"{REPORTS_PREFIX}{kind}/{task_id}/{execution_id}/"


def write_task_report(
    store: ObjectStore, run: Execution, task_id: str, source: str, destination: str, include, exclude
) -> str:
    """The execution's standard task report, where DataSync writes one: the summary (DescribeTaskExecution's
    counters) and one file per section. Returns the folder."""
    failed = len(run.failed)
    error = {"ErrorCode": "VerificationFailure", "ErrorDetail": f"{failed} file(s) failed verification"}
    summary = {
        "TaskExecutionId": run.execution_id,
        "SourceLocation": source,
        "DestinationLocation": destination,
        "Status": "ERROR" if failed else "SUCCESS",
        "StartTime": run.started.isoformat(),
        "EndTime": _now(),
        "Options": OPTIONS,
        "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": f} for f in include],
        "Excludes": [{"FilterType": "SIMPLE_PATTERN", "Value": f} for f in exclude],
        "ReportLevel": "SUCCESSES_AND_ERRORS",
        "EstimatedFilesToTransfer": len(run.transferred),
        "FilesTransferred": len(run.transferred),
        "FilesSkipped": len(run.skipped),
        "FilesVerified": len(run.verified) - failed,
        "FilesDeleted": 0,
        "FilesFailed": {"Transfer": 0, "Verify": failed},
        "BytesTransferred": run.bytes_transferred,
        "BytesWritten": run.bytes_transferred,
        "Result": {
            "PrepareStatus": "SUCCESS",
            "TransferStatus": "SUCCESS",
            "VerifyStatus": "ERROR" if failed else "SUCCESS",
            **(error if failed else {}),
        },
    }
    folder = report_folder(task_id, run.execution_id)
    sections = {"Transferred": run.transferred, "Verified": run.verified, "Skipped": run.skipped}
    for section, entries in sections.items():
        if entries:  # PreserveDeletedFiles=PRESERVE: no Deleted section
            body = {"TaskExecutionId": run.execution_id, section: entries}
            store.put_bytes(f"{folder}{run.execution_id}.{section.lower()}.json", json.dumps(body, indent=1).encode())
    store.put_bytes(f"{folder}{run.execution_id}.summary.json", json.dumps(summary, indent=1).encode())
    return folder


@dataclass
class TaskReport:
    """An execution's task report as read back from the lake bucket (`read_task_report`)."""

    execution_id: str
    location: str  # the report's folder, as a URI of the store
    keys: list[str]
    summary: dict | None
    entries: dict[str, list[dict]]  # section (Transferred, Verified, Skipped, Deleted) -> entries

    def errors(self) -> list[str]:
        """`<path> (<section> <status>: <detail>)` for each entry whose result is not SUCCESS."""
        lines = []
        for section, entries in self.entries.items():
            for entry in entries:
                bad = {k: v for k, v in entry.items() if k.endswith("Status") and v != "SUCCESS"}
                if bad or entry.get("ErrorCode"):
                    status = "/".join(str(v) for v in bad.values()) or "ERROR"
                    why = ": ".join(str(entry[k]) for k in ("ErrorCode", "ErrorDetail") if entry.get(k))
                    path = entry.get("RelativePath", "<no RelativePath>")
                    lines.append(f"{path} ({section.lower()} {status}{': ' + why if why else ''})")
        return lines

    def raise_for_errors(self) -> None:
        errors = self.errors()
        if errors:
            what = {"verified": "verification", "transferred": "transfer", "skipped": "skip", "deleted": "delete"}
            kinds = sorted({what.get(e.split(" (", 1)[1].split()[0], "") for e in errors} - {""})
            raise RuntimeError(
                f"DataSync execution {self.execution_id}: {' and '.join(kinds)} failed for {len(errors)} file(s)"
                f" in its task report ({self.location}): " + "; ".join(errors)
            )

    def transferred_keys(self) -> set[str]:
        """The landing keys the report says were transferred (files and objects, not folders)."""
        return {
            SHARE_PREFIX + e["RelativePath"].lstrip("/")
            for e in self.entries.get("Transferred", [])
            if (e.get("SrcMetadata") or {}).get("Type", "Regular") != "Directory" and e.get("RelativePath")
        }

    def details(self) -> dict[str, str]:
        counts = {f"report_{s.lower()}": str(len(self.entries.get(s, []))) for s in REPORT_SECTIONS}
        return {**counts, "report_errors": str(len(self.errors())), "task_report": self.location}


def read_task_report(store: ObjectStore, task_id: str, execution_id: str) -> TaskReport | None:
    """The task report of one execution, from the folders DataSync writes (`report_folder`); None if absent.

    A file named `*summary*` is the summary; every other JSON file holds entries of one or more sections: under
    the section's name (`{"Transferred": [...]}`), or as a bare list in a file named after it (`…transferred…`).
    """
    summary, entries, keys, folder = None, {}, [], report_folder(task_id, execution_id)
    for kind in (DETAILED_REPORTS, SUMMARY_REPORTS):
        for info in store.list(report_folder(task_id, execution_id, kind)):
            if not info.key.endswith(".json"):
                continue
            keys.append(info.key)
            name = info.key.rsplit("/", 1)[-1].lower()
            body = json.loads(store.get_bytes(info.key))
            if "summary" in name:
                summary = body
                folder = folder if kind == DETAILED_REPORTS else report_folder(task_id, execution_id, kind)
                continue
            named = next((s for s in REPORT_SECTIONS if s.lower() in name), None)
            lists = {k: v for k, v in body.items() if isinstance(v, list)} if isinstance(body, dict) else {}
            if isinstance(body, list):
                lists = {named or "Unknown": body}
            for section, items in lists.items():
                section = next((s for s in REPORT_SECTIONS if s.lower() == section.lower()), named or section)
                entries.setdefault(section, []).extend(i for i in items if isinstance(i, dict))
    if not keys:
        return None
    return TaskReport(execution_id, store.uri(folder), sorted(keys), summary, entries)


def _landed_checksum(store: ObjectStore, record: dict | None, dest: ObjectInfo, size: int) -> str | None:
    """SHA-256 of the landed object: as recorded when this sync wrote it, else read back if it may match."""
    if record and dest.etag == record["etag"]:
        return record["sha256"]
    return hashlib.sha256(store.get_bytes(dest.key)).hexdigest() if dest.size == size else None


def _iso(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc).isoformat()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
