"""Sensors turn new landing objects into runs: none missed, none run twice, at a cost that follows new objects.

Each test drives a real sensor function through `dg.build_sensor_context` with the cursor the previous
tick returned (a fresh context each tick, as after a daemon restart), against a local lake under
tmp_path or against moto's S3 and SQS. Work is counted (objects read, keys listed, API calls), not timed.
"""

import io
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.stub import Stubber

from lake_platform import partitions
from lake_platform.adapters.aws_ingest import AwsDataExchange, AwsDms
from lake_platform.adapters.local_ingest import LocalDataExchange, LocalDms
from lake_platform.adapters.storage import LocalObjectStore, ObjectInfo, S3ObjectStore
from lake_platform.definitions import build_definitions
from lake_platform.raw.copy import manifest_key
from lake_platform.sensors import sensors_for
from lake_platform.sensors.cursor import ListingCursor, ListingLimits, scan
from lake_platform.sensors.landing import landing_sensor
from lake_platform.sensors.notifications import SENSOR_NAME, QueueSettings, notification_sensor
from lake_platform.sensors.pollers import data_exchange_revisions_sensor, dms_changes_sensor
from lake_platform.sensors.requests import object_id, run_key
from lake_platform.sensors.sources import landing_sources

REGION, BUCKET = "us-east-1", "lake-sensor-tests"
SOURCES = {s.name: s for s in landing_sources()}
FLIGHTS, PLANES, SHARE, WEATHER = (SOURCES[n] for n in ("flights", "planes", "share", "weather"))
STOPPED = dg.DefaultSensorStatus.STOPPED
AN_HOUR_AGO = int(time.time()) - 3600


def flights_file(*days: str) -> bytes:
    """A DMS CDC file with one change per day given (the sensor reads only the date parts)."""
    y, m, d = zip(*(map(int, day.split("-")) for day in days))
    table = pa.table({"Op": ["U"] * len(days), "year": list(y), "month": list(m), "day": list(d)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def weather_file(*days: str) -> bytes:
    return ("origin,year,month,day,hour\n" + "".join(f"JFK,{d[:4]},{d[5:7]},{d[8:]},0\n" for d in days)).encode()


def cdc_key(n: int) -> str:
    return f"{FLIGHTS.prefix}20130101-{n:09d}.parquet"  # DMS names CDC files by time: they sort by arrival


def land(store: LocalObjectStore, key: str, body: bytes, mtime: float | None = None) -> ObjectInfo:
    path = Path(store.root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return next(o for o in store.list(key) if o.key == key)


def tick(sensor, store, cursor=None, instance=None, **resources):
    """One evaluation, as the daemon runs it: the run requests and the cursor to save."""
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"store": store, **resources})
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.run_requests or []), result.cursor


def key_of(source, store, objects, what=""):
    return run_key(source, [object_id(store, o) for o in objects], what)


def selections(requests):
    return [sorted(k.to_user_string() for k in r.asset_selection) for r in requests]


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(root=str(tmp_path / "lake"))


@pytest.fixture
def reads(monkeypatch):
    """Keys read through any LocalObjectStore, in order."""
    keys, original = [], LocalObjectStore.get_bytes
    monkeypatch.setattr(LocalObjectStore, "get_bytes", lambda self, key: keys.append(key) or original(self, key))
    return keys


# --- what runs -----------------------------------------------------------------------------------------


def test_a_cdc_file_runs_raw_and_clean_flights_for_exactly_the_day_ranges_it_touches(store):
    obj = land(store, cdc_key(1), flights_file("2013-01-05", "2013-01-06", "2013-03-01"))
    requests, _ = tick(landing_sensor(FLIGHTS), store)
    assert selections(requests) == [["clean/flights", "raw/flights"]] * 2
    assert [r.tags[partitions.RANGE_START_TAG] + ".." + r.tags[partitions.RANGE_END_TAG] for r in requests] == [
        "2013-01-05..2013-01-06",
        "2013-03-01..2013-03-01",
    ]
    assert requests[0].run_key == key_of(FLIGHTS, store, [obj], "2013-01-05..2013-01-06")


