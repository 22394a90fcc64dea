"""S3 event notifications through SQS: a tick costs O(new objects) whatever the layout (AWS deployment).

Setup: the lake bucket notifies `s3:ObjectCreated:*` under `landing/` to a standard SQS queue (with a
redrive policy to a dead-letter queue); `LAKE_LANDING_QUEUE_URL` names it. One sensor reads the queue
for every landing source (a queue has one consumer), routing each object by prefix to its source, and
batches each source's objects of a tick exactly as a listing sensor does (`requests.py`). Run this
sensor *or* the listing sensors, not both: the same object would run twice under different batches.

A message is deleted only once the runs it caused are recorded:
1. A tick receives messages and returns run requests; it remembers in its cursor each new object's
   run keys and each message's receipt handle and objects, and deletes nothing. Dagster stores that
   cursor together with the tick's run requests, then creates the runs, tagged with their run keys.
2. A later tick looks the run keys up in the instance (runs of this sensor tagged `dagster/run_key`);
   a message whose objects' runs all exist is deleted then. If a tick's result was never stored, its
   messages are not in the cursor: they become visible again after the visibility timeout, and run.
3. A redelivered message (visibility timeout, SQS's at-least-once delivery, a duplicate S3 event) of
   an object already requested runs nothing: it is deleted once that object's runs exist.
4. Objects whose runs never appear within `pending_timeout_seconds` are forgotten (messages kept), so
   their next delivery runs them again. Objects whose runs exist are remembered `remember_seconds`.
Messages with no work (`s3:TestEvent`, other prefixes) are deleted at once; unparseable ones are left
for the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import dagster as dg

from lake_platform.adapters.storage import ObjectStore
from lake_platform.sensors.requests import object_id, run_requests
from lake_platform.sensors.s3_events import created_objects
from lake_platform.sensors.sources import LandingSource, landing_sources, source_for

SENSOR_NAME = "landing_notifications_sensor"
RUN_KEY_TAG, SENSOR_NAME_TAG = "dagster/run_key", "dagster/sensor_name"  # set by Dagster on sensor runs


@dataclass(frozen=True)
class QueueSettings:
    queue_url: str  # or dg.EnvVar, resolved at tick time
    region_name: str | None = None
    visibility_timeout_seconds: int = 300  # several ticks: time for the runs to be created
    max_messages_per_tick: int = 100
    pending_timeout_seconds: int = 3600
    # Redeliveries and duplicate S3 events come within minutes; the cursor is stored with every tick.
    remember_seconds: int = 3600
    max_remembered: int = 5000


def resolve(value):
    return value.get_value() if isinstance(value, dg.EnvVar) else value


@dataclass
class QueueCursor:
    requested: dict[str, list] = field(default_factory=dict)  # object -> [requested at, run keys]
    messages: list[list] = field(default_factory=list)  # [receipt handle, [objects]] not deleted yet
    done: dict[str, float] = field(default_factory=dict)  # object -> when its runs were seen recorded

    def to_json(self) -> str:
        return json.dumps({"v": 1, "requested": self.requested, "messages": self.messages, "done": self.done})

    @classmethod
    def from_json(cls, text: str | None) -> QueueCursor:
        data = json.loads(text) if text else {}
        return cls(data.get("requested", {}), data.get("messages", []), data.get("done", {}))


def digest(oid: str) -> str:
    return hashlib.sha256(oid.encode()).hexdigest()[:16]


def recorded(instance: dg.DagsterInstance, key: str, cache: dict[str, bool]) -> bool:
    if key not in cache:
        tags = {RUN_KEY_TAG: key, SENSOR_NAME_TAG: SENSOR_NAME}
        cache[key] = bool(instance.get_runs(filters=dg.RunsFilter(tags=tags), limit=1))
    return cache[key]


def settle(state: QueueCursor, instance, now: float, settings: QueueSettings, log) -> list[str]:
    """Moves objects whose runs are recorded to `done`; returns the receipt handles to delete."""
    cache: dict[str, bool] = {}
    for oid, (at, keys) in list(state.requested.items()):
        if all(recorded(instance, k, cache) for k in keys):
            state.done[oid] = round(now)
            del state.requested[oid]
        elif now - at > settings.pending_timeout_seconds:
            log.warning(f"runs {keys} never appeared: their object will run again when redelivered")
            del state.requested[oid]
    deletable, kept = [], []
    for receipt, oids in state.messages:
        if all(o in state.done for o in oids):
            deletable.append(receipt)
        elif all(o in state.done or o in state.requested for o in oids):
            kept.append([receipt, oids])
    state.messages = kept
    fresh = sorted(state.done.items(), key=lambda kv: kv[1])[-settings.max_remembered :]
    state.done = {o: t for o, t in fresh if now - t <= settings.remember_seconds}
    return deletable


def receive(sqs, url: str, settings: QueueSettings) -> list[dict]:
    """Up to max_messages_per_tick messages; a message received twice keeps its latest receipt handle."""
    by_id: dict[str, dict] = {}
    while len(by_id) < settings.max_messages_per_tick:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, settings.max_messages_per_tick - len(by_id)),
            WaitTimeSeconds=0,
            VisibilityTimeout=settings.visibility_timeout_seconds,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in by_id]
        by_id.update((m["MessageId"], m) for m in batch)
        if not fresh:
            break
    return list(by_id.values())


def delete(sqs, url: str, receipts: list[str], log) -> None:
    for start in range(0, len(receipts), 10):  # DeleteMessageBatch takes at most 10 entries
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])]
        for failure in sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []):
            log.warning(f"could not delete a message ({failure.get('Code')}): it will be redelivered, and skipped")


def route(messages: list[dict], store: ObjectStore, sources: list[LandingSource], state: QueueCursor, log):
    """The objects to run, per source, and each message's objects (receipt handle -> object ids)."""
    batches: dict[str, dict[str, object]] = defaultdict(dict)  # source -> object id -> object
    routed: list[tuple[str, list[str]]] = []
    for message in messages:
        try:
            objects = created_objects(message["Body"])
        except ValueError as error:
            log.warning(f"message {message['MessageId']} left for the dead-letter queue: {error}")
            continue
        oids = []
        for bucket, obj in objects:
            source = source_for(obj.key, sources)
            if source is None or store.uri(obj.key) != f"s3://{bucket}/{obj.key}":
                continue  # a prefix no sensor watches, or another bucket
            oid = digest(object_id(store, obj))
            oids.append(oid)
            if oid not in state.done and oid not in state.requested:
                batches[source.name][oid] = obj
        routed.append((message["ReceiptHandle"], oids))
    return batches, routed


