"""`make dev`'s promise: in the Dagster UI, "Materialize all" builds the whole lake (January 2013 here).

Flights and weather are daily-partitioned, so "Materialize all" opens Dagster's backfill dialog: the test
picks January's days as a user would (typing the range), launches the backfill and waits for it.

Drives Debian's Chromium with Playwright against a real `dagster dev` on loopback. Skipped, with the
reason shown, where Chromium is not installed; `.ci/run` installs it so CI always runs this test.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from lake_platform.settings import PROJECT_ROOT
from lake_platform.sources.seed import seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Chromium (apt-get install chromium)")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui_lake")
    home = tmp_path_factory.mktemp("ui_dagster_home")
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    seed(root, months=[1], log=lambda _: None)
    port = free_port()
    # Sensors and automation off: the backfill launched below is then the only work (with them on, the
    # pollers would start building the lake on their own as soon as `dagster dev` is up).
    env = {**os.environ, "LAKE_ROOT": str(root), "DAGSTER_HOME": str(home), "LAKE_ENV": "local",
           "LAKE_AUTOMATION": "off"}
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=home, env=env, stdout=open(home / "dagster_dev.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", 180)
        yield f"http://127.0.0.1:{port}", home, root
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_materialize_all_in_the_ui_builds_every_asset(dagster_dev):
    from playwright.sync_api import sync_playwright

    url, home, root = dagster_dev
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The first visit opens a "Join the Dagster community" dialog at an unpredictable moment; whenever
        # it covers the page, Playwright dismisses it before the next action.
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"),
            lambda: page.get_by_role("button", name="Skip").click(),
        )
        page.goto(f"{url}/asset-groups", wait_until="networkidle")
        materialize = page.get_by_role("button", name="Materialize all").first
        materialize.wait_for(timeout=60_000)
        materialize.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Show all partitions").click()  # the dialog opens on the last 90 days
        days = dialog.locator("input").first
        days.fill("[2013-01-01...2013-01-31]")
        days.press("Enter")
        dialog.get_by_text("31 partitions").wait_for(timeout=30_000)
        dialog.get_by_role("button", name="Launch backfill").click()
        dialog.wait_for(state="hidden", timeout=60_000)
        browser.close()

    # The instance's storage is under DAGSTER_HOME (dagster.yaml: `base_dir: {env: DAGSTER_HOME}`), read when
    # the instance opens.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        instance = dg.DagsterInstance.from_config(str(home))
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        backfills = instance.get_backfills()
        if backfills and backfills[0].status.value != "REQUESTED":
            break
        time.sleep(5)
    (backfill,) = instance.get_backfills()
    log = (home / "dagster_dev.log").read_text()[-3000:]
    assert backfill.status.value in ("COMPLETED", "COMPLETED_SUCCESS"), (backfill.status, log)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), log
    materialized = set()
    for run in runs:
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        materialized |= {rec.event_log_entry.dagster_event.asset_key.to_user_string() for rec in records}
    expected = (Path(__file__).parent / "snapshots" / "asset_keys.txt").read_text().split()
    assert sorted(materialized) == expected
    assert (root / "warehouse" / "lake.duckdb").exists()