def test_reference_data_runs_one_unpartitioned_request_and_the_share_runs_raw_share(store):
    for name in ("planes_a.csv", "planes_b.csv"):
        land(store, f"{PLANES.prefix}/{name}", b"tailnum,year\nN1,2001\n")
    land(store, f"{SHARE.prefix}docs/synthetic_log.txt", b"checked the fan blade\n")
    planes, _ = tick(landing_sensor(PLANES), store)
    share, _ = tick(landing_sensor(SHARE), store)
    assert selections(planes) == [["clean/planes", "raw/planes"]] and partitions.RANGE_START_TAG not in planes[0].tags
    assert selections(share) == [["raw/share"]]


def test_an_unreadable_object_goes_to_raw_only_and_rides_along_with_readable_ones(store):
    land(store, cdc_key(1), b"not parquet")
    alone, cursor = tick(landing_sensor(FLIGHTS), store)
    assert selections(alone) == [["raw/flights"]]
    land(store, cdc_key(2), b"not parquet either")
    land(store, cdc_key(3), flights_file("2013-02-01"))
    mixed, _ = tick(landing_sensor(FLIGHTS), store, cursor)
    assert selections(mixed) == [["clean/flights", "raw/flights"]]  # its raw run copies the bad file too


# --- no object missed, none run twice ------------------------------------------------------------------


def test_no_object_is_missed_or_read_twice_across_restarts(store, reads):
    sensor, cursor, landed, handled, run_keys = landing_sensor(FLIGHTS), None, [], [], []
    for round_ in range(5):
        for i in range(3):
            n = round_ * 3 + i
            landed.append(land(store, cdc_key(n), flights_file(f"2013-01-{n + 1:02d}")).key)
        before, mark = cursor, len(reads)
        requests, cursor = tick(sensor, store, cursor)
        handled += reads[mark:]
        again, _ = tick(sensor, store, before)  # the daemon died before saving the cursor: same run keys
        assert [r.run_key for r in again] == [r.run_key for r in requests]
        run_keys += [r.run_key for r in requests]
    assert tick(sensor, store, cursor)[0] == []
    assert sorted(handled) == sorted(landed)  # every object read once, by the tick after it landed
    assert len(set(run_keys)) == len(run_keys)


def test_objects_stamped_in_the_same_second_as_the_last_tick_are_still_new(store):
    """S3's LastModified has a one-second resolution: `since_last_modified` alone would miss `c`."""
    second = AN_HOUR_AGO
    a, b = (land(store, f"{PLANES.prefix}/{n}.csv", b"tailnum\nN1\n", second) for n in "ab")
    first, cursor = tick(landing_sensor(PLANES), store)
    c = land(store, f"{PLANES.prefix}/c.csv", b"tailnum\nN2\n", second)
    second_tick, cursor = tick(landing_sensor(PLANES), store, cursor)
    assert first[0].run_key == key_of(PLANES, store, [a, b]) and second_tick[0].run_key == key_of(PLANES, store, [c])
    assert tick(landing_sensor(PLANES), store, cursor)[0] == []


@pytest.mark.parametrize("stamped", ["after the newest listed", "before the newest listed"])
def test_an_object_landing_while_a_tick_runs_is_picked_up_by_the_next_tick(store, monkeypatch, stamped):
    """'before': an S3 multipart upload is stamped when it starts, and may appear after later objects."""
    a = land(store, f"{PLANES.prefix}/a.csv", b"x", AN_HOUR_AGO)
    b = land(store, f"{PLANES.prefix}/b.csv", b"y", AN_HOUR_AGO + 10)
    late_stamp = AN_HOUR_AGO + (20 if stamped.startswith("after") else 5)
    original = LocalObjectStore.list

    def list_then_arrive(self, prefix, start_after=None):
        listing = original(self, prefix, start_after)
        if not Path(store.root, PLANES.prefix, "late.csv").exists():
            land(store, f"{PLANES.prefix}/late.csv", b"z", late_stamp)
        return listing

    monkeypatch.setattr(LocalObjectStore, "list", list_then_arrive)
    first, cursor = tick(landing_sensor(PLANES), store)
    second, cursor = tick(landing_sensor(PLANES), store, cursor)
    late = next(o for o in original(store, PLANES.prefix) if o.key.endswith("late.csv"))
    assert first[0].run_key == key_of(PLANES, store, [a, b])
    assert second[0].run_key == key_of(PLANES, store, [late])
    assert tick(landing_sensor(PLANES), store, cursor)[0] == []


