"""The listing cursor: which landed objects a sensor has handled, in a bounded amount of state.

`dagster_aws.s3.sensor.get_objects` keeps one watermark, `since_last_modified`, and returns objects
modified strictly after it. That misses objects, because S3's LastModified has a one-second resolution
and is not the time an object becomes visible:
- an object written in the watermark's second, after the listing that set it, is never returned;
- a multipart upload's LastModified is when the upload *started*, so it can appear long after objects
  with later stamps (so can one a listing paged past while it was being written).
So the cursor keeps a *floor* trailing the newest object seen by `lookback_seconds`, and the key and
ETag of every object handled at or above it. An object is new when it is at or above the floor and its
(key, ETag) is not remembered: same-second arrivals, late-visible uploads younger than the lookback and
overwritten keys (a new ETag) are all new, and nothing handled comes back. Invariant: every object
modified before the floor has been handled.

The state stays bounded: only objects within the lookback window are remembered, and at most
`max_cursor_entries` of them. Past that (a burst of more objects than that within the lookback), the
floor rises above the ones left out, and the late-arrival guarantee holds from there on only.

Arrival-ordered layouts (sources.ORDERED_KEYS: DMS's time-named CDC files) also keep `after`, the last
such key below the floor. Keys up to it are all handled and never rewritten, so the next listing starts
after it (S3's StartAfter): a tick lists what arrived since, not the whole prefix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from lake_platform.adapters.storage import ObjectInfo

VERSION = 1


@dataclass(frozen=True)
class ListingLimits:
    lookback_seconds: float = 600.0  # longer than the longest upload into landing (multipart LastModified)
    max_objects_per_tick: int = 200  # a tick reads this many objects at most; the rest wait for the next
    max_cursor_entries: int = 1000  # ~100 bytes each; Dagster stores the cursor with every tick


@dataclass
class ListingCursor:
    floor: float | None = None  # epoch seconds; None: nothing handled yet
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (etag, last modified)
    after: str | None = None

    def to_json(self) -> str:
        seen = [[k, e, t] for k, (e, t) in sorted(self.seen.items())]
        return json.dumps({"v": VERSION, "floor": self.floor, "after": self.after, "seen": seen})

    @classmethod
    def from_json(cls, text: str | None) -> ListingCursor:
        if not text:
            return cls()
        data = json.loads(text)
        if data.get("v") != VERSION:
            raise ValueError(f"cursor version {data.get('v')!r} is not {VERSION}: reset the sensor's cursor")
        seen = {k: (e, t) for k, e, t in data["seen"]}
        return cls(floor=data["floor"], seen=seen, after=data["after"])


@dataclass
class Scan:
    new: list[ObjectInfo]  # to handle in this tick, oldest first
    deferred: int  # new objects left for the next tick (over max_objects_per_tick)
    cursor: ListingCursor  # the cursor once `new` is handled


def stamp(obj: ObjectInfo) -> float:
    return obj.last_modified.timestamp()


def scan(
    listing: list[ObjectInfo],
    cursor: ListingCursor,
    limits: ListingLimits = ListingLimits(),
    ordered: Callable[[str], bool] | None = None,
    baseline: dict[str, str] | None = None,
) -> Scan:
    """The new objects of a listing, and the next cursor.

    `baseline` (key -> ETag) marks objects as already handled without a run: a first tick passes what
    raw has copied, so a sensor started on a built lake does not rebuild it.
    """
    candidates = [o for o in listing if cursor.floor is None or stamp(o) >= cursor.floor]
    seen = dict(cursor.seen)
    fresh = []
    for obj in candidates:
        if seen.get(obj.key, ("",))[0] == obj.etag:
            continue
        if baseline and baseline.get(obj.key) == obj.etag:
            seen[obj.key] = (obj.etag, stamp(obj))
        else:
            fresh.append(obj)
    fresh.sort(key=lambda o: (stamp(o), o.key))
    take, rest = fresh[: limits.max_objects_per_tick], fresh[limits.max_objects_per_tick :]
    seen.update((o.key, (o.etag, stamp(o))) for o in take)
    floor = next_floor(cursor.floor, seen, rest, limits)
    kept = {k: v for k, v in seen.items() if floor is None or v[1] >= floor}
    after = next_after(cursor.after, listing, floor, ordered)
    return Scan(new=take, deferred=len(rest), cursor=ListingCursor(floor=floor, seen=kept, after=after))


def next_floor(floor: float | None, seen: dict, rest: list[ObjectInfo], limits: ListingLimits) -> float | None:
    stamps = sorted((t for _, t in seen.values()), reverse=True)
    if not stamps:
        return floor
    proposed = stamps[0] - limits.lookback_seconds
    if len(stamps) > limits.max_cursor_entries:
        # Keep the newest entries only: the floor goes just above the first one left out (ties included).
        proposed = max(proposed, math.nextafter(stamps[limits.max_cursor_entries], math.inf))
    if floor is not None:
        proposed = max(proposed, floor)
    if rest:  # objects left for the next tick must stay at or above the floor
        proposed = min(proposed, stamp(rest[0]))
    return proposed


def next_after(
    after: str | None, listing: list[ObjectInfo], floor: float | None, ordered: Callable[[str], bool] | None
) -> str | None:
    """The last arrival-ordered key below the floor: every key up to it is handled (the invariant)."""
    if ordered is None or floor is None:
        return after
    below = [o.key for o in listing if stamp(o) < floor and ordered(o.key)]
    return max([*below, *([after] if after else [])], default=None)
