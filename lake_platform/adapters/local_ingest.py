"""Local stand-ins for the ingest services, writing into landing what the AWS service would write."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field

from lake_platform.adapters.ingest import DataExchange, DmsReplication, LandingReport
from lake_platform.adapters.storage import ObjectStore, replace_atomically
from lake_platform.sources.capture import CHANGE_TABLE


# DMS's timestamp format for TimestampColumnName values (microseconds; strings sort in time order).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class LocalDms(DmsReplication):
    """A DMS emulator: full load, then ongoing changes (CDC), from a SQL database into DMS's S3 target layout.

    Mirrors a task with `IncludeOpForFullLoad=true`, `TimestampColumnName=dms_commit_ts` and `DataFormat`
    parquet (or csv with `AddColumnName=true`), writing into `landing/dms/<schema>/<table>/`:
    - the full load, `LOAD00000001.parquet` … `LOAD0000000A.parquet` … (numbered in hexadecimal, as DMS does): a snapshot of the table taken at a change number, `Op` = `I`;
    - then one `YYYYMMDD-HHMMSSfff.parquet` per batch of changes: `Op` I/U/D in commit order,
      `dms_commit_ts` the change's commit time, then the row (a delete carries the row's last values).
    Changes come from the source's change table (see `lake_platform.sources.capture`); without one, only
    the full load runs. The task's position, the last change written, is kept in `state_path`.
    """

    source_url: str = Field(description="SQLAlchemy URL of the source database.")
    schema_name: str = Field(default="ops", description="Source schema; the second level of DMS's S3 keys.")
    tables: list[str] = Field(default=["flights"], description="Tables the task replicates.")
    rows_per_file: int = Field(
        default=100_000, description="Rows per LOAD file and changes per CDC file (DMS splits by MaxFileSize)."
    )
    data_format: Literal["parquet", "csv"] = Field(
        default="parquet", description="DMS's DataFormat; CSV has a header row (AddColumnName=true)."
    )
    state_path: str = Field(description="JSON file holding the task's position.")

    def _state(self) -> dict:
        path = Path(self.state_path)
        return json.loads(path.read_text()) if path.exists() else {"tables": {}}

    def _save(self, state: dict) -> None:
        replace_atomically(Path(self.state_path), lambda tmp: tmp.write_text(json.dumps(state, indent=2)))

    def _prefix(self, table: str) -> str:
        return f"landing/dms/{self.schema_name}/{table}/"

    def replicate(self, context, store: ObjectStore) -> LandingReport:
        import sqlalchemy as sa

        state = self._state()
        report = LandingReport(
            details={"task": "local DMS emulator", "source": self.source_url, "data_format": self.data_format}
        )
        written: list[str] = []
        engine = sa.create_engine(self.source_url)
        try:
            changes = _reflect(engine, CHANGE_TABLE, required=False)
            if changes is None:
                report.details["cdc"] = f"off: the source has no {CHANGE_TABLE} table"
                context.log.warning(f"no {CHANGE_TABLE} table in the source: full load only, no CDC")
            for table in self.tables:
                source = _reflect(engine, table)
                rows = 0
                if table not in state["tables"]:
                    state["tables"][table], rows = self._full_load(engine, store, source, changes)
                    self._save(state)
                    written += state["tables"][table]["files"]
                    position = state["tables"][table]["position"]
                    context.log.info(f"{table}: full load of {rows:,} rows, up to change {position}")
                if changes is not None:
                    keys, count = self._replicate_changes(engine, store, state, source, changes)
                    context.log.info(f"{table}: {count:,} changes in {len(keys)} CDC file(s)")
                    written += keys
                    rows += count
                report.rows[table] = rows
        finally:
            engine.dispose()
        landed = set(written)
        report.objects = [o for t in self.tables for o in store.list(self._prefix(t)) if o.key in landed]
        return report

    def pending(self, store: ObjectStore) -> list[str]:
        """Tables with a full load, or changes past the task's position, waiting (read-only)."""
        import sqlalchemy as sa

        url = sa.engine.make_url(self.source_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return []  # connecting would create an empty database file
        state, waiting = self._state(), []
        engine = sa.create_engine(self.source_url)
        try:
            changes = _reflect(engine, CHANGE_TABLE, required=False)
            latest = _last_change(engine, changes)
            for table in self.tables:
                task = state["tables"].get(table)
                if task is None:
                    if sa.inspect(engine).has_table(table):
                        waiting.append(f"{table}: full load (source at change {latest})")
                    continue
                unwritten = changes is not None and _batch_end(engine, changes, table, task["position"], 1)
                if task.get("pending") or unwritten:
                    waiting.append(f"{table}: changes after {task['position']} (source at change {latest})")
        finally:
            engine.dispose()
        return waiting

    def _full_load(self, engine, store: ObjectStore, source, changes) -> tuple[dict, int]:
        import sqlalchemy as sa

        prefix = self._prefix(source.name)
        # As DMS's DROP_AND_CREATE: a full load replaces the table's folder, so files of an interrupted
        # attempt, or of the database before a reseed, cannot come back downstream.
        store.delete_prefix(prefix)
        stamp = _load_timestamp()
        position = _last_change(engine, changes)  # used if the table is empty
        query = sa.select(*source.c)
        if changes is not None:
            # Rows and change number from one statement, hence one consistent read: the snapshot holds
            # exactly the changes up to that number, and CDC starts after it.
            last = sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0)).scalar_subquery()
            query = sa.select(last.label("dms_snapshot_seq"), *source.c)
        keys, rows = [], 0
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=self.rows_per_file).execute(query)
            for number, part in enumerate(result.partitions(), start=1):
                if changes is not None:
                    position, part = part[0][0], [row[1:] for row in part]
                key = f"{prefix}LOAD{number:08X}.{self.data_format}"  # DMS numbers them in hexadecimal
                store.put_bytes(key, self._encode(source, [("I", stamp)] * len(part), part))
                keys.append(key)
                rows += len(part)
        completed = datetime.now(timezone.utc).isoformat()
        task = {"full_load_completed_at": completed, "files": keys, "rows": rows, "position": position}
        return task, rows

    def _replicate_changes(self, engine, store: ObjectStore, state: dict, source, changes) -> tuple[list, int]:
        """Write the changes after the task's position as CDC files, each change exactly once."""
        task = state["tables"][source.name]
        keys, count = [], 0
        while True:
            batch = task.get("pending")
            if batch is None:
                after = task.get("position", 0)
                through = _batch_end(engine, changes, source.name, after, self.rows_per_file)
                if through is None:
                    return keys, count
                # Recorded before the file is written: a rerun after a crash writes the same changes to
                # the same key (overwriting it), so no change is lost and none lands twice.
                batch = {"after": after, "through": through, "key": self._cdc_key(source.name, task)}
                task["pending"] = batch
                self._save(state)
            found = _read_changes(engine, changes, source.name, batch["after"], batch["through"])
            rows = [tuple(json.loads(c.row_image).get(col.name) for col in source.c) for c in found]
            header = [(c.op, _commit_timestamp(c.committed_at)) for c in found]
            store.put_bytes(batch["key"], self._encode(source, header, rows))
            task.update(position=batch["through"], last_cdc_file=batch["key"])
            del task["pending"]
            self._save(state)
            keys.append(batch["key"])
            count += len(rows)

    def _cdc_key(self, table: str, task: dict) -> str:
        """DMS names a CDC file by the time it is written, to the millisecond; later files sort later."""
        stamp = datetime.now(timezone.utc)
        if task.get("last_cdc_file"):
            last = datetime.strptime(Path(task["last_cdc_file"]).stem + "000", "%Y%m%d-%H%M%S%f")
            stamp = max(stamp.replace(tzinfo=None), last + timedelta(milliseconds=1))
        return f"{self._prefix(table)}{stamp:%Y%m%d-%H%M%S}{stamp.microsecond // 1000:03d}.{self.data_format}"

    def _encode(self, source, header: list[tuple[str, str]], rows: list[tuple]) -> bytes:
        """One DMS file: `Op`, `dms_commit_ts`, then the table's columns, typed from the source's schema."""
        import pyarrow as pa

        columns = {
            "Op": pa.array([op for op, _ in header], pa.string()),
            "dms_commit_ts": pa.array([ts for _, ts in header], pa.string()),
        }
        for i, column in enumerate(source.c):
            kind, convert = _arrow_type(column.type)
            columns[column.name] = pa.array([None if r[i] is None else convert(r[i]) for r in rows], kind)
        table = pa.table(columns)
        if self.data_format == "csv":
            # Python's csv rather than pyarrow's, which always quotes the header; DMS quotes only where needed.
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(table.column_names)
            writer.writerows(zip(*(column.to_pylist() for column in table.columns)))  # None -> empty field
            return text.getvalue().encode()
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()


