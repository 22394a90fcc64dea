"""Cost of one tick of the flights landing sensor on S3 (moto), with many DMS CDC objects already landed.

Under moto's in-process `mock_aws`: lands `total` CDC objects under the flights landing prefix (named by
their time, `YYYYMMDD-HHMMSSfff.parquet`, one every `interval_s` seconds up to a minute ago), records
them in raw's manifest (a built lake), and runs the sensor until its cursor covers them all (the first
tick takes raw's manifest as done: no run, no object read). Then lands `new` more objects (small real
Parquet files: the sensor reads their year/month/day) and times exactly one tick, as the daemon runs it:
a fresh `build_sensor_context` with the AWS deployment's `store` resource (so the tick builds its own
boto3 client), counting the S3 API calls it makes by operation. Prints one JSON object:

    .venv/bin/python bench/sensor_tick.py 10000 [new]

- `tick_s`: the one tick (resource init + listing + reading the new objects + run requests);
- `list_calls` / `get_calls` / `calls`: that tick's S3 calls; `listed_keys`: keys its listing returned;
  `list_s`: seconds of `tick_s` spent in ListObjectsV2 calls (on moto, mostly moto's scan: see below);
- `setup_s`: everything before the tick: `put_s` (landing the `total` objects), `catchup_s` (the
  catch-up tick(s), whose S3 calls are `catchup_calls`), writing the manifest and the new objects.

On moto, every ListObjectsV2 call scans and sorts the whole bucket (S3 does not): `tick_s` grows with
`total` through moto even though the tick makes one listing call of a few keys (~0.04 s of moto per
call at 10,000 objects, ~0.4 s at 100,000). Setup holds ~5 KB of moto state per object (~0.8 GB peak
RSS at 100,000) and takes ~1 min there, mostly the catch-up tick's 100 ListObjectsV2 pages (each a
full scan in moto).
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import dagster as dg

from lake_platform import partitions
from lake_platform.raw.copy import manifest_key
from lake_platform.resources import aws_resources
from lake_platform.sensors.cursor import ListingCursor, ListingLimits
from lake_platform.sensors.landing import landing_sensor
from lake_platform.sensors.requests import OBJECTS_TAG, run_key
from lake_platform.sensors.sources import contract_source

REGION, BUCKET = "us-east-1", "lake-bench-sensor-tick"
OLD_BODY = b"x"  # never read: raw's manifest marks the old objects as done (asserted: no GetObject on them)


def cdc_name(at: datetime) -> str:
    """DMS's name for a CDC file written at `at` (UTC): it sorts by arrival."""
    return f"{at:%Y%m%d-%H%M%S}{at.microsecond // 1000:03d}.parquet"


