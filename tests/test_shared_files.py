"""Shared files: the atomic, durable writes of the SharedFiles adapter, and the asset that publishes the daily
route performance as one CSV per day. A reader must never see a partial file, a re-run must replace a day's
file exactly, and a file must hold exactly the table's rows of its day."""

import csv
import hashlib
import io
import os
import stat
from datetime import date

import dagster as dg
import pyarrow as pa
import pytest

from lake_platform import partitions
from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.shared_files import SharedFiles
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.files.assets import files_route_performance_daily
from lake_platform.resources import aws_resources, local_resources

# The table's schema as spark_jobs/route_performance.py writes it (tests/test_dbt_project.py pins the same).
SCHEMA = pa.schema([
    ("flight_date", pa.date32()), ("origin", pa.string()), ("dest", pa.string()), ("flights", pa.int64()),
    ("cancelled", pa.int64()), ("arrived", pa.int64()), ("arrived_late", pa.int64()), ("on_time_rate", pa.float64()),
    ("mean_dep_delay", pa.float64()), ("mean_arr_delay", pa.float64()),
])
COLUMNS = SCHEMA.names


def route(day: str, origin: str, dest: str, flights: int, cancelled: int, late: int, dep: float | None,
          arr: float | None) -> dict:
    arrived = flights - cancelled
    return {
        "flight_date": date.fromisoformat(day), "origin": origin, "dest": dest, "flights": flights,
        "cancelled": cancelled, "arrived": arrived, "arrived_late": late,
        "on_time_rate": 1 - late / arrived if arrived else None, "mean_dep_delay": dep, "mean_arr_delay": arr,
    }


# Two days of routes, listed out of order; 2013-01-03 has no rows.
ROUTES = [
    route("2013-01-02", "LGA", "ORD", 4, 0, 1, 3.25, -2.5),
    route("2013-01-01", "JFK", "LAX", 3, 0, 1, 1.5, 2.0),
    route("2013-01-01", "EWR", "IAH", 2, 2, 0, None, None),  # all cancelled: nulls
    route("2013-01-02", "EWR", "IAH", 3, 1, 2, 20.0, 0.1),
    route("2013-01-01", "EWR", "ATL", 6, 1, 2, 0.1, 1 / 3),
]
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]


def commit_routes(catalog, rows: list[dict], first: str, last: str) -> None:
    """curated.route_performance_daily as the Spark job commits it: the days first..last replaced by `rows`."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    catalog.commit("curated", "route_performance_daily", table, "flight_date", {"first": first, "last": last})


def expected_csv(day: str, rows: list[dict]) -> str:
    """The day's CSV, written here independently of the asset: header, rows by route, nulls empty."""
    lines = [",".join(COLUMNS)]
    for r in sorted((r for r in rows if r["flight_date"].isoformat() == day), key=lambda r: (r["origin"], r["dest"])):
        lines.append(",".join("" if r[c] is None else str(r[c]) for c in COLUMNS))
    return "\n".join(lines) + "\n"


@pytest.fixture
def lake(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    catalog = LocalCatalog(store=store)
    shared = local_resources(tmp_path / "lake")["shared_files"]
    return {"store": store, "catalog": catalog, "shared_files": shared}


def publish(resources: dict, first: str, last: str | None = None) -> dict:
    """Materialize files/route_performance_daily for first..last; returns the metadata of its first day."""
    one_day = last is None
    result = dg.materialize(
        [files_route_performance_daily],
        resources=resources,
        partition_key=first if one_day else None,
        tags=None if one_day else partitions.range_tags(first, last),
    )
    events = result.asset_materializations_for_node("files__route_performance_daily")
    assert sorted(e.partition for e in events) == [
        k for k in partitions.DAILY.get_partition_keys() if first <= k <= (last or first)
    ]
    return {k: v.value for k, v in events[0].metadata.items()}


# --- the adapter -----------------------------------------------------------------------------------------------------
def test_a_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    shared = SharedFiles(root=str(tmp_path))
    umask = os.umask(0o022)
    try:
        shared.write_bytes("mode.csv", b"1\n")
    finally:
        os.umask(umask)
    # Created as open() creates files (0666 less the umask), not mkstemp's 0600: other users' consumers read it.
    assert (tmp_path / "mode.csv").stat().st_mode & 0o777 == 0o644
    (tmp_path / "mode.csv").unlink()
    first = shared.write_bytes("a/day.csv", b"x,y\n1,2\n")
    assert first.path == (tmp_path / "a" / "day.csv").resolve()
    assert (first.size, first.sha256) == (8, hashlib.sha256(b"x,y\n1,2\n").hexdigest())
    shared.write_bytes("a/day.csv", b"x,y\n")
    assert (tmp_path / "a" / "day.csv").read_bytes() == b"x,y\n"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["day.csv"]


def test_a_failure_mid_write_keeps_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch):
    shared = SharedFiles(root=str(tmp_path))
    shared.write_bytes("day.csv", b"old\n")
    seen = []
    real_fsync = os.fsync

    def failing_fsync(fd):
        # Fails at the fsync of the temporary file, its content written: the target must not have changed.
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        assert (tmp_path / "day.csv").read_bytes() == b"old\n"
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        shared.write_bytes("day.csv", b"new content\n")
    monkeypatch.setattr(os, "fsync", real_fsync)
    # The write went to a hidden temporary file beside the target (same folder: the rename is atomic) ...
    assert len(seen[0]) == 2 and seen[0][0].startswith(".tmp-") and seen[0][0].endswith("-day.csv"), seen
    # ... which the failure removed; the old file is intact.
    assert [p.name for p in tmp_path.iterdir()] == ["day.csv"]
    assert (tmp_path / "day.csv").read_bytes() == b"old\n"


