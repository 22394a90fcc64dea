"""The object inventory: one row per object in the raw zone, of every dataset, kept incrementally.

The raw manifests (`raw/_manifests/<dataset>.json`) list every raw copy with its SHA-256, so the raw zone
is never listed nor re-hashed. Raw objects are immutable: an object described once is never read again.
Each run reads only the objects not yet in the table, then publishes table + new rows as a new version
through the catalog (`lake_raw.object_inventory`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lake_platform.adapters.catalog import Catalog, new_version, version_key
from lake_platform.adapters.storage import ObjectStore
from lake_platform.raw.copy import read_manifest
from lake_platform.raw.inspect import describe

if TYPE_CHECKING:
    import pyarrow as pa

ZONE, TABLE = "raw", "object_inventory"
DESCRIPTION = "every object of the raw zone: size, checksum, content type, image/audio/page/line facts"
# Spark simpleString types, as the catalog records them.
COLUMNS = [
    ("key", "string"),
    ("dataset", "string"),
    ("landing_key", "string"),
    ("size", "bigint"),
    ("sha256", "string"),
    ("content_type", "string"),
    ("image_width", "int"),
    ("image_height", "int"),
    ("audio_duration_seconds", "double"),
    ("audio_sample_rate", "int"),
    ("audio_channels", "int"),
    ("page_count", "int"),
    ("line_count", "bigint"),
    ("note", "string"),
    ("arrived_at", "timestamp"),
    ("inspected_at", "timestamp"),
]


def schema():
    """The Parquet schema; pyarrow is imported when a run needs it, not when the definitions load."""
    import pyarrow as pa

    arrow = {
        "string": pa.string(),
        "bigint": pa.int64(),
        "int": pa.int32(),
        "double": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, arrow[kind]) for name, kind in COLUMNS])


@dataclass
class InventoryReport:
    table: pa.Table
    inspected: list[str] = field(default_factory=list)  # raw keys read by this run
    version: str | None = None
    location: str | None = None


def raw_objects(store: ObjectStore) -> dict[str, dict]:
    """raw key -> its manifest entry (with `dataset`), for every raw copy of every dataset."""
    found = {}
    for manifest in store.list("raw/_manifests/"):
        dataset = manifest.key.removeprefix("raw/_manifests/").removesuffix(".json")
        doc = read_manifest(store, dataset)
        for entry in [*doc["history"], *doc["current"].values()]:
            found[entry["raw_key"]] = {**entry, "dataset": dataset}
    return found


def read_inventory(store: ObjectStore, catalog: Catalog) -> pa.Table | None:
    """The published inventory, read through the store from its current version folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    info = catalog.get(ZONE, TABLE)
    if info is None:
        return None
    prefix = version_key(ZONE, TABLE, info.version) + "/"
    parts = [pq.read_table(pa.BufferReader(store.get_bytes(o.key))) for o in store.list(prefix)]
    return pa.concat_tables([p.cast(schema()) for p in parts]) if parts else schema().empty_table()


def inventory_row(store: ObjectStore, entry: dict, now: datetime) -> dict:
    try:
        body = store.get_bytes(entry["raw_key"])
    except Exception as error:
        raise RuntimeError(
            f"raw object {store.uri(entry['raw_key'])} of dataset {entry['dataset']!r} is in the raw "
            f"manifest but cannot be read: {error}"
        ) from error
    return {
        "key": entry["raw_key"],
        "dataset": entry["dataset"],
        "landing_key": entry["landing_key"],
        "size": len(body),
        "sha256": entry["sha256"],
        **describe(entry["raw_key"], body),
        "arrived_at": datetime.fromisoformat(entry["arrived_at"]),
        "inspected_at": now,
    }


def update_inventory(store: ObjectStore, catalog: Catalog, run_id: str) -> InventoryReport:
    """Describe the raw objects not yet in the inventory and publish the table with them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    existing = read_inventory(store, catalog)
    known = set(existing.column("key").to_pylist()) if existing is not None else set()
    new = [entry for key, entry in sorted(raw_objects(store).items()) if key not in known]
    if existing is not None and not new:
        return InventoryReport(table=existing)
    now = datetime.now(timezone.utc)
    rows = pa.Table.from_pylist([inventory_row(store, e, now) for e in new], schema=schema())
    table = pa.concat_tables([existing, rows]) if existing is not None else rows
    version = new_version(run_id)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.put_bytes(f"{version_key(ZONE, TABLE, version)}/part-00000.parquet", buffer.getvalue())
    info = catalog.publish(ZONE, TABLE, version, COLUMNS, DESCRIPTION)
    return InventoryReport(table, [e["raw_key"] for e in new], version, info.location)
