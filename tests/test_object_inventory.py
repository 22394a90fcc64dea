"""The object inventory: exact facts of the synthetic share samples, every raw dataset covered, incremental.

The expected figures are those the seed draws (sources/share.py): PNGs 64x48, 80x60 and 32x32; WAVs of
1.0 s and 1.5 s at 8 kHz and 0.5 s at 16 kHz; PDFs of 1, 2 and 3 pages; a 12-line log, an 11-line
procedure, an 8-line parts list (header + 7 parts).
"""

import hashlib
import io
import json
import random
from datetime import date

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.datasync import SHARE_PREFIX, LocalDataSync
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.ingest.share import landing_share
from lake_platform.raw.copy import copy_to_raw, manifest_key
from lake_platform.raw.inspect import describe
from lake_platform.raw.inventory import raw_objects, update_inventory
from lake_platform.raw.unstructured import object_inventory, raw_share
from lake_platform.sources.share import SHARE_DIR, add_share_files, seed_share

EXPECTED = {
    "synthetic_engine_photo_1.png": {"content_type": "image/png", "image_width": 64, "image_height": 48},
    "synthetic_engine_photo_2.png": {"content_type": "image/png", "image_width": 80, "image_height": 60},
    "synthetic_engine_photo_3.png": {"content_type": "image/png", "image_width": 32, "image_height": 32},
    "synthetic_cockpit_audio_1.wav": {"content_type": "audio/wav", "audio_duration_seconds": 1.0,
                                      "audio_sample_rate": 8000, "audio_channels": 1},
    "synthetic_cockpit_audio_2.wav": {"content_type": "audio/wav", "audio_duration_seconds": 1.5,
                                      "audio_sample_rate": 8000, "audio_channels": 1},
    "synthetic_cockpit_audio_3.wav": {"content_type": "audio/wav", "audio_duration_seconds": 0.5,
                                      "audio_sample_rate": 16000, "audio_channels": 1},
    "synthetic_inspection_1.pdf": {"content_type": "application/pdf", "page_count": 1},
    "synthetic_inspection_2.pdf": {"content_type": "application/pdf", "page_count": 2},
    "synthetic_inspection_3.pdf": {"content_type": "application/pdf", "page_count": 3},
    "synthetic_maintenance_log_1.txt": {"content_type": "text/plain", "line_count": 12},
    "synthetic_procedure.md": {"content_type": "text/markdown", "line_count": 11},
    "synthetic_parts_list.csv": {"content_type": "text/csv", "line_count": 8},
}
FACTS = ["content_type", "image_width", "image_height", "audio_duration_seconds", "audio_sample_rate",
         "audio_channels", "page_count", "line_count"]
PLANES = b"tailnum,year\nN10156,2004\nN102UW,1998\n"


def sync_and_copy(lake, store) -> None:
    state = str(lake / "sources" / "datasync_task_state.json")
    LocalDataSync(share_dir=str(lake / SHARE_DIR), state_path=state).sync(dg.build_asset_context(), store)
    copy_to_raw(store, "share", SHARE_PREFIX)


@pytest.fixture
def lake(tmp_path):
    """The seeded share landed and copied to raw, beside a partner CSV and a DMS Parquet file."""
    seed_share(tmp_path, log=lambda _: None)
    store = LocalObjectStore(root=str(tmp_path))
    sync_and_copy(tmp_path, store)
    store.put_bytes("landing/sftp/faa/planes.csv", PLANES)
    copy_to_raw(store, "planes", "landing/sftp/faa/planes")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"flight_id": [1, 2, 3]}), buffer)
    store.put_bytes("landing/dms/ops/flights/LOAD00000001.parquet", buffer.getvalue())
    copy_to_raw(store, "flights", "landing/dms/ops/flights/")
    return tmp_path


def rows_by_name(table) -> dict[str, dict]:
    return {r["key"].rsplit("/", 1)[-1]: r for r in table.to_pylist()}


def test_every_synthetic_sample_is_described_with_its_exact_facts(lake):
    store = LocalObjectStore(root=str(lake))

    report = update_inventory(store, LocalCatalog(store=store), "run-0001")

    rows = rows_by_name(report.table)
    for name, expected in EXPECTED.items():
        found = {k: v for k, v in rows[name].items() if k in FACTS and v is not None}
        assert found == expected, name
        assert rows[name]["dataset"] == "share" and rows[name]["note"] is None


def test_the_inventory_covers_every_raw_dataset_with_the_manifest_checksums(lake):
    store = LocalObjectStore(root=str(lake))

    table = update_inventory(store, LocalCatalog(store=store), "run-0001").table

    rows = rows_by_name(table)
    assert {r["dataset"] for r in rows.values()} == {"share", "planes", "flights"}
    assert table.num_rows == len(EXPECTED) + 2
    assert (rows["planes.csv"]["content_type"], rows["planes.csv"]["line_count"]) == ("text/csv", 3)
    assert rows["LOAD00000001.parquet"]["content_type"] == "application/vnd.apache.parquet"
    manifest = json.loads(store.get_bytes(manifest_key("planes")))["current"]["landing/sftp/faa/planes.csv"]
    assert rows["planes.csv"]["sha256"] == manifest["sha256"] == hashlib.sha256(PLANES).hexdigest()
    assert rows["planes.csv"]["size"] == len(PLANES)