def test_an_overwritten_key_is_new_work_under_a_new_run_key(store):
    key = f"{SHARE.prefix}logs/synthetic_maintenance.log"
    land(store, key, b"day 1\n")
    first, cursor = tick(landing_sensor(SHARE), store)
    land(store, key, b"day 1\nday 2\n")
    second, cursor = tick(landing_sensor(SHARE), store, cursor)
    assert len(first) == len(second) == 1 and first[0].run_key != second[0].run_key
    assert tick(landing_sensor(SHARE), store, cursor)[0] == []


def test_a_first_tick_on_a_built_lake_skips_the_objects_raw_already_holds(store):
    done = land(store, f"{PLANES.prefix}/planes.csv", b"tailnum\nN1\n")
    new = land(store, f"{PLANES.prefix}/planes_update.csv", b"tailnum\nN2\n")
    manifest = {"dataset": "planes", "current": {done.key: {"etag": done.etag}}, "history": []}
    store.put_bytes(manifest_key("planes"), json.dumps(manifest).encode())
    requests, _ = tick(landing_sensor(PLANES), store)
    assert [r.run_key for r in requests] == [key_of(PLANES, store, [new])]


def test_the_cursor_stays_bounded_and_the_floor_only_rises():
    def obj(n, stamp):
        return ObjectInfo(key=f"k{n:05d}", size=1, etag="e", last_modified=datetime.fromtimestamp(stamp, timezone.utc))

    limits = ListingLimits(lookback_seconds=60, max_cursor_entries=100, max_objects_per_tick=10_000)
    burst = [obj(n, 1000 + n / 100) for n in range(3000)]  # 3,000 objects within 30 s
    result = scan(burst, ListingCursor(), limits)
    assert len(result.new) == 3000 and len(result.cursor.seen) == 100
    assert len(result.cursor.to_json()) < 100 * 60
    later = scan([*burst, obj(9999, 5000)], result.cursor, limits)
    assert [o.key for o in later.new] == ["k09999"] and later.cursor.floor >= result.cursor.floor


# --- cost follows new objects ---------------------------------------------------------------------------


def test_a_tick_among_10000_landed_cdc_files_reads_and_stats_only_the_new_ones(store, reads, monkeypatch):
    """DMS names CDC files by time, so the listing starts after the last file handled: a tick stats and
    reads the new files only (locally the directory walk itself still passes every name, without a stat).
    Unordered layouts list every key: see the S3 tests for that cost, 1,000 keys per call."""
    folder = Path(store.root, FLIGHTS.prefix)
    folder.mkdir(parents=True)
    for n in range(10_000):
        path = folder / cdc_key(n).rsplit("/", 1)[1]
        path.write_bytes(b"x")
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    current = {o.key: {"etag": o.etag} for o in store.list(FLIGHTS.prefix)}  # raw has copied them all
    store.put_bytes(manifest_key("flights"), json.dumps({"current": current, "history": []}).encode())
    listed, original = [], LocalObjectStore.list
    monkeypatch.setattr(LocalObjectStore, "list", lambda self, *a, **k: listed.append(len(r := original(self, *a, **k))) or r)
    sensor = landing_sensor(FLIGHTS)
    first, cursor = tick(sensor, store)
    assert first == [] and [k for k in reads if k.startswith("landing/")] == []
    new = [land(store, cdc_key(10_000 + i), flights_file(f"2013-06-0{2 * i + 1}")).key for i in range(3)]
    listed.clear()
    requests, cursor = tick(sensor, store, cursor)
    assert sorted(k for k in reads if k.startswith("landing/")) == new and len(requests) == 3
    assert listed == [3] and len(cursor) < 1_000  # three keys stat'ed; the cursor holds a handful of keys


