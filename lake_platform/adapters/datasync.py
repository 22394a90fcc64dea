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
- each execution writes a task report (`landing/datasync/_reports/<execution id>/summary.json` and
  `detailed.json`) with the counters of DescribeTaskExecution (FilesTransferred, FilesVerified, …).
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
REPORTS_PREFIX = "landing/datasync/_reports/"
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
        summary_key = write_task_report(store, run, self.share_dir, destination, self.include, self.exclude)
        if run.failed:
            names = ", ".join(f"{v['RelativePath']} ({v['Detail']})" for v in run.failed)
            raise RuntimeError(
                f"DataSync execution {run.execution_id}: verification failed for {len(run.failed)} file(s): "
                f"{names}; task report {store.uri(summary_key)}"
            )
        context.log.info(
            f"DataSync {run.execution_id}: {len(run.transferred)} transferred and verified,"
            f" {len(run.skipped)} unchanged, {len(run.kept)} kept after deletion from the share"
        )
        written = {SHARE_PREFIX + t["RelativePath"].lstrip("/") for t in run.transferred}
        return LandingReport(
            objects=[o for o in store.list(SHARE_PREFIX) if o.key in written],
            details=report_details(run, store.uri(summary_key)),
        )

    def _sync_file(self, store, run: Execution, state: dict, relative: str, path: Path, dest: ObjectInfo | None):
        stat = path.stat()
        meta = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        entry = {"RelativePath": "/" + relative, "SrcSize": stat.st_size, "SrcMtime": _iso(stat.st_mtime_ns)}
        record = state["files"].get(relative)
        if dest is not None and record and dest.etag == record["etag"] and meta.items() <= record.items():
            run.skipped.append({**entry, "Reason": "UNCHANGED"})  # size and mtime as last transferred
            return
        body = path.read_bytes()
        checksum = hashlib.sha256(body).hexdigest()
        if dest is not None and checksum == _landed_checksum(store, record, dest, len(body)):
            # Metadata changed (a `touch`), content did not: DataSync moves no data.
            state["files"][relative] = {**meta, "sha256": checksum, "etag": dest.etag}
            run.skipped.append({**entry, "Reason": "CONTENT_UNCHANGED"})
            return
        key = SHARE_PREFIX + relative
        store.put_bytes(key, body)
        run.transferred.append({**entry, "Checksum": f"sha256:{checksum}", "TransferType": "CONTENT"})
        written = hashlib.sha256(store.get_bytes(key)).hexdigest()
        verify = {"RelativePath": "/" + relative, "SrcChecksum": checksum, "DstChecksum": written}
        if written != checksum:
            detail = f"checksum mismatch: source sha256 {checksum[:12]}…, landing {written[:12]}…"
            run.verified.append({**verify, "VerifyStatus": "FAILED", "Detail": detail})
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


def write_task_report(store: ObjectStore, run: Execution, source: str, destination: str, include, exclude) -> str:
    """The execution's task report: a summary with DescribeTaskExecution's counters, and the file lists."""
    failed = len(run.failed)
    error = {"ErrorCode": "VerificationFailure", "ErrorDetail": f"{failed} file(s) failed verification"}
    summary = {
        "TaskExecutionId": run.execution_id,
        "SourceLocation": source,
        "DestinationLocation": destination,
        "Status": "ERROR" if failed else "SUCCESS",
        "StartTime": run.started.isoformat(),
        "EndTime": datetime.now(timezone.utc).isoformat(),
        "Options": OPTIONS,
        "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": f} for f in include],
        "Excludes": [{"FilterType": "SIMPLE_PATTERN", "Value": f} for f in exclude],
        "EstimatedFilesToTransfer": len(run.transferred),
        "FilesTransferred": len(run.transferred),
        "FilesSkipped": len(run.skipped),
        "FilesVerified": len(run.verified) - failed,
        "FilesDeleted": 0,
        "FilesFailed": {"Transfer": 0, "Verify": failed},
        "BytesTransferred": sum(t["SrcSize"] for t in run.transferred),
        "BytesWritten": sum(t["SrcSize"] for t in run.transferred),
        "Result": {
            "PrepareStatus": "SUCCESS",
            "TransferStatus": "SUCCESS",
            "VerifyStatus": "ERROR" if failed else "SUCCESS",
            **(error if failed else {}),
        },
    }
    detailed = {
        "Transferred": run.transferred,
        "Skipped": run.skipped,
        "Verified": run.verified,
        "KeptAfterSourceDeletion": run.kept,
    }
    folder = f"{REPORTS_PREFIX}{run.execution_id}/"
    store.put_bytes(folder + "detailed.json", json.dumps(detailed, indent=1).encode())
    store.put_bytes(folder + "summary.json", json.dumps(summary, indent=1).encode())
    return folder + "summary.json"


def report_details(run: Execution, report_uri: str) -> dict[str, str]:
    return {
        "execution_id": run.execution_id,
        "files_transferred": str(len(run.transferred)),
        "files_verified": str(len(run.verified) - len(run.failed)),
        "files_skipped": str(len(run.skipped)),
        "files_kept_after_source_deletion": str(len(run.kept)),
        "bytes_transferred": str(sum(t["SrcSize"] for t in run.transferred)),
        "task_report": report_uri,
    }


def _landed_checksum(store: ObjectStore, record: dict | None, dest: ObjectInfo, size: int) -> str | None:
    """SHA-256 of the landed object: as recorded when this sync wrote it, else read back if it may match."""
    if record and dest.etag == record["etag"]:
        return record["sha256"]
    return hashlib.sha256(store.get_bytes(dest.key)).hexdigest() if dest.size == size else None


def _iso(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc).isoformat()
