"""What new landed objects run: raw and clean of their dataset, for exactly the days they touch.

Run keys derive from the objects' identities, `<bucket or lake root>/<key>@<ETag>`: the same objects
give the same run keys (so Dagster skips a request it has already run), and an object overwritten with
new content (a new ETag) gives a new one. One tick's objects of a dataset go into one batch: a run per
consecutive range of days they touch (`partitions.ranges`), each materializing raw and clean of that
dataset for that range, so a CDC file with updates to older days refreshes those days too.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import PurePosixPath

import dagster as dg

from lake_platform import partitions
from lake_platform.adapters.storage import ObjectInfo, ObjectStore
from lake_platform.sensors.sources import LandingSource

SOURCE_TAG = "lake/landing_source"
OBJECTS_TAG = "lake/landing_objects"
FORMATS = {".csv": "csv", ".parquet": "parquet"}


def object_id(store: ObjectStore, obj: ObjectInfo) -> str:
    """The identity of one version of an object: where it is, and its ETag."""
    return f"{store.uri(obj.key)}@{obj.etag}"


def run_key(source: LandingSource, ids: list[str], what: str = "") -> str:
    digest = hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()[:20]
    return ":".join(p for p in (source.name, what, digest) if p)


def run_requests(
    source: LandingSource, objects: list[ObjectInfo], store: ObjectStore, log: logging.Logger
) -> list[dg.RunRequest]:
    """The runs for one batch of new objects of `source` (none for an empty batch)."""
    if not objects:
        return []
    ids = [object_id(store, o) for o in objects]
    tags = {SOURCE_TAG: source.name, OBJECTS_TAG: str(len(objects))}
    if source.contract is None:
        return [dg.RunRequest(run_key=run_key(source, ids), asset_selection=list(source.selection), tags=tags)]
    days = touched_days(source, objects, store, log)
    requests = [
        dg.RunRequest(
            run_key=run_key(source, ids, f"{first}..{last}"),
            asset_selection=list(source.selection),
            tags={**tags, **partitions.range_tags(first, last)},
        )
        for first, last in partitions.ranges(days)
    ]
    if not requests:
        # No readable record: the objects still go to raw, where the cleaning job quarantines them with
        # a reason. When other objects of the batch touch days, their runs copy these to raw too.
        requests = [dg.RunRequest(run_key=run_key(source, ids, "raw"), asset_selection=[source.raw_key], tags=tags)]
    return requests


def touched_days(source: LandingSource, objects: list[ObjectInfo], store: ObjectStore, log: logging.Logger) -> set[str]:
    """The partition keys the objects' records belong to; unreadable objects are logged and touch none."""
    days: set[str] = set()
    for obj in objects:
        fmt = FORMATS.get(PurePosixPath(obj.key).suffix.lower())
        try:
            days |= partitions.touched(source.contract, store.get_bytes(obj.key), fmt)
        except ValueError as error:
            log.warning(f"{store.uri(obj.key)} cannot be read for its days ({error}): sent to raw only")
    daily = partitions.partitions_def(source.contract)
    outside = sorted(d for d in days if not daily.has_partition_key(d))
    if outside:  # e.g. a date before 2013-01-01 or in the future: no such partition to run
        log.warning(f"{source.name}: records dated {', '.join(outside[:5])} fall outside the daily partitions")
    return days - set(outside)
