"""DuckDB views over the lake's Iceberg tables, for `lake sql` and for dbt-duckdb (the `Plugin` below).

DuckDB's iceberg extension cannot be installed offline, so DuckDB does not read Iceberg metadata itself:
PyIceberg plans the scan of a snapshot (`table.scan(snapshot_id=...).plan_files()`: the data files of that
snapshot) and the view reads exactly those Parquet files with `read_parquet([...], union_by_name = true)`.
This is exact while the tables are copy-on-write, which they are (no delete files to apply); a snapshot whose
scan has delete files is refused rather than read wrong. Columns are matched by name (a renamed column would
read as NULL in the files written before the rename), and the view has the snapshot's schema: columns missing
from every file read as NULL, columns dropped from the table are left out.

Each Iceberg namespace of the local catalog (`lake_clean`, `lake_curated`, ...: the catalog database names)
becomes a DuckDB schema, each table a view `"<namespace>"."<table>"`. A view lists its snapshot's files, so it
is pinned to the snapshot it was created for: `configure` again to follow new commits (the dbt-duckdb plugin
does it once per dbt invocation).

Importing this module imports nothing heavy: PyIceberg, DuckDB and dbt-duckdb are imported when used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lake_platform.adapters.iceberg import LocalIcebergCatalog, planned_files

__all__ = [  # and `Plugin`, the dbt-duckdb plugin, built when first looked up
    "IcebergView",
    "LakeViewError",
    "configure",
    "iceberg_tables",
    "iceberg_views",
    "parse_as_of",
    "view_statements",
]


class LakeViewError(ValueError):
    """A snapshot that cannot be chosen or read: an unknown id, a time before the table existed, delete files."""


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 date or timestamp (`2024-05-01`, `2024-05-01T10:00:00+02:00`, `...Z`); UTC when it has no
    offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LakeViewError(
            f"--as-of {text!r}: expected an ISO 8601 timestamp, e.g. 2024-05-01T10:00:00Z or 2024-05-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_type(kind) -> str:
    """DuckDB's type for an Iceberg type (pyiceberg.types)."""
    from pyiceberg import types as t

    if isinstance(kind, t.DecimalType):
        return f"decimal({kind.precision}, {kind.scale})"
    if isinstance(kind, t.StructType):
        return "struct(" + ", ".join(f"{_quote(f.name)} {duckdb_type(f.field_type)}" for f in kind.fields) + ")"
    if isinstance(kind, t.ListType):
        return f"{duckdb_type(kind.element_type)}[]"
    if isinstance(kind, t.MapType):
        return f"map({duckdb_type(kind.key_type)}, {duckdb_type(kind.value_type)})"
    if isinstance(kind, t.FixedType):
        return "blob"
    simple = {
        t.StringType: "varchar", t.LongType: "bigint", t.IntegerType: "integer", t.DoubleType: "double",
        t.FloatType: "float", t.BooleanType: "boolean", t.DateType: "date", t.TimestamptzType: "timestamptz",
        t.TimestampType: "timestamp", t.TimeType: "time", t.UUIDType: "uuid", t.BinaryType: "blob",
    }
    for iceberg_type, name in simple.items():
        if isinstance(kind, iceberg_type):
            return name
    # Iceberg v3's nanosecond timestamps, by name: older PyIceberg versions do not have their classes.
    nanos = {"timestamp_ns": "timestamp_ns", "timestamptz_ns": "timestamptz"}
    if str(kind) in nanos:
        return nanos[str(kind)]
    raise LakeViewError(f"no DuckDB type for the Iceberg type {kind}")


@dataclass(frozen=True)
class IcebergView:
    """One Iceberg table as a DuckDB view: the snapshot read (None: the table has none yet) and its files."""

    namespace: str
    table: str
    snapshot_id: int | None
    columns: list[tuple[str, str]]  # (name, DuckDB type), the snapshot's schema
    files: list[str]
    error: str | None = None  # why the table cannot be read as chosen: reading the view raises it

    @property
    def name(self) -> str:
        return f"{self.namespace}.{self.table}"

    def sql(self) -> str:
        """`create or replace view` reading exactly the snapshot's files, with the snapshot's columns."""
        names = ", ".join(_quote(name) for name, _ in self.columns)
        # A typed row-less relation: an empty table's whole view, otherwise the source of the column types and
        # order, and of NULL for a column no file holds (added after the files were written).
        typed = "select " + ", ".join(f"cast(null as {kind}) as {_quote(name)}" for name, kind in self.columns)
        body = f"{typed} where false"
        if self.error is not None:  # DuckDB evaluates error() when the view is read, not when it is created
            body = f"{typed} where error({_text(self.error)}) is null"
        elif self.files:
            # hive_partitioning off: Iceberg files hold the partition column; the folder names are not data.
            files = "[" + ", ".join(_text(f) for f in self.files) + "]"
            body = (
                f"select {names} from ({body} union all by name select * from "
                f"read_parquet({files}, union_by_name = true, hive_partitioning = false))"
            )
        return f"create or replace view {_quote(self.namespace)}.{_quote(self.table)} as {body}"


