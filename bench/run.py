"""Where the lake's time goes: the real pipeline in temporary lakes, and references, in one run.

    make bench         # scale 1 and 3 builds, one new day after each, the sensor tick at 100,000 objects
    make bench-quick   # scale 1 build, a one-month lake's incremental day, the sensor tick at 10,000 objects

Every pipeline run is a real `lake seed` / `lake run` / `lake simulate` process on a lake and a Dagster
instance in a temporary folder (the same commands as the README's), timed from outside; the reference is
`bench/reference.py`, the same logical work in one DuckDB process, run on the same landed files right after
the pipeline. Writes `bench/results/latest.json` and `bench/results/latest.md` (git-ignored). Figures:

  scale_growth   full build seconds at scale 1 (and 3), the DuckDB reference's, and marginal_ratio =
                 (full_s_scale3 - full_s_scale1) / (duckdb_s_scale3 - duckdb_s_scale1)
  incremental    one_day_s: `lake run --days D..D` for the day `lake simulate --days 1` added after the build;
                 one_day_ratio = one_day_s / the build's seconds; flat_ratio = one_day_s_scale3 / one_day_s
  events         from the run's event log: events_per_day = planned + done materializations of daily
                 partitions / days in the range; pre_step_s = first step start - the run's first event
                 (Dagster plans the run, writing the planned events, before any step runs)
  sensor_tick    one landing-sensor tick over N landed objects with 10 new (moto): seconds and S3 calls
  model_serve    one flight per request to `lake model serve` serving the scale-1 lake's model
                 (bench/model_serve.py): p50/p95/p99 ms per request, the handlers' in-process p50/p95, p95_ratio
  event_writes   a range of 8 daily assets (365 days; 60 quick) on Dagster's default SQLite storage and on
                 the project's (bench/event_writes.py): pre-step and run seconds, and their ratios
  peak_rss_mb    the largest sum of the proportional set sizes (PSS) of the `lake run` process tree (Python,
                 Spark's JVM and workers), sampled every second, and the step running then (`peak_step`)
  steps          seconds per step of the full build (step start -> step success), from the run's events
  files          per daily table after the largest build: days, Parquet files, most files in one day, mean size
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
RESULTS = BENCH / "results"
LAKE = [str(Path(sys.executable).with_name("lake"))]  # the venv's `lake` command
PARTITIONED_EVENTS = {"ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION"}


class Lake:
    """A temporary lake and Dagster instance, driven with the `lake` CLI in subprocesses."""

    def __init__(self, folder: Path):
        self.root, self.home = folder / "lake", folder / "dagster_home"
        self.home.mkdir(parents=True)
        (self.home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
        self.env = {**os.environ, "LAKE_ENV": "local", "LAKE_ROOT": str(self.root), "DAGSTER_HOME": str(self.home)}

    def lake(self, *args: str) -> dict:
        """Run `lake ARGS`; its wall seconds and the peak resident memory of its process tree (MB)."""
        started, wall = time.perf_counter(), time.time()
        process = subprocess.Popen([*LAKE, *args], env=self.env, cwd=PROJECT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        peak = _PeakRss(process.pid)
        output = process.communicate()[0]
        seconds = time.perf_counter() - started
        peak.stop()
        if process.returncode != 0:
            raise RuntimeError(f"lake {' '.join(args)} failed ({process.returncode}):\n{output[-4000:]}")
        return {"seconds": seconds, "peak_rss_mb": peak.mb, "peak_at": peak.at, "peak_by_command_mb": peak.by_command,
                "wall_started": wall}

    def last_run_events(self) -> dict:
        """Event counts, pre-step seconds and step times of the instance's latest run."""
        import dagster as dg

        os.environ["DAGSTER_HOME"] = str(self.home)  # dagster.yaml: the storage is under DAGSTER_HOME
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            run = instance.get_runs(limit=1)[0]
            records = instance.all_logs(run.run_id)
        by_type: dict[str, int] = {}
        partitioned, starts, steps, windows = 0, {}, {}, {}
        for record in records:
            event = record.dagster_event
            kind = event.event_type_value if event else "LOG"
            by_type[kind] = by_type.get(kind, 0) + 1
            if event and kind in PARTITIONED_EVENTS and event.partition:
                partitioned += 1
            if kind == "STEP_START":
                starts[event.step_key] = record.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                steps[event.step_key] = record.timestamp - starts.get(event.step_key, record.timestamp)
                windows[event.step_key] = (starts.get(event.step_key, record.timestamp), record.timestamp)
        first_step = min(starts.values()) if starts else None
        return {
            "run_id": run.run_id,
            "events": len(records),
            "events_by_type": by_type,
            "partition_events": partitioned,
            "pre_step_s": (first_step - records[0].timestamp) if first_step else None,
            "first_event_ts": records[0].timestamp,
            "first_step_ts": first_step,
            "steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])),
            "windows": windows,
        }