def s3_calls(events):
    from collections import Counter

    calls = Counter()
    events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def moto_objects(keys, body=b"x", age=timedelta(0)):
    """Put objects straight into moto's backend: 10,000 PutObject calls through boto3 take ~10 s here."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(BUCKET, key, body).last_modified -= age


def test_on_s3_a_tick_among_10000_objects_makes_one_listing_call_and_reads_only_the_new(aws):
    """The cursor is the one a sensor leaves after handling the 10,000 (the local test above gets there
    from raw's manifest; on S3 that first tick costs 10 ListObjectsV2 calls, ~10 s of moto here)."""
    calls, store = s3_calls(aws), S3ObjectStore(bucket=BUCKET, region_name=REGION)
    moto_objects([cdc_key(n) for n in range(10_000)], age=timedelta(hours=1))
    cursor = ListingCursor(floor=time.time() - 1800, after=cdc_key(9_999)).to_json()
    sensor = landing_sensor(FLIGHTS)
    for i in range(3):
        store.put_bytes(cdc_key(10_000 + i), flights_file(f"2013-07-{10 + 2 * i}"))
    calls.clear()
    second, cursor = tick(sensor, store, cursor)
    assert calls["ListObjectsV2"] == 1 and calls["GetObject"] == 3 and len(second) == 3
    calls.clear()
    assert tick(sensor, store, cursor)[0] == [] and calls["ListObjectsV2"] == 1 and calls["GetObject"] == 0


def test_on_s3_a_listing_pages_past_1000_keys_and_a_backlog_is_worked_off_over_ticks(aws):
    calls, store = s3_calls(aws), S3ObjectStore(bucket=BUCKET, region_name=REGION)
    moto_objects(f"{PLANES.prefix}/planes_{n:04d}.csv" for n in range(1_100))
    objects = sorted(store.list(PLANES.prefix), key=lambda o: (o.last_modified, o.key))
    sensor = landing_sensor(PLANES, limits=ListingLimits(max_objects_per_tick=600))
    cursor, run_keys, list_calls = None, [], []
    for _ in range(3):
        calls.clear()
        requests, cursor = tick(sensor, store, cursor)
        run_keys += [r.run_key for r in requests]
        list_calls.append(calls["ListObjectsV2"])
    assert run_keys == [key_of(PLANES, store, objects[:600]), key_of(PLANES, store, objects[600:])]
    assert list_calls == [2 + 1, 2, 2]  # 1,100 keys: two pages a tick (+ raw's manifest, on the first tick)


def test_on_s3_an_overwrite_with_the_same_content_is_not_rerun_and_new_content_is(aws):
    store, key = S3ObjectStore(bucket=BUCKET, region_name=REGION), f"{PLANES.prefix}/planes.csv"
    store.put_bytes(key, b"tailnum\nN1\n")
    first, cursor = tick(landing_sensor(PLANES), store)
    store.put_bytes(key, b"tailnum\nN1\n")  # same ETag
    same, cursor = tick(landing_sensor(PLANES), store, cursor)
    store.put_bytes(key, b"tailnum\nN1\nN2\n")
    changed, cursor = tick(landing_sensor(PLANES), store, cursor)
    assert len(first) == 1 and same == [] and len(changed) == 1 and changed[0].run_key != first[0].run_key


# --- S3 event notifications through SQS ------------------------------------------------------------------


@pytest.fixture
def queue(aws):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="lake-landing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "landing/"}]}}
    boto3.client("s3").put_bucket_notification_configuration(  # S3 sends an s3:TestEvent now
        Bucket=BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": rule}]},
    )
    return sqs, url


def in_queue(sqs, url) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def record_runs(instance, requests):
    """What the daemon does with a tick's requests: a run per request, tagged with its run key."""

    @dg.op
    def step(): ...

    @dg.job
    def sensor_run():
        step()

    for r in requests:
        instance.create_run_for_job(sensor_run, tags={"dagster/run_key": r.run_key, "dagster/sensor_name": SENSOR_NAME})


def test_sqs_messages_are_deleted_only_once_their_runs_are_recorded_and_redeliveries_never_rerun(aws, queue):
    sqs, url = queue
    store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
    weather_key = f"{WEATHER.prefix}rev 1/weather+jan 2013.csv"  # S3 URL-encodes it in the event
    store.put_bytes(weather_key, weather_file("2013-01-01", "2013-01-02"))
    store.put_bytes(f"{PLANES.prefix}/planes.csv", b"tailnum\nN1\n")
    # Visibility 0: every message is redelivered on the next receive, as after a visibility timeout.
    sensor = notification_sensor(QueueSettings(queue_url=url, region_name=REGION, visibility_timeout_seconds=0))
    with dg.instance_for_test() as instance:
        calls = s3_calls(aws)
        first, cursor = tick(sensor, store, None, instance)
        assert calls["ListObjectsV2"] == 0 and calls["GetObject"] == 1  # O(new): no listing, weather read
        assert sorted(selections(first)) == [["clean/planes", "raw/planes"], ["clean/weather", "raw/weather"]]
        assert in_queue(sqs, url) == 2  # the test event is gone; the two object events wait for their runs
        redelivered, cursor = tick(sensor, store, cursor, instance)
        assert redelivered == [] and in_queue(sqs, url) == 2
        record_runs(instance, first)
        settled, cursor = tick(sensor, store, cursor, instance)
        assert settled == [] and in_queue(sqs, url) == 0
        store.put_bytes(f"{PLANES.prefix}/planes.csv", b"tailnum\nN1\n")  # same content: a duplicate event
        again, cursor = tick(sensor, store, cursor, instance)
        assert again == [] and in_queue(sqs, url) == 0  # deleted at once: its runs are recorded
        store.put_bytes(f"{PLANES.prefix}/planes.csv", b"tailnum\nN1\nN2\n")
        changed, cursor = tick(sensor, store, cursor, instance)
        assert selections(changed) == [["clean/planes", "raw/planes"]] and changed[0].run_key not in {r.run_key for r in first}


def test_a_message_that_is_not_an_s3_event_is_left_for_the_dead_letter_queue(queue):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    sensor = notification_sensor(QueueSettings(queue_url=url, region_name=REGION))
    with dg.instance_for_test() as instance:
        requests, _ = tick(sensor, S3ObjectStore(bucket=BUCKET, region_name=REGION), None, instance)
    assert requests == [] and in_queue(sqs, url) == 1  # the test event deleted, the bad message kept


# --- ingest pollers ---------------------------------------------------------------------------------------


def poll(sensor, cursor, instance, **resources):
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources)
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return list(result.run_requests), result.cursor