def _data_files(name: str, tasks) -> list[str]:
    return planned_files(name, tasks, LakeViewError)


def _snapshot_as_of(name: str, table, as_of: datetime) -> int | None:
    """The id of the snapshot that was the table's current one at `as_of` (its snapshot log)."""
    moment_ms = int(as_of.timestamp() * 1000)
    log = [(e.timestamp_ms, e.snapshot_id) for e in table.history()]
    if not log:
        log = sorted((s.timestamp_ms, s.snapshot_id) for s in table.snapshots())
    if not log:
        return None  # no snapshot at all: the table is empty at any time
    current = [snapshot_id for timestamp_ms, snapshot_id in log if timestamp_ms <= moment_ms]
    if not current:
        first_ms, first_id = log[0]
        raise LakeViewError(
            f"{name} has no snapshot as of {as_of.isoformat()}: its first snapshot ({first_id}) is at "
            f"{_iso(first_ms)}"
        )
    if table.snapshot_by_id(current[-1]) is None:
        raise LakeViewError(
            f"{name}: snapshot {current[-1]}, current as of {as_of.isoformat()}, has been expired; its snapshots: "
            f"{_snapshot_ids(table)}"
        )
    return current[-1]


def _snapshot_ids(table) -> str:
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    return ", ".join(f"{s.snapshot_id} ({_iso(s.timestamp_ms)})" for s in snapshots) or "none"


def _columns(schema) -> list[tuple[str, str]]:
    return [(field.name, duckdb_type(field.field_type)) for field in schema.fields]


def _view(name: str, table, snapshot_id: int | None, as_of: datetime | None, strict: bool) -> IcebergView:
    namespace, _, short = name.rpartition(".")
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:  # a choice made for this table
        raise LakeViewError(f"{name} has no snapshot {snapshot_id}; its snapshots: {_snapshot_ids(table)}")
    try:
        if snapshot_id is None and as_of is not None:
            snapshot_id = _snapshot_as_of(name, table, as_of)
        elif snapshot_id is None:
            current = table.current_snapshot()
            snapshot_id = current.snapshot_id if current else None
        if snapshot_id is None:
            return IcebergView(namespace, short, None, _columns(table.schema()), [])
        scan = table.scan(snapshot_id=snapshot_id)
        return IcebergView(namespace, short, snapshot_id, _columns(scan.projection()),
                           _data_files(name, scan.plan_files()))
    except LakeViewError as error:
        if strict:
            raise
        return IcebergView(namespace, short, snapshot_id, _columns(table.schema()), [], str(error))


def _table_names(catalog) -> list[str]:
    names = []
    for namespace in catalog.list_namespaces():
        names += [".".join(identifier) for identifier in catalog.list_tables(namespace)]
    return sorted(names)


def iceberg_tables(lake_root: str | Path) -> list[str]:
    """`<namespace>.<table>` of every Iceberg table of the lake's local catalog."""
    with LocalIcebergCatalog(Path(lake_root)).opened() as catalog:
        return [] if catalog is None else _table_names(catalog)


def iceberg_views(
    lake_root: str | Path,
    snapshots: Mapping[str, int] | None = None,
    as_of: datetime | None = None,
    strict: bool = True,
) -> list[IcebergView]:
    """Every Iceberg table of the lake as a view to create: at its current snapshot, or at the snapshot id
    `snapshots` names for it (`{"lake_clean.flights": 123}`), or else, with `as_of`, at the snapshot that was
    current then. Every choice is checked before anything is returned: a LakeViewError for an unknown table or
    snapshot id; and for a table that cannot be read as asked (an `as_of` before its first snapshot, its snapshot
    then expired, delete files in its scan), unless `strict` is false: then that table's view raises the error
    when it is read, and the other tables stay readable (`lake sql --as-of` over tables created at different
    times; a dbt run whose models do not read that table)."""
    snapshots = dict(snapshots or {})
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    with LocalIcebergCatalog(Path(lake_root)).opened() as catalog:
        if catalog is None:
            if snapshots:
                raise LakeViewError(
                    f"no Iceberg table in the lake at {lake_root}, so no snapshot of {', '.join(snapshots)}"
                )
            return []
        names = _table_names(catalog)
        unknown = sorted(set(snapshots) - set(names))
        if unknown:
            raise LakeViewError(
                f"not an Iceberg table of the lake: {', '.join(unknown)} (Iceberg tables: {', '.join(names) or 'none'})"
            )
        return [_view(name, catalog.load_table(name), snapshots.get(name), as_of, strict) for name in names]


