"""Facts about the local operations database (the DMS source) that the runs need."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from lake_platform.sources.seed import OPERATIONS_DB


def days_with_data(lake_root: Path) -> tuple[str, str]:
    """The first and last day (YYYY-MM-DD) of the flights in the operations database: the partitions a full
    run covers. ValueError if the database is missing or has no flights."""
    path = lake_root / OPERATIONS_DB
    if not path.exists():
        raise ValueError(f"no operations database at {path}: run `lake seed` first")
    with closing(sqlite3.connect(path)) as db:
        number = "year * 10000 + month * 100 + day"
        low, high = db.execute(f"SELECT min({number}), max({number}) FROM flights").fetchone()
    if low is None:
        raise ValueError(f"the operations database {path} has no flights: run `lake seed`")
    return _day(low), _day(high)


def _day(number: int) -> str:
    return f"{number // 10000:04d}-{number // 100 % 100:02d}-{number % 100:02d}"
