"""Change capture in the operations database: the stand-in for the transaction log DMS reads.

DMS reads a database's log (binlog, WAL, redo): every committed change in order, with its row image.
SQLite has no log another process can read, so triggers write the same facts into a change table:

    dms_changes(seq, table_name, op, pk, row_image, committed_at)

- `seq` orders the changes; AUTOINCREMENT never reuses a number, even after old changes are pruned, so a
  reader's position (the last seq it wrote) stays valid.
- `op` is DMS's `I`/`U`/`D`; `row_image` the row as JSON (after-image, or before-image for `D`).
- `committed_at` is the statement's time at SQLite's millisecond precision, `YYYY-MM-DD HH:MM:SS.fff`.

Any other SQLAlchemy database works the same if it has this table, filled by triggers (PostgreSQL:
`AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW` with `to_jsonb(NEW)`) or by the application in the
same transaction as the change. Its `seq` must follow commit order: a sequence can hand out 11 before
10 commits, and a reader that saw 11 would skip 10, so take a lock on the change table in the trigger.
"""

from __future__ import annotations

import sqlite3

CHANGE_TABLE = "dms_changes"

_CHANGE_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHANGE_TABLE} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('I', 'U', 'D')),
    pk TEXT NOT NULL,
    row_image TEXT NOT NULL,
    committed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX IF NOT EXISTS {CHANGE_TABLE}_by_table ON {CHANGE_TABLE} (table_name, seq);
"""


def install_sqlite_capture(db: sqlite3.Connection, table: str) -> None:
    """Create the change table and `table`'s INSERT/UPDATE/DELETE triggers (idempotent)."""
    info = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    if not info:
        raise ValueError(f"no table {table!r} in the operations database")
    columns = [row[1] for row in info]
    keys = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
    if not keys:
        raise ValueError(f"table {table!r} has no primary key: DMS needs one to replicate updates and deletes")
    db.executescript(_CHANGE_TABLE_DDL)
    for op, event, image in (("I", "INSERT", "NEW"), ("U", "UPDATE", "NEW"), ("D", "DELETE", "OLD")):
        row = ", ".join(f"'{c}', {image}.\"{c}\"" for c in columns)
        key_values = [f'{image}."{k}"' for k in keys]
        pk = key_values[0] if len(keys) == 1 else f"json_array({', '.join(key_values)})"
        db.execute(
            f'CREATE TRIGGER IF NOT EXISTS "dms_{table}_{event.lower()}" AFTER {event} ON "{table}" BEGIN '
            f"INSERT INTO {CHANGE_TABLE} (table_name, op, pk, row_image) "
            f"VALUES ('{table}', '{op}', {pk}, json_object({row})); END"
        )
    db.commit()