def flights_file(day: date) -> bytes:
    """A DMS CDC file with one change on `day` (the sensor reads only the date parts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"Op": ["U"], "year": [day.year], "month": [day.month], "day": [day.day]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def land_old(prefix: str, total: int, newest: datetime, interval_s: float) -> dict[str, str]:
    """`total` objects straight into moto's backend, each stamped with the time in its name: through
    boto3, 10,000 PutObject calls took 34 s here (request/response serialization); this takes ~1 s.
    Returns key -> ETag (what raw's manifest records)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    etag = hashlib.md5(OLD_BODY).hexdigest()  # S3's ETag of a single-part upload
    etags = {}
    for n in range(total):
        at = newest - timedelta(seconds=interval_s * (total - 1 - n))
        key = f"{prefix}{cdc_name(at)}"
        obj = backend.put_object(BUCKET, key, OLD_BODY)
        obj.last_modified = at.replace(tzinfo=None)  # moto keeps naive UTC
        etags[key] = etag
    assert obj.etag.strip('"') == etag
    return etags


class S3Tap:
    """botocore hooks on the S3 clients: while `calls` is set (a timed evaluation), counts the calls by
    operation, the keys ListObjectsV2 returns and the seconds spent in ListObjectsV2 (moto's side mostly)."""

    def __init__(self):
        self.calls: Counter | None = None
        self.listed_keys = 0
        self.list_s = 0.0
        self._started = 0.0

    def before(self, model, **_):
        if self.calls is not None:
            self.calls.update([model.name])
            self._started = time.perf_counter()

    def after(self, model, parsed, **_):
        if self.calls is not None and model.name == "ListObjectsV2":
            self.list_s += time.perf_counter() - self._started
            self.listed_keys += parsed.get("KeyCount", len(parsed.get("Contents", [])))


def evaluate(sensor, store, cursor: str | None, tap: S3Tap, calls: Counter):
    """One tick as the daemon runs it (a fresh context, so a fresh store resource): (seconds, run
    requests, next cursor). Only `sensor(context)` is timed; its S3 calls are counted into `calls`."""
    context = dg.build_sensor_context(cursor=cursor, resources={"store": store})
    tap.calls, tap.listed_keys, tap.list_s = calls, 0, 0.0
    started = time.perf_counter()
    try:
        result = sensor(context)
    finally:
        elapsed = time.perf_counter() - started
        tap.calls = None
    if isinstance(result, dg.SkipReason):
        return elapsed, [], cursor
    return elapsed, list(result.run_requests or []), result.cursor


def measure(total: int, new: int = 10, *, interval_s: float = 60.0) -> dict:
    """One tick of the flights landing sensor among `total` landed CDC objects, `new` of them new."""
    import boto3
    from moto import mock_aws

    limits = ListingLimits()
    if not 1 <= new <= limits.max_objects_per_tick:
        raise ValueError(f"new must be 1..{limits.max_objects_per_tick} (one tick handles that many at most)")
    source = contract_source("flights")
    sensor = landing_sensor(source, limits=limits)
    env = {"AWS_DEFAULT_REGION": REGION, "LAKE_AWS_REGION": REGION, "LAKE_BUCKET": BUCKET}

    with mock.patch.dict(os.environ, env), mock_aws(), tempfile.TemporaryDirectory() as tmp:
        boto3.setup_default_session(region_name=REGION)
        # Every S3 client made from here on (the store's, built inside each tick) carries these hooks.
        tap = S3Tap()
        boto3.DEFAULT_SESSION.events.register("before-call.s3", tap.before)
        boto3.DEFAULT_SESSION.events.register("after-call.s3", tap.after)
        s3 = boto3.client("s3")
        store = aws_resources(Path(tmp))["store"]  # the AWS deployment's store: LAKE_BUCKET, LAKE_AWS_REGION

        started = time.perf_counter()
        s3.create_bucket(Bucket=BUCKET)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        etags = land_old(source.prefix, total, now - timedelta(minutes=1), interval_s)
        put_s = time.perf_counter() - started
        old_keys = sorted(etags)
        manifest = {"dataset": source.name, "current": {k: {"etag": e} for k, e in etags.items()}, "history": []}
        s3.put_object(Bucket=BUCKET, Key=manifest_key(source.name), Body=json.dumps(manifest).encode())
        del manifest, etags

        # Catch up: the first tick takes raw's manifest as done; tick until every old key is behind
        # `after` or remembered in `seen`, with no run requested and no landed object read.
        cursor, catchup_s, catchup_calls, ticks = None, 0.0, Counter(), 0
        while True:
            elapsed, requests, cursor = evaluate(sensor, store, cursor, tap, catchup_calls)
            catchup_s, ticks = catchup_s + elapsed, ticks + 1
            assert requests == [], f"catch-up tick {ticks} requested runs: raw's manifest was not taken as done"
            state = ListingCursor.from_json(cursor)
            if all((state.after is not None and k <= state.after) or k in state.seen for k in old_keys):
                break
            assert ticks < 10, "the sensor does not catch up on the landed objects"
        assert catchup_calls["GetObject"] == 1, catchup_calls  # raw's manifest only: no landed object read
        del old_keys

        # Land the new objects (through S3, stamped now), each touching its own day of 2013.
        landed_at = datetime.now(timezone.utc)
        new_ids, days = [], set()
        for i in range(new):
            day = date(2013, 1, 1) + timedelta(days=(2 * i) % 364)
            key = f"{source.prefix}{cdc_name(landed_at + timedelta(milliseconds=i))}"
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=flights_file(day))["ETag"].strip('"')
            new_ids.append(f"s3://{BUCKET}/{key}@{etag}")
            days.add(day.isoformat())
        setup_s = time.perf_counter() - started

        calls = Counter()
        gc.collect()
        gc.freeze()  # moto's objects (~5 KB per landed object) out of the tick's garbage collections
        try:
            tick_s, requests, cursor = evaluate(sensor, store, cursor, tap, calls)
        finally:
            gc.unfreeze()

        # A broken setup must not report a fast tick: the tick ran exactly the new objects, all of them.
        assert requests, "the tick requested no run for the new objects"
        expected = {run_key(source, new_ids, f"{a}..{b}") for a, b in partitions.ranges(days)}
        assert {r.run_key for r in requests} == expected, "the runs do not cover exactly the new objects"
        assert {r.tags[OBJECTS_TAG] for r in requests} == {str(new)}
        assert calls["GetObject"] == new, calls
        state = ListingCursor.from_json(cursor)
        assert all(i.split("@")[0].removeprefix(f"s3://{BUCKET}/") in state.seen for i in new_ids)

    boto3.DEFAULT_SESSION = None
    return {
        "objects": total,
        "new": new,
        "tick_s": round(tick_s, 4),
        "list_calls": calls["ListObjectsV2"],
        "get_calls": calls["GetObject"],
        "calls": dict(sorted(calls.items())),
        "listed_keys": tap.listed_keys,
        "list_s": round(tap.list_s, 4),
        "runs": len(requests),
        "setup_s": round(setup_s, 2),
        "put_s": round(put_s, 2),
        "catchup_s": round(catchup_s, 2),
        "catchup_ticks": ticks,
        "catchup_calls": dict(sorted(catchup_calls.items())),
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(measure(*args) if args else measure(10_000)))
