"""Copy landed objects into the immutable raw zone, by content.

Each dataset keeps a manifest (`raw/_manifests/<dataset>.json`) of what is in landing now and where its
raw copy is. A raw copy is never overwritten: an object re-delivered with the same content is not copied
again, and an object overwritten in landing with new content gets a new raw copy beside the old one.

Each entry records when its object landed (`landed_at`: the landing object's last-modified time, locally
the file's mtime to the microsecond, on S3 LastModified, to the second): the versions of a key are ordered
by arrival, and `arrival_order` lists a dataset's current raw objects in that order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lake_platform.adapters.storage import ObjectStore


@dataclass
class RawReport:
    current: dict[str, dict] = field(default_factory=dict)  # landing key -> entry
    copied: list[str] = field(default_factory=list)  # raw keys written by this call
    unchanged: int = 0

    @property
    def raw_keys(self) -> list[str]:
        return [entry["raw_key"] for _, entry in sorted(self.current.items())]


def manifest_key(dataset: str) -> str:
    return f"raw/_manifests/{dataset}.json"


def read_manifest(store: ObjectStore, dataset: str) -> dict:
    key = manifest_key(dataset)
    if not store.exists(key):
        return {"dataset": dataset, "current": {}, "history": []}
    return json.loads(store.get_bytes(key))


def raw_key_for(landing_key: str, sha256: str, arrived: datetime) -> str:
    folder, _, name = landing_key.removeprefix("landing/").rpartition("/")
    return f"raw/{folder}/{arrived:%Y%m%dT%H%M%SZ}-{sha256[:12]}/{name}"


def landed_at(entry: dict) -> str:
    """When the entry's object landed; entries written before `landed_at` was recorded have their copy time."""
    return entry.get("landed_at") or entry["arrived_at"]


def arrival_order(current: dict[str, dict]) -> list[dict]:
    """The current entries in arrival order: by landing time, then by landing key (S3's LastModified has
    one-second resolution, so two objects landed in the same second on S3 are ordered by key), never by hash."""
    return sorted(current.values(), key=lambda e: (datetime.fromisoformat(landed_at(e)), e["landing_key"]))


def copy_to_raw(store: ObjectStore, dataset: str, landing_prefix: str) -> RawReport:
    manifest = read_manifest(store, dataset)
    known = manifest["current"]
    by_sha = {entry["sha256"]: entry for entry in manifest["history"]}
    report = RawReport()
    now = datetime.now(timezone.utc)
    for obj in store.list(landing_prefix):
        entry = known.get(obj.key)
        landed = obj.last_modified.astimezone(timezone.utc).isoformat()
        if entry and entry["etag"] == obj.etag:
            report.current[obj.key] = entry
            report.unchanged += 1
            continue
        body = store.get_bytes(obj.key)
        sha = hashlib.sha256(body).hexdigest()
        previous = by_sha.get(sha)
        if previous and previous["landing_key"] == obj.key:
            entry = {**previous, "etag": obj.etag, "landed_at": landed}  # same content delivered again: a new arrival
            report.unchanged += 1
        else:
            raw_key = raw_key_for(obj.key, sha, now)
            store.put_bytes(raw_key, body)
            entry = {
                "landing_key": obj.key,
                "raw_key": raw_key,
                "sha256": sha,
                "size": len(body),
                "etag": obj.etag,
                "arrived_at": now.isoformat(),
                "landed_at": landed,
            }
            manifest["history"].append(entry)
            by_sha[sha] = entry
            report.copied.append(raw_key)
        report.current[obj.key] = entry
    manifest["current"] = report.current
    store.put_bytes(manifest_key(dataset), json.dumps(manifest, indent=1).encode())
    return report
