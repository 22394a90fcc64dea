"""Deliveries through raw -> clean as Dagster runs them: a bad file never blocks good ones, a table is never
emptied by a failed delivery, and the versions of a key follow arrival (README, "Onboarding a dataset").

The partner's airlines files are written straight into landing (as the SFTP server stores them), with their
landing times set explicitly, then raw/airlines and clean/airlines are materialized with the local resources.
"""

import hashlib
import os
from pathlib import Path

import dagster as dg
import pytest

from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.clean.assets import FILES_CHECK, clean_assets
from lake_platform.raw.assets import raw_assets
from lake_platform.resources import local_resources

from lake_reads import relation, snapshot_files  # tests/lake_reads.py

LANDING = "landing/sftp/faa"
SELECTION = [dg.AssetKey(["raw", "airlines"]), dg.AssetKey(["clean", "airlines"])]
T0 = 1_700_000_000  # an arbitrary whole second (2023-11-14T22:13:20Z)


@pytest.fixture
def lake(tmp_path, spark):  # `spark` first: the resources' session then reuses the test session
    (tmp_path / LANDING).mkdir(parents=True)
    return tmp_path


def land(root: Path, name: str, body: bytes, at: float | None = None) -> Path:
    path = root / LANDING / name
    path.write_bytes(body)
    if at is not None:
        os.utime(path, (at, at))
    return path


def run(root: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize([*raw_assets, *clean_assets], selection=SELECTION, resources=local_resources(root))


def clean_rows(root: Path) -> set[tuple]:
    import duckdb

    if not snapshot_files(root, "clean", "airlines"):  # a table with no rows has no data file
        return set()
    return set(duckdb.sql(f"select carrier, name from {relation(root, 'clean', 'airlines')}").fetchall())


def files_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == FILES_CHECK)


def test_a_bad_file_beside_good_ones_is_quarantined_and_the_good_ones_are_published_with_a_warning(lake):
    land(lake, "airlines.csv", b"carrier,name\nAA,American Airlines Inc.\n")
    land(lake, "airlines_extra.csv", "carrier,name\nZZ,Zürich Aéro\n".encode("cp1252"))
    land(lake, "airlines_empty.csv", b"")
    result = run(lake)
    assert result.success
    assert clean_rows(lake) == {("AA", "American Airlines Inc.")}
    check = files_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["files_rejected"].value == 2
    table = check.metadata["rejected"].value
    assert "airlines_extra.csv" in table and "not UTF-8: invalid byte 0xfc" in table
    assert "airlines_empty.csv" in table and "empty file (0 bytes)" in table


def test_a_delivery_rejected_whole_keeps_the_table_and_a_header_only_file_empties_it(lake):
    land(lake, "airlines.csv", b"carrier,name\nAA,American Airlines Inc.\n")
    assert run(lake).success and clean_rows(lake) == {("AA", "American Airlines Inc.")}

    land(lake, "airlines.csv", b"")  # a failed delivery: 0 bytes, no header
    result = run(lake)
    assert result.success  # one partner's bad file fails no run
    assert clean_rows(lake) == {("AA", "American Airlines Inc.")}  # and empties no table
    assert not files_check(result).passed
    clean = result.asset_materializations_for_node("clean__airlines")[0]
    assert "every input file was rejected whole" in clean.metadata["location"].value
    assert clean.metadata["snapshot_id"].value == ""  # nothing committed

    land(lake, "airlines.csv", b"carrier,name\n")  # a valid delivery of zero records
    result = run(lake)
    assert result.success and files_check(result).passed
    assert clean_rows(lake) == set()


def test_a_correction_landed_later_in_the_same_second_wins_whatever_its_name_or_content_hash(lake):
    """Both files reach raw in one run, so they share the raw copy's timestamp: before, the content hash in the
    raw key decided, and here it favours the original. Now the landing time (to the microsecond) decides."""
    original = b"carrier,name\nZZ,Old Name Air\n"
    # A correction whose hash sorts before the original's and whose name sorts before it too.
    corrections = (b"carrier,name\nZZ,New Name Air\n" + b"\n" * i for i in range(100))  # blank lines: no records
    correction = next(c for c in corrections if hashlib.sha256(c).digest() < hashlib.sha256(original).digest())
    land(lake, "airlines_z_original.csv", original, at=T0 + 0.2)
    land(lake, "airlines_a_correction.csv", correction, at=T0 + 0.7)  # 0.5 s later, same second
    assert run(lake).success
    assert clean_rows(lake) == {("ZZ", "New Name Air")}


def test_objects_landed_at_the_same_instant_are_ordered_by_landing_key(lake):
    land(lake, "airlines_b.csv", b"carrier,name\nZZ,From b\n", at=T0)
    land(lake, "airlines_a.csv", b"carrier,name\nZZ,From a\n", at=T0)
    assert run(lake).success
    assert clean_rows(lake) == {("ZZ", "From b")}


def test_a_landed_name_that_is_not_utf8_blocks_nothing(lake, caplog):
    land(lake, "airlines.csv", b"carrier,name\nAA,American Airlines Inc.\n")
    (lake / LANDING).joinpath(os.fsdecode(b"airlines_bad\xff.csv")).write_bytes(b"carrier,name\nXX,Bad Name\n")
    assert run(lake).success
    assert clean_rows(lake) == {("AA", "American Airlines Inc.")}
    assert any("is not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_a_first_delivery_rejected_whole_publishes_an_empty_table_for_readers(lake):
    land(lake, "airlines.csv", "carrier,name\nZZ,Zürich Aéro\n".encode("utf-16"))
    result = run(lake)
    assert result.success and not files_check(result).passed
    assert clean_rows(lake) == set()  # the table exists, with the contract's columns, and holds nothing yet
    catalog = LocalCatalog(store=LocalObjectStore(root=str(lake)))
    assert catalog.get("clean", "airlines").columns == [("carrier", "string"), ("name", "string")]