def evaluate(context, store: ObjectStore, sqs, settings: QueueSettings, sources: list[LandingSource]):
    url, now, log = resolve(settings.queue_url), time.time(), context.log
    state = QueueCursor.from_json(context.cursor)
    deletable = settle(state, context.instance, now, settings, log)
    batches, routed = route(receive(sqs, url, settings), store, sources, state, log)
    by_name = {s.name: s for s in sources}
    requests = []
    for name, objects in batches.items():
        made = run_requests(by_name[name], list(objects.values()), store, log)
        requests += made
        state.requested.update((oid, [now, [r.run_key for r in made]]) for oid in objects)
    for receipt, oids in routed:
        waiting = [o for o in oids if o not in state.done]
        if waiting:
            state.messages.append([receipt, waiting])
        else:  # no work, or a redelivery of objects whose runs are recorded
            deletable.append(receipt)
    delete(sqs, url, deletable, log)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=state.to_json())
    return dg.SensorResult(skip_reason=f"no new object ({len(deletable)} message(s) deleted)", cursor=state.to_json())


def notification_sensor(
    settings: QueueSettings,
    sources: list[LandingSource] | None = None,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    sources = sources or landing_sources()
    keys = sorted({k for s in sources for k in s.selection}, key=lambda k: k.to_user_string())

    @dg.sensor(
        name=SENSOR_NAME,
        target=dg.AssetSelection.assets(*keys),
        minimum_interval_seconds=30,
        default_status=default_status,
        description="S3 event notifications of new landing objects, read from SQS (LAKE_LANDING_QUEUE_URL), "
        "run as the listing sensors would; messages are deleted once their runs are recorded.",
    )
    def _sensor(context: dg.SensorEvaluationContext, store: ObjectStore):
        import boto3

        sqs = boto3.client("sqs", region_name=resolve(settings.region_name))
        return evaluate(context, store, sqs, settings, sources)

    return _sensor