def test_the_dms_poller_requests_landing_flights_while_the_database_has_unreplicated_changes(tmp_path, store):
    import sqlite3

    from lake_platform.sources.capture import install_sqlite_capture

    db = tmp_path / "ops.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, carrier TEXT)")
        con.execute("INSERT INTO flights VALUES (1, 'UA')")
        install_sqlite_capture(con, "flights")
    dms = LocalDms(source_url=f"sqlite:///{db}", state_path=str(tmp_path / "dms.json"))
    sensor = dms_changes_sensor(STOPPED)
    with dg.instance_for_test() as instance:
        full_load, cursor = poll(sensor, None, instance, dms=dms, store=store)
        assert selections(full_load) == [["landing/flights"]]
        dms.replicate(dg.build_asset_context(), store)
        assert poll(sensor, cursor, instance, dms=dms, store=store)[0] == []
        with sqlite3.connect(db) as con:
            con.execute("UPDATE flights SET carrier = 'AA' WHERE flight_id = 1")
        changes, cursor = poll(sensor, cursor, instance, dms=dms, store=store)
        assert selections(changes) == [["landing/flights"]]
        assert poll(sensor, cursor, instance, dms=dms, store=store)[0] == []  # asked already; retried later
        record_in_flight = dict(tags={"dagster/sensor_name": "dms_changes_sensor"})
        instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), **record_in_flight)
        assert poll(sensor, None, instance, dms=dms, store=store)[0] == []  # a run of it is still queued
    assert LocalDms(source_url=f"sqlite:///{tmp_path / 'missing.db'}", state_path="x").pending(store) == []
    assert not (tmp_path / "missing.db").exists()  # pending() never creates the database


