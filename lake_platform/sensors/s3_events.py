"""S3 event notifications as delivered to SQS: the objects they announce.

S3 sends `{"Records": [...]}` with one record per event, the object key URL-encoded (`a+b%2B.csv` is
`a b+.csv`), and one `{"Event": "s3:TestEvent"}` message when a notification is configured. Messages
that went through SNS carry the S3 event as the JSON string `Message`.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import unquote_plus

from lake_platform.adapters.storage import ObjectInfo


def created_objects(body: str) -> list[tuple[str, ObjectInfo]]:
    """(bucket, object) for each ObjectCreated record; [] for a test event or other event types.

    Raises ValueError for a message that is not an S3 event notification.
    """
    try:
        event = json.loads(body)
        if event.get("Type") == "Notification" and "Message" in event:
            event = json.loads(event["Message"])
    except (json.JSONDecodeError, AttributeError, TypeError) as error:
        raise ValueError(f"not JSON: {error}") from error
    if event.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(event.get("Records"), list):
        raise ValueError("not an S3 event notification (no Records)")
    return [_object(r) for r in event["Records"] if str(r.get("eventName", "")).startswith("ObjectCreated")]


def _object(record: dict) -> tuple[str, ObjectInfo]:
    try:
        s3, when = record["s3"], record["eventTime"]
        obj = s3["object"]
        version = obj.get("eTag") or obj.get("versionId") or obj["sequencer"]
        info = ObjectInfo(
            key=unquote_plus(obj["key"]),
            size=int(obj.get("size", 0)),
            etag=version.strip('"'),
            last_modified=datetime.fromisoformat(when.replace("Z", "+00:00")),
        )
        return s3["bucket"]["name"], info
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed S3 event record: {error!r}") from error