def _reflect(engine, name: str, required: bool = True):
    import sqlalchemy as sa

    if not sa.inspect(engine).has_table(name):
        if required:
            raise ValueError(f"the source database {engine.url!r} has no table {name!r}")
        return None
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def _arrow_type(sql_type):
    """The Parquet type of a source column; the same in every file, so readers see one schema."""
    import pyarrow as pa
    import sqlalchemy as sa

    if isinstance(sql_type, sa.Boolean):
        return pa.bool_(), bool
    if isinstance(sql_type, sa.Integer):
        return pa.int64(), int
    if isinstance(sql_type, (sa.Float, sa.Numeric)):  # SQLAlchemy 2.1: Float is no Numeric subclass
        return pa.float64(), float
    return pa.string(), str


def _last_change(engine, changes) -> int:
    import sqlalchemy as sa

    if changes is None:
        return 0
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0))).scalar()


def _batch_end(engine, changes, table: str, after: int, limit: int) -> int | None:
    import sqlalchemy as sa

    batch = (
        sa.select(changes.c.seq)
        .where(changes.c.table_name == table, changes.c.seq > after)
        .order_by(changes.c.seq)
        .limit(limit)
        .subquery()
    )
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(batch.c.seq))).scalar()


def _read_changes(engine, changes, table: str, after: int, through: int) -> list:
    import sqlalchemy as sa

    query = (
        sa.select(changes.c.op, changes.c.row_image, changes.c.committed_at)
        .where(changes.c.table_name == table, changes.c.seq > after, changes.c.seq <= through)
        .order_by(changes.c.seq)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


def _load_timestamp() -> str:
    """The full load's `dms_commit_ts`, the task start as with `UseTaskStartTimeForFullLoadTimestamp`.

    A change committed just after the snapshot must sort after the load, and SQLite stamps changes at
    millisecond precision: so the load takes the millisecond before it started.
    """
    now = datetime.now(timezone.utc)
    start = now.replace(microsecond=now.microsecond // 1000 * 1000) - timedelta(milliseconds=1)
    return start.strftime(TIMESTAMP_FORMAT)


def _commit_timestamp(value) -> str:
    """A change's commit time in DMS's format, from a datetime or SQLite's `YYYY-MM-DD HH:MM:SS.fff`."""
    if isinstance(value, datetime):
        return value.strftime(TIMESTAMP_FORMAT)
    return datetime.fromisoformat(str(value)).strftime(TIMESTAMP_FORMAT)


class LocalDataExchange(DataExchange):
    """A Data Exchange provider folder: `<provider_dir>/<data set>/<revision id>/{revision.json, assets…}`.

    Exporting a revision copies its assets to `landing/data_exchange/<data set>/<revision id>/<asset>`,
    the layout of an EXPORT_REVISIONS_TO_S3 job with KeyPattern `${Revision.Id}/${Asset.Name}`.
    """

    provider_dir: str = Field(description="Folder of the provider's data sets and revisions.")
    data_set: str = Field(default="weather", description="Entitled data set to export.")

    def export_new_revisions(self, context, store: ObjectStore) -> LandingReport:
        folder = Path(self.provider_dir) / self.data_set
        revisions = sorted(
            (json.loads((d / "revision.json").read_text())["CreatedAt"], d.name)
            for d in (folder.iterdir() if folder.is_dir() else [])
            if (d / "revision.json").exists()
        )
        prefix = f"landing/data_exchange/{self.data_set}/"
        exported = {o.key[len(prefix) :].split("/", 1)[0] for o in store.list(prefix)}
        report = LandingReport(details={"data_set": self.data_set, "revisions_available": str(len(revisions))})
        for _, revision in revisions:
            if revision in exported:
                continue
            for asset in sorted((folder / revision).iterdir()):
                if asset.name == "revision.json":
                    continue
                store.put_file(f"{prefix}{revision}/{asset.name}", asset)
            report.objects += store.list(f"{prefix}{revision}/")
            context.log.info(f"exported revision {revision} of {self.data_set}")
        return report

    def pending(self, store: ObjectStore) -> list[str]:
        """Revisions in the provider folder not yet exported to landing (read-only)."""
        folder = Path(self.provider_dir) / self.data_set
        prefix = f"landing/data_exchange/{self.data_set}/"
        exported = {o.key[len(prefix) :].split("/", 1)[0] for o in store.list(prefix)}
        ready = (d.name for d in (folder.iterdir() if folder.is_dir() else []) if (d / "revision.json").exists())
        return sorted(r for r in ready if r not in exported)
