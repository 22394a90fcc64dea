"""The raw zone is immutable and content-addressed: re-deliveries are not copied twice, rewrites are kept."""

import hashlib
import json

from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.raw.copy import copy_to_raw, manifest_key


def test_landed_objects_are_copied_once_with_their_checksum(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    store.put_bytes("landing/sftp/faa/planes.csv", b"tailnum\nN1\n")
    first = copy_to_raw(store, "planes", "landing/sftp/faa/planes")
    second = copy_to_raw(store, "planes", "landing/sftp/faa/planes")
    assert len(first.copied) == 1 and second.copied == [] and second.unchanged == 1
    raw_key = first.raw_keys[0]
    assert store.get_bytes(raw_key) == b"tailnum\nN1\n"
    entry = json.loads(store.get_bytes(manifest_key("planes")))["current"]["landing/sftp/faa/planes.csv"]
    assert entry["sha256"] == hashlib.sha256(b"tailnum\nN1\n").hexdigest()


def test_an_object_overwritten_with_new_content_gets_a_new_raw_copy_and_the_old_one_stays(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    store.put_bytes("landing/sftp/faa/planes.csv", b"tailnum\nN1\n")
    old = copy_to_raw(store, "planes", "landing/sftp/faa/planes").raw_keys[0]
    store.put_bytes("landing/sftp/faa/planes.csv", b"tailnum\nN1\nN2\n")
    report = copy_to_raw(store, "planes", "landing/sftp/faa/planes")
    new = report.raw_keys[0]
    assert new != old
    assert store.get_bytes(old) == b"tailnum\nN1\n"
    assert store.get_bytes(new) == b"tailnum\nN1\nN2\n"
    assert len(json.loads(store.get_bytes(manifest_key("planes")))["history"]) == 2


def test_the_same_content_delivered_again_under_a_new_timestamp_is_not_copied_again(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    store.put_bytes("landing/data_exchange/weather/r1/w.csv", b"origin\nEWR\n")
    copy_to_raw(store, "weather", "landing/data_exchange/weather/")
    store.put_bytes("landing/data_exchange/weather/r1/w.csv", b"origin\nEWR\n")  # rewritten: new mtime/etag
    report = copy_to_raw(store, "weather", "landing/data_exchange/weather/")
    assert report.copied == [] and report.unchanged == 1