def test_a_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    shared = SharedFiles(root=str(tmp_path))
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", None)) or real_replace(a, b))
    shared.write_bytes("day.csv", b"a\n")
    assert events == [("fsync", False), ("replace", None), ("fsync", True)]


def test_paths_outside_the_root_are_refused(tmp_path):
    shared = SharedFiles(root=str(tmp_path / "shared"), create_root=True)
    for bad in ("../escape.csv", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="not inside the shared files root"):
            shared.write_bytes(bad, b"x")
    assert not (tmp_path / "escape.csv").exists()


def test_a_missing_root_is_created_locally_and_an_error_on_aws(tmp_path, monkeypatch):
    local = local_resources(tmp_path / "lake")["shared_files"]
    assert not (tmp_path / "lake" / "shared").exists()  # loading the resources creates nothing
    local.write_bytes("x.csv", b"1\n")
    assert (tmp_path / "lake" / "shared" / "x.csv").read_bytes() == b"1\n"

    monkeypatch.setenv("LAKE_SHARED_FILES_PATH", str(tmp_path / "mnt" / "shared"))
    aws = aws_resources(tmp_path)["shared_files"]
    with dg.build_resources({"shared_files": aws}) as resources:  # the EnvVar resolved, as when a run starts
        assert resources.shared_files.root == str(tmp_path / "mnt" / "shared")
        missing = "does not exist: on AWS .* EFS access point .*LAKE_SHARED_FILES_PATH"
        with pytest.raises(FileNotFoundError, match=missing):
            resources.shared_files.write_bytes("x.csv", b"1\n")
    assert not (tmp_path / "mnt").exists()  # never written into the container's own disk


# --- the asset -------------------------------------------------------------------------------------------------------
def read_csv(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_the_asset_writes_one_csv_per_day_with_the_days_rows(lake):
    commit_routes(lake["catalog"], ROUTES, "2013-01-01", "2013-01-03")
    metadata = publish(lake, "2013-01-01", "2013-01-03")
    shared = lake["shared_files"].path("route_performance_daily")
    assert sorted(p.name for p in shared.iterdir()) == [f"{d}.csv" for d in DAYS]
    for day in DAYS:
        text = (shared / f"{day}.csv").read_text()
        assert text == expected_csv(day, ROUTES), day
    day1 = read_csv(shared / "2013-01-01.csv")
    assert day1[0] == COLUMNS
    assert [r[1:3] for r in day1[1:]] == [["EWR", "ATL"], ["EWR", "IAH"], ["JFK", "LAX"]]  # by route
    assert day1[2] == ["2013-01-01", "EWR", "IAH", "2", "2", "0", "0", "", "", ""]  # integers stay integers
    assert (shared / "2013-01-03.csv").read_text() == ",".join(COLUMNS) + "\n"  # no rows: the header alone

    assert metadata["rows_in_run"] == 5 and metadata["files_written"] == 3 and metadata["header_only_files"] == 1
    assert metadata["days"] == "2013-01-01 .. 2013-01-03 (3 days)"
    assert metadata["folder"] == str(shared)
    for day in DAYS:
        entry, data = metadata["files"][day], (shared / f"{day}.csv").read_bytes()
        assert entry == {"path": str(shared / f"{day}.csv"), "rows": len(read_csv(shared / f"{day}.csv")) - 1,
                         "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert not any(p.name.startswith(".tmp-") for p in shared.iterdir())


def test_rematerializing_a_day_replaces_its_file_exactly_and_leaves_other_days(lake):
    commit_routes(lake["catalog"], ROUTES, "2013-01-01", "2013-01-03")
    publish(lake, "2013-01-01", "2013-01-03")
    shared = lake["shared_files"].path("route_performance_daily")
    day2_before = (shared / "2013-01-02.csv").read_bytes()
    day1_before = (shared / "2013-01-01.csv").stat()

    # 2013-01-01 recomputed with one route fewer and a changed count: the file is the new rows, no stale route.
    revised = [route("2013-01-01", "JFK", "LAX", 5, 1, 0, -1.0, 4.75), ROUTES[4]]
    commit_routes(lake["catalog"], revised, "2013-01-01", "2013-01-01")
    metadata = publish(lake, "2013-01-01")
    assert (shared / "2013-01-01.csv").read_text() == expected_csv("2013-01-01", revised)
    assert metadata["dagster/row_count"] == 2
    data = (shared / "2013-01-01.csv").read_bytes()
    assert (metadata["bytes"], metadata["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert metadata["path"] == str(shared / "2013-01-01.csv")
    assert (shared / "2013-01-01.csv").stat().st_ino != day1_before.st_ino  # a new file renamed into place
    assert (shared / "2013-01-02.csv").read_bytes() == day2_before  # other days untouched

    # The same rows again: byte for byte the same file.
    assert publish(lake, "2013-01-01")["sha256"] == metadata["sha256"]

    # A day emptied in the table (e.g. its flights removed) becomes header-only, not a stale file.
    commit_routes(lake["catalog"], [], "2013-01-02", "2013-01-02")
    assert publish(lake, "2013-01-02")["dagster/row_count"] == 0
    assert (shared / "2013-01-02.csv").read_text() == ",".join(COLUMNS) + "\n"


def test_the_asset_before_the_table_exists_says_so_and_writes_nothing(lake):
    with pytest.raises(LookupError, match="lake_curated.route_performance_daily is not in the catalog"):
        dg.materialize([files_route_performance_daily], resources=lake, partition_key="2013-01-01")
    assert not (lake["shared_files"].path("route_performance_daily") / "2013-01-01.csv").exists()