def test_a_second_run_inspects_nothing_and_a_new_object_is_inspected_once(lake, monkeypatch):
    store = LocalObjectStore(root=str(lake))
    catalog = LocalCatalog(store=store)
    first = update_inventory(store, catalog, "run-0001")
    reads = []
    real_get = LocalObjectStore.get_bytes
    monkeypatch.setattr(LocalObjectStore, "get_bytes", lambda self, key: reads.append(key) or real_get(self, key))

    second = update_inventory(store, catalog, "run-0002")
    add_share_files(lake, date(2013, 1, 2), random.Random(7), log=lambda _: None)
    sync_and_copy(lake, store)
    reads.clear()
    third = update_inventory(store, catalog, "run-0003")
    fourth = update_inventory(store, catalog, "run-0004")

    assert len(first.inspected) == first.table.num_rows
    assert second.inspected == [] and second.version is None
    new_keys = sorted(set(raw_objects(store)) - set(first.inspected))
    assert any(k.endswith("synthetic_inspection_2013-01-02.pdf") for k in new_keys)
    assert sorted(third.inspected) == new_keys
    assert sorted(k for k in reads if k in new_keys) == new_keys, "each new object read exactly once"
    assert not [k for k in reads if k in first.inspected], "objects already described are not read again"
    assert fourth.inspected == []
    keys = fourth.table.column("key").to_pylist()
    assert len(keys) == len(set(keys)) == first.table.num_rows + len(new_keys)


def test_a_landing_object_rewritten_with_new_content_keeps_both_raw_copies_in_the_inventory(lake):
    store = LocalObjectStore(root=str(lake))
    catalog = LocalCatalog(store=store)
    update_inventory(store, catalog, "run-0001")
    with open(lake / SHARE_DIR / "docs" / "synthetic_maintenance_log_1.txt", "a") as log:
        log.write("2013-01-02 N999UA APU: recheck\n")
    sync_and_copy(lake, store)

    report = update_inventory(store, catalog, "run-0002")

    logs = [r for r in report.table.to_pylist() if r["key"].endswith("synthetic_maintenance_log_1.txt")]
    assert sorted(r["line_count"] for r in logs) == [12, 13]
    assert len(report.inspected) == 1


def test_the_published_inventory_is_readable_at_its_catalog_location(lake):
    store = LocalObjectStore(root=str(lake))
    catalog = LocalCatalog(store=store)
    update_inventory(store, catalog, "run-0001")

    location = catalog.location("raw", "object_inventory")
    with duckdb.connect() as conn:
        pages = conn.execute(f"select sum(page_count) from '{location}/*.parquet'").fetchone()[0]

    assert pages == 1 + 2 + 3
    assert catalog.get("raw", "object_inventory").columns[0] == ("key", "string")


def test_content_type_comes_from_the_signature_and_a_lying_extension_is_noted():
    jpeg = (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0
        b"\xff\xc0\x00\x11\x08\x01\xe0\x02\x80\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"  # SOF0: 480 x 640
        b"\xff\xd9"
    )
    assert describe("photo.jpg", jpeg) == {
        "content_type": "image/jpeg", "image_width": 640, "image_height": 480, "note": None
    }
    csv_named_parquet = describe("flights.parquet", b"flight_id\n1\n")
    assert csv_named_parquet["content_type"] == "text/plain" and csv_named_parquet["line_count"] == 2
    assert "named .parquet" in csv_named_parquet["note"]
    truncated = describe("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    assert truncated["content_type"] == "image/png" and "unreadable image/png header" in truncated["note"]


def test_the_share_and_inventory_assets_materialize_from_landing_to_the_catalog(tmp_path):
    seed_share(tmp_path, log=lambda _: None)
    store = LocalObjectStore(root=str(tmp_path))
    state = str(tmp_path / "sources" / "datasync_task_state.json")
    resources = {
        "store": store,
        "catalog": LocalCatalog(store=store),
        "datasync": LocalDataSync(share_dir=str(tmp_path / SHARE_DIR), state_path=state),
    }

    result = dg.materialize([landing_share, raw_share, object_inventory], resources=resources)
    again = dg.materialize([object_inventory], resources=resources, selection=[object_inventory.key])

    inventory = result.asset_materializations_for_node(object_inventory.op.name)[0].metadata
    assert inventory["dagster/row_count"].value == len(EXPECTED)
    assert inventory["objects_inspected"].value == len(EXPECTED)
    rerun = again.asset_materializations_for_node(object_inventory.op.name)[0].metadata
    assert rerun["objects_inspected"].value == 0 and rerun["version"].value == "unchanged"