def view_statements(
    lake_root: str | Path,
    snapshots: Mapping[str, int] | None = None,
    as_of: datetime | None = None,
    strict: bool = True,
) -> Iterator[str]:
    """The DuckDB SQL creating the views of `iceberg_views` (same arguments): a `create schema if not exists` per
    namespace, then a `create or replace view "<namespace>"."<table>"` per table."""
    views = iceberg_views(lake_root, snapshots, as_of, strict)  # every error before the first statement
    for namespace in sorted({view.namespace for view in views}):
        yield f"create schema if not exists {_quote(namespace)}"
    for view in views:
        yield view.sql()


def configure(
    conn,
    lake_root: str | Path,
    snapshots: Mapping[str, int] | None = None,
    as_of: datetime | None = None,
    strict: bool = True,
) -> list[str]:
    """Create or refresh the views of `iceberg_views` (same arguments) on a DuckDB connection, in one transaction,
    in its default database; return their names (`<namespace>.<table>`)."""
    views = iceberg_views(lake_root, snapshots, as_of, strict)
    if not views:
        return []
    statements = [f"create schema if not exists {_quote(ns)}" for ns in sorted({v.namespace for v in views})]
    conn.execute("begin transaction")
    try:
        for statement in [*statements, *(view.sql() for view in views)]:
            conn.execute(statement)
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")
    return [view.name for view in views]


def _dbt_invocation() -> str | None:
    try:
        from dbt_common.invocation import get_invocation_id
    except ImportError:
        return None
    return get_invocation_id()


def _plugin_class():
    import threading

    from dbt.adapters.duckdb.plugins import BasePlugin

    class Plugin(BasePlugin):
        """dbt-duckdb plugin: once per dbt invocation, when it first connects, create or refresh the views of the
        lake's Iceberg tables (`lake_clean.flights`, ...) in the warehouse database at their current snapshots, so
        the sources of those schemas (models/staging/_lake__sources.yml) read them, and every model of the
        invocation reads the same snapshots.

        dbt-duckdb calls `configure_connection` when it opens its DuckDB connection, which it keeps open for the
        life of the process (`keep_open`, true by default) and shares between its threads through cursors: once
        per `dbt` process. A later invocation in the same process (dbtRunner) reuses that connection, so the
        views are refreshed on its first cursor (`configure_cursor`, called for every connection dbt acquires).

        Config (profiles.yml, `plugins: [{module: lake_platform.adapters.lake_views, config: {...}}]`):
          lake_root: the lake (rendered from `{{ var('lake_root') }}` like the profile's `path`).
        """

        def initialize(self, plugin_config: dict[str, Any]) -> None:
            if not plugin_config.get("lake_root"):
                raise ValueError(f"the {__name__} dbt-duckdb plugin needs `lake_root` in its config")
            self.lake_root = Path(str(plugin_config["lake_root"]))
            self._lock = threading.Lock()
            self._invocation: str | None = None

        def configure_connection(self, conn) -> None:
            with self._lock:
                self._refresh(conn)

        def configure_cursor(self, cursor) -> None:
            if self._invocation != _dbt_invocation():
                with self._lock:
                    if self._invocation != _dbt_invocation():
                        self._refresh(cursor)

        def _refresh(self, conn) -> None:
            # Not strict: a table that cannot be read (delete files) fails the models that read it, not every one.
            configure(conn, self.lake_root, strict=False)
            self._invocation = _dbt_invocation()

    Plugin.__module__ = __name__
    return Plugin


def __getattr__(name: str):
    # dbt-duckdb looks up `Plugin` in this module; it subclasses dbt-duckdb's BasePlugin, imported only then.
    if name == "Plugin":
        plugin = globals()["Plugin"] = _plugin_class()
        return plugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
