"""What a range of days costs Dagster's event log: Dagster's default SQLite storage vs the project's.

    python bench/event_writes.py [DAYS]     # prints one JSON line

The same ranged run (8 daily assets that do nothing, the lake's number of daily assets, over DAYS days from
2013-01-01, one run as `lake run` launches it) on two fresh instances: Dagster's default SQLite storage, and the
project's `dagster.yaml` storage (lake_platform/instance.py, a range's asset events in one transaction). Each
in its own process, one after the other. Reported: seconds from the run's launch to its first step (the
planned events) and to its end (the materialization events), and the ratios project / default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
ASSETS = 8


def one(days: int) -> dict:
    """In this process: the ranged run on the instance in DAGSTER_HOME; its timings and event counts."""
    import dagster as dg

    from lake_platform import partitions

    def make(i: int) -> dg.AssetsDefinition:
        @dg.asset(name=f"daily_{i}", partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN)
        def _asset() -> None:
            return None

        return _asset

    job = dg.Definitions(assets=[make(i) for i in range(ASSETS)], jobs=[dg.define_asset_job("days")]).resolve_job_def(
        "days"
    )
    first = date.fromisoformat(partitions.FIRST_DAY)
    tags = partitions.range_tags(first.isoformat(), (first + timedelta(days - 1)).isoformat())
    with dg.DagsterInstance.get() as instance:
        started = time.time()
        result = job.execute_in_process(instance=instance, tags=tags)
        ended = time.time()
        records = instance.all_logs(result.run_id)
    first_step = min(r.timestamp for r in records if r.dagster_event and r.dagster_event.event_type_value == "STEP_START")
    kinds = [r.dagster_event.event_type_value for r in records if r.dagster_event]
    return {
        "storage": type(instance._event_storage).__name__,
        "pre_step_s": first_step - started,
        "run_s": ended - started,
        "planned_events": kinds.count("ASSET_MATERIALIZATION_PLANNED"),
        "materialization_events": kinds.count("ASSET_MATERIALIZATION"),
    }


def measure(days: int) -> dict:
    results = {}
    for name, project_storage in (("default", False), ("project", True)):
        with tempfile.TemporaryDirectory(prefix="event-writes-") as home:
            config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
            if not project_storage:
                del config["storage"]
            Path(home, "dagster.yaml").write_text(yaml.safe_dump(config))
            env = {**os.environ, "DAGSTER_HOME": home}
            env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
            done = subprocess.run([sys.executable, __file__, "--one", str(days)], env=env, cwd=PROJECT,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"event-writes benchmark ({name}) failed:\n{done.stderr[-4000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    default, project = results["default"], results["project"]
    return {
        "days": days, "assets": ASSETS, **{f"{k}_{name}": v for name, r in results.items() for k, v in r.items()},
        "pre_step_ratio": project["pre_step_s"] / default["pre_step_s"],
        "run_ratio": project["run_s"] / default["run_s"],
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(int(sys.argv[2]))))
    else:
        print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 365)))