def test_the_data_exchange_poller_requests_landing_weather_for_revisions_not_exported(tmp_path, store):
    revision = tmp_path / "provider" / "weather" / "0123456789abcdef0123456789abcdef"
    revision.mkdir(parents=True)
    (revision / "revision.json").write_text(json.dumps({"CreatedAt": "2013-01-28T00:00:00Z"}))
    (revision / "weather_2013-01.csv").write_bytes(weather_file("2013-01-01"))
    exchange = LocalDataExchange(provider_dir=str(tmp_path / "provider"))
    sensor = data_exchange_revisions_sensor(STOPPED)
    with dg.instance_for_test() as instance:
        requests, cursor = poll(sensor, None, instance, data_exchange=exchange, store=store)
        assert selections(requests) == [["landing/weather"]] and exchange.pending(store) == [revision.name]
        exchange.export_new_revisions(dg.build_asset_context(), store)
        assert exchange.pending(store) == [] and poll(sensor, cursor, instance, data_exchange=exchange, store=store)[0] == []


def test_on_aws_the_pollers_ask_data_exchange_for_unexported_revisions_and_dms_for_a_stopped_task(aws, monkeypatch):
    store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
    store.put_bytes("landing/data_exchange/weather/rev-old/weather.csv", b"origin\n")
    dx = boto3.client("dataexchange", region_name=REGION)
    revision = {"Arn": "arn:r", "CreatedAt": datetime(2013, 1, 1), "DataSetId": "ds", "Id": "", "UpdatedAt": datetime(2013, 1, 1)}
    listed = [{**revision, "Id": i, "Finalized": f} for i, f in (("rev-old", True), ("rev-new", True), ("rev-draft", False))]
    stub_dx = Stubber(dx)
    stub_dx.add_response("list_data_set_revisions", {"Revisions": listed}, {"DataSetId": "ds"})
    dms = boto3.client("dms", region_name=REGION)
    stub_dms = Stubber(dms)
    task = {"ReplicationTaskArn": "arn:task", "Status": "stopped", "StopReason": "Stop Reason NORMAL"}
    stub_dms.add_response("describe_replication_tasks", {"ReplicationTasks": [task]})
    clients = {"dataexchange": dx, "dms": dms}
    monkeypatch.setattr(AwsDataExchange, "_client", lambda self, service: clients[service])
    monkeypatch.setattr(AwsDms, "_client", lambda self, service: clients[service])
    with stub_dx, stub_dms:
        assert AwsDataExchange(data_set_id="ds").pending(store) == ["rev-new"]
        assert AwsDms(replication_task_arn="arn:task", start_if_stopped=True).pending(store) != []


# --- registration -----------------------------------------------------------------------------------------


def test_local_sensors_start_running_and_aws_sensors_start_stopped_with_the_sqs_sensor_added(tmp_path):
    local, aws = ({s.name: s for s in sensors_for(d)} for d in ("local", "aws"))
    expected = {f"{s}_landing_sensor" for s in SOURCES} | {"dms_changes_sensor", "data_exchange_revisions_sensor"}
    assert set(local) == expected and set(aws) == expected | {SENSOR_NAME}
    assert {s.default_status for s in local.values()} == {dg.DefaultSensorStatus.RUNNING}
    assert {s.default_status for s in aws.values()} == {STOPPED}
    for deployment in ("local", "aws"):
        dg.Definitions.validate_loadable(build_definitions(deployment, tmp_path))