class _PeakRss:
    """Samples the memory of a process and its descendants (from /proc) until stopped: the largest sum of
    their proportional set sizes (PSS: a page shared by N processes, e.g. PySpark's forked workers, counts
    1/N in each), and at that moment, the time and each process's share by command name."""

    def __init__(self, pid: int, every: float = 1.0):
        self.mb, self.at, self.by_command = 0.0, None, {}
        self._pid, self._every, self._done = pid, every, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree(self) -> dict[int, tuple[str, int]]:
        """pid -> (command, PSS bytes) for the process and its descendants."""
        parents, found = {}, {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        tree, frontier = {self._pid}, [self._pid]
        while frontier:
            parent = frontier.pop()
            children = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(children)
            frontier += children
        for pid in tree:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                command = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            pss = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
            found[pid] = (command, pss * 1024)
        return found

    def _sample(self) -> None:
        while not self._done.is_set():
            tree = self._tree()
            total = sum(pss for _, pss in tree.values()) / 2**20
            if total > self.mb:
                self.mb, self.at = total, time.time()
                self.by_command = {}
                for command, pss in tree.values():
                    self.by_command[command] = self.by_command.get(command, 0) + pss / 2**20
            self._done.wait(self._every)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


DAILY_TABLES = ("clean/flights", "clean/weather", "curated/flight_features", "curated/route_performance_daily",
                "ml/delay_predictions")


def table_files(lake: Lake) -> dict:
    """Per daily table of the lake: day folders, Parquet files, the most files in one day, mean file size."""
    from lake_platform.adapters.catalog import ICEBERG_ZONES

    out = {}
    for table in DAILY_TABLES:
        per_day = snapshot_days(lake, table) if table.split("/")[0] in ICEBERG_ZONES else folder_days(lake, table)
        files = [f for day in per_day for f in day]
        out[table] = {"days": len(per_day), "files": len(files),
                      "max_files_per_day": max((len(day) for day in per_day), default=0),
                      "mean_file_kb": sum(f.stat().st_size for f in files) / len(files) / 1024 if files else 0}
    return out


def folder_days(lake: Lake, table: str) -> list[list[Path]]:
    """A version-folder table's Parquet files, per `<column>=<day>` folder."""
    folder = (lake.root / table).resolve()
    return [sorted(day.glob("*.parquet")) for day in folder.glob("*=*") if day.is_dir()]


def snapshot_days(lake: Lake, table: str) -> list[list[Path]]:
    """An Iceberg table's data files in its current snapshot, per day (the partition's value)."""
    from lake_platform.adapters.iceberg import LocalIcebergCatalog

    zone, name = table.split("/")
    loaded = LocalIcebergCatalog(lake.root).pyiceberg().load_table((f"lake_{zone}", name))
    days: dict = {}
    for task in loaded.scan().plan_files():
        days.setdefault(tuple(task.file.partition), []).append(Path(task.file.file_path.removeprefix("file:")))
    return list(days.values())


def days_of(lake: Lake) -> tuple[str, str]:
    sys.path.insert(0, str(PROJECT))
    from lake_platform.sources.operations import days_with_data

    return days_with_data(lake.root)


def n_days(first: str, last: str) -> int:
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1


def reference(lake: Lake, out: Path) -> dict:
    """bench/reference.py in its own process, on the lake's landed files."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(BENCH / "reference.py"), str(lake.root), str(out)],
                          capture_output=True, text=True, cwd=PROJECT)
    if done.returncode != 0:
        raise RuntimeError(f"reference pipeline failed:\n{done.stderr[-4000:]}")
    return {"seconds": json.loads(done.stdout)["seconds"], "process_s": time.perf_counter() - started}


def build(folder: Path, scale: int, months: list[int] | None, log, one_day: bool = True) -> dict:
    """Seed, build everything (timed), read the run's events, run the reference, then (`one_day`) one new
    day (timed)."""
    lake = Lake(folder)
    seed_args = ["seed", "--scale", str(scale)] + (["--months", ",".join(map(str, months))] if months else [])
    log(f"  lake {' '.join(seed_args)}")
    lake.lake(*seed_args)
    first, last = days_of(lake)
    log(f"  lake run ({first}..{last})")
    full = lake.lake("run")
    events = lake.last_run_events()
    events["process_to_first_step_s"] = events["first_step_ts"] - full["wall_started"]
    files = table_files(lake)
    # The step running when the process tree's memory peaked (steps run one at a time, in one process).
    full["peak_step"] = next((step for step, (a, b) in events["windows"].items() if a <= (full["peak_at"] or 0) <= b),
                             "between steps")
    log(f"    {full['seconds']:.1f} s, pre-step {events['pre_step_s']:.1f} s; reference")
    ref = reference(lake, folder / "reference")
    log(f"    reference {ref['seconds']:.2f} s")
    result = {
        "scale": scale, "months": months or list(range(1, 13)), "days": n_days(first, last),
        "full_s": full["seconds"], "peak_rss_mb": full["peak_rss_mb"], "peak_step": full["peak_step"],
        "peak_by_command_mb": full["peak_by_command_mb"], "events": events, "files": files,
        "duckdb_s": ref["seconds"],
    }
    if one_day:
        log("  lake simulate --days 1, then `lake run` of that day")
        lake.lake("simulate", "--days", "1")
        _, new_day = days_of(lake)
        one = lake.lake("run", "--days", f"{new_day}..{new_day}")
        result.update(one_day_s=one["seconds"], one_day_steps=lake.last_run_events()["steps"], one_day=new_day)
        log(f"    one new day ({new_day}) {one['seconds']:.1f} s")
    return result


def script(name: str, argument: int, *more: str) -> dict:
    """`python bench/NAME.py ARGUMENT [MORE]` in its own process; the JSON line it prints last."""
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), str(argument), *more],
                          capture_output=True, text=True, cwd=PROJECT)
    if done.returncode != 0:
        raise RuntimeError(f"bench/{name}.py failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(quick: bool) -> dict:
    log = lambda text: print(text, flush=True)  # noqa: E731
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    builds = {}
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as tmp:
        # Quick: the year's build without its new day; the incremental figures come from the month's lake.
        plan = [("scale1", 1, None, not quick)] + ([("month", 1, [1], True)] if quick else [("scale3", 3, None, True)])
        for name, scale, months, one_day in plan:
            log(f"{name}: scale {scale}" + (f", months {months}" if months else ""))
            builds[name] = build(Path(tmp) / name, scale, months, log, one_day)
        objects = 10_000 if quick else 100_000
        log(f"sensor tick over {objects:,} objects")
        tick = script("sensor_tick", objects)
        write_days = 60 if quick else 365
        log(f"event writes of a {write_days}-day range: Dagster's default storage, then the project's")
        writes = script("event_writes", write_days)
        requests = 200 if quick else 500
        log(f"model server: {requests} one-flight requests to `lake model serve` with the scale-1 lake's model")
        serving = script("model_serve", requests, str(Path(tmp) / "scale1" / "lake"))

    s1 = builds["scale1"]
    result = {
        "mode": "quick" if quick else "full",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "load_before": load_before},
        "scale_growth": {"full_s_scale1": s1["full_s"], "duckdb_s_scale1": s1["duckdb_s"],
                         "ratio_scale1": s1["full_s"] / s1["duckdb_s"]},
        "incremental": {} if quick else {"one_day_s": s1["one_day_s"], "full_year_s": s1["full_s"],
                                         "one_day_ratio": s1["one_day_s"] / s1["full_s"]},
        "events": {"events_per_day": s1["events"]["partition_events"] / s1["days"],
                   "pre_step_s": s1["events"]["pre_step_s"], "events_total": s1["events"]["events"],
                   "days": s1["days"]},
        "sensor_tick": {f"tick_s_{tick['objects'] // 1000}k": tick["tick_s"], **tick},
        "event_writes": writes,
        "model_serve": serving,
        "peak_rss_mb": s1["peak_rss_mb"],
        "peak_step": s1["peak_step"],
        "steps": s1["events"]["steps"],
        "files": s1["files"],
        "builds": builds,
    }
    if quick:
        month = builds["month"]
        result["incremental"].update({"one_day_s_month": month["one_day_s"], "full_month_s": month["full_s"],
                                      "one_day_ratio_month": month["one_day_s"] / month["full_s"]})
    else:
        s3 = builds["scale3"]
        result["scale_growth"].update({
            "full_s_scale3": s3["full_s"], "duckdb_s_scale3": s3["duckdb_s"],
            "marginal_ratio": (s3["full_s"] - s1["full_s"]) / (s3["duckdb_s"] - s1["duckdb_s"]),
        })
        result["incremental"].update({"one_day_s_scale3": s3["one_day_s"],
                                      "flat_ratio": s3["one_day_s"] / s1["one_day_s"]})
        result["events"]["pre_step_s_scale3"] = s3["events"]["pre_step_s"]
        result["peak_rss_mb"] = s3["peak_rss_mb"]
        result["peak_step"] = s3["peak_step"]
        result["steps_scale3"] = s3["events"]["steps"]
        result["files"] = s3["files"]
    result["bench_s"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "latest.md").write_text(markdown(result))
    print(markdown(result))
    return result


def step_table(r: dict) -> list[str]:
    """Seconds per step: each build, and the run of one new day after it (blank: the step did not run)."""
    columns = [(f"{name} build", build["events"]["steps"]) for name, build in r["builds"].items()]
    columns += [(f"one new day after {name}", build["one_day_steps"]) for name, build in r["builds"].items()
                if "one_day_steps" in build]
    steps = sorted({step for _, col in columns for step in col}, key=lambda step: -columns[0][1].get(step, 0))
    lines = ["| step (seconds) | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for step in steps:
        lines.append(f"| {step} | " + " | ".join(f"{col[step]:.1f}" if step in col else "" for _, col in columns) + " |")
    lines.append("| all steps | " + " | ".join(f"{sum(col.values()):.1f}" for _, col in columns) + " |")
    return lines


def markdown(r: dict) -> str:
    lines = [f"# Benchmark ({r['mode']}, {r['measured_at']}, {r['machine']['cpus']} cores, "
             f"load {r['machine']['load_before']:.1f} before)", "", "| figure | value |", "|---|---|"]
    for group in ("scale_growth", "incremental", "events", "sensor_tick", "event_writes", "model_serve"):
        for key, value in r[group].items():
            if isinstance(value, (int, float)):
                lines.append(f"| {group}.{key} | {value:,.3g} |" if isinstance(value, float) else f"| {group}.{key} | {value:,} |")
    lines += [f"| peak_rss_mb | {r['peak_rss_mb']:,.0f} (during {r['peak_step']}) |", f"| bench_s | {r['bench_s']:,.0f} |", "",
              *step_table(r)]
    lines += ["", "| daily table (largest build) | days | files | most files in a day | mean file KB |",
              "|---|---|---|---|---|"]
    lines += [f"| {t} | {f['days']} | {f['files']} | {f['max_files_per_day']} | {f['mean_file_kb']:.0f} |"
              for t, f in r["files"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale 1, a one-month lake's day, 10,000 objects")
    main(parser.parse_args().quick)
