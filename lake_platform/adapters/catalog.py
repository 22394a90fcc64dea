"""The table catalog: a local JSON catalog with pointer-swap publish, or the AWS Glue Data Catalog.

The clean, quarantine, curated and ML zones (`ICEBERG_ZONES`) are Apache Iceberg tables: the Spark job that
writes one commits it itself (spark_jobs/lake_tables.py; a Python asset through `Catalog.commit`), in
Iceberg's catalog (locally Iceberg's JDBC catalog on SQLite, adapters/iceberg.py; on AWS the Glue Data
Catalog), and readers address it as `Catalog.iceberg_table`; Python reads one's current snapshot with
`Catalog.data_files`.

The two other tables (the exports and the raw inventory: unpartitioned, replaced whole) are still version
folders (`<zone>/_versions/<table>/<version>/`): publishing points the table at a new version in one step, so
readers see the old version or the new one, never a half-written mix (README, principle 4). Locally the
stable path `<zone>/<table>` is a symlink replaced atomically with `os.replace`; on AWS the Glue table's
`StorageDescriptor.Location` is updated.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from pydantic import Field

from lake_platform.adapters.storage import ObjectStore, replace_atomically


@dataclass(frozen=True)
class TableInfo:
    database: str
    name: str
    location: str
    columns: list[tuple[str, str]]
    version: str
    description: str = ""
    updated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    partition_keys: list[str] = field(default_factory=list)


# Zones whose tables are Iceberg tables; `raw_index` holds, per daily dataset, the days of each raw file
# (spark_jobs/raw_index.py), so that a day's clean run reads that day's raw files only.
ICEBERG_ZONES = frozenset({"clean", "quarantine", "curated", "ml", "raw_index"})


def version_key(zone: str, table: str, version: str) -> str:
    """Where a new version of a table is written before it is published."""
    return f"{zone}/_versions/{table}/{version}"


def new_version(run_id: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{run_id[:8]}"


class Catalog(dg.ConfigurableResource):
    """Interface shared by both deployments. Databases are named `<database_prefix>_<zone>`."""

    database_prefix: str = Field(default="lake", description="Prefix of the catalog databases.")

    def database(self, zone: str) -> str:
        return f"{self.database_prefix}_{zone}"

    def get(self, zone: str, table: str) -> TableInfo | None:
        raise NotImplementedError

    def iceberg_catalog_name(self) -> str:
        """The Spark catalog holding the Iceberg tables (the jobs' session has it configured)."""
        raise NotImplementedError

    def iceberg_table(self, zone: str, table: str) -> str:
        """The Spark identifier of an Iceberg table: `<catalog>.<database>.<table>`."""
        if zone not in ICEBERG_ZONES:
            raise ValueError(f"zone {zone!r} holds version-folder tables, not Iceberg ones ({sorted(ICEBERG_ZONES)})")
        return f"{self.iceberg_catalog_name()}.{self.database(zone)}.{table}"

    def publish(self, zone: str, table: str, version: str, columns: list[tuple[str, str]], description: str = "") -> TableInfo:
        """Point the version-folder table at `version` (its folder written), in one step."""
        raise NotImplementedError

    def tables(self, zone: str) -> list[TableInfo]:
        raise NotImplementedError

    def spark_input(self, zone: str, table: str, values: list[str] | None = None) -> dict:
        """How a Spark job reads an Iceberg table (spark_jobs/lake_tables.py read_table): its current snapshot,
        only the partitions among `values` (all if None). A clear LookupError when it does not exist yet."""
        identifier = self.iceberg_table(zone, table)
        if self.get(zone, table) is None:
            self.location(zone, table)  # raises the clear LookupError
        return {"iceberg": identifier, "values": values}

    def data_files(self, zone: str, table: str, values: list[str] | None = None) -> list[str]:
        """The data files (URIs; local paths locally) of an Iceberg table's current snapshot, only the partitions
        among `values` of a partitioned table when given: what a reader outside Spark (pandas, a SageMaker
        channel) reads, exact because the tables are copy-on-write (iceberg.planned_files)."""
        from lake_platform.adapters.iceberg import current_files

        with self.pyiceberg() as catalog:
            table_ = _load_iceberg(catalog, self.database(zone), table)
            if table_ is None:
                self.location(zone, table)  # raises the clear LookupError
            return current_files(f"{self.database(zone)}.{table}", table_, values)

    def pyiceberg(self, create: bool = False):
        """A context manager: PyIceberg's catalog of the lake's Iceberg tables (None when there is none yet, unless
        `create`: then the catalog is created, locally its SQLite database)."""
        raise NotImplementedError

    def commit(self, zone: str, table: str, rows, partition_column: str | None = None, days: dict | None = None,
               description: str = "") -> int:
        """Commit the Arrow table `rows` to the Iceberg table `<zone>.<table>` with PyIceberg, as
        spark_jobs/lake_tables.py commits a Spark frame: created on first use (format v2, copy-on-write, the
        same properties; identity-partitioned by `partition_column`; `description` as its comment). With `days`
        ({"first": day, "last": day}) the days first..last and the NULL partition are replaced in one commit and
        the other days kept (a day without rows is emptied); without, the table is replaced whole. Returns the
        commit's snapshot id, found by the `lake.write-id` its snapshots carry (another writer may commit at
        the same moment)."""
        import uuid

        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, IsNull, LessThanOrEqual, Or

        from lake_platform.adapters.spark import load_job

        lake_tables = load_job("lake_tables")  # the Spark jobs' table properties and write-id property
        namespace = self.database(zone)
        with self.pyiceberg(create=True) as catalog:
            catalog.create_namespace_if_not_exists(namespace)
            loaded = _load_iceberg(catalog, namespace, table)
            if loaded is None:
                properties = {**lake_tables.TABLE_PROPERTIES, **({"comment": description} if description else {})}
                try:
                    created = catalog.create_table_transaction((namespace, table), rows.schema, properties=properties)
                    if partition_column:
                        with created.update_spec() as spec:
                            spec.add_identity(partition_column)
                    created.commit_transaction()
                except TableAlreadyExistsError:  # a concurrent first write created it: write into it
                    pass
                loaded = catalog.load_table((namespace, table))
            condition = AlwaysTrue()
            if partition_column and days:
                in_range = And(GreaterThanOrEqual(partition_column, days["first"]),
                               LessThanOrEqual(partition_column, days["last"]))
                condition = Or(in_range, IsNull(partition_column))
            write_id = str(uuid.uuid4())
            loaded.overwrite(rows, overwrite_filter=condition, snapshot_properties={lake_tables.WRITE_ID: write_id})
            mine = [s for s in loaded.refresh().snapshots() if s.summary and s.summary.get(lake_tables.WRITE_ID) == write_id]
            return max(mine, key=lambda s: s.sequence_number).snapshot_id

    def location(self, zone: str, table: str) -> str:
        info = self.get(zone, table)
        if info is None:
            raise LookupError(
                f"table {self.database(zone)}.{table} is not in the catalog: materialize its asset first"
            )
        return info.location


def _load_iceberg(catalog, database: str, table: str):
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    if catalog is None:
        return None
    try:
        return catalog.load_table((database, table))
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def _prune_versions(store: ObjectStore, zone: str, table: str, keep: set[str]) -> None:
    """Delete superseded versions; the current and the previous one stay for in-flight readers."""
    prefix = f"{zone}/_versions/{table}/"
    versions = {o.key[len(prefix) :].split("/", 1)[0] for o in store.list(prefix)}
    for version in versions - keep:
        store.delete_prefix(prefix + version)


class LocalCatalog(Catalog):
    """A catalog kept as one JSON document per table under `<lake>/catalog/`."""

    store: ObjectStore

    def _root(self) -> Path:
        return Path(self.store.uri("catalog"))

    def _doc(self, zone: str, table: str) -> Path:
        return self._root() / self.database(zone) / f"{table}.json"

    def _read(self, zone: str, table: str) -> dict | None:
        doc = self._doc(zone, table)
        return json.loads(doc.read_text()) if doc.exists() else None

    def iceberg_catalog_name(self) -> str:
        from lake_platform.adapters.iceberg import CATALOG_NAME

        return CATALOG_NAME

    def _iceberg(self):
        from lake_platform.adapters.iceberg import LocalIcebergCatalog

        return LocalIcebergCatalog(Path(self.store.root).resolve())

    def pyiceberg(self, create: bool = False):
        if create:
            self._iceberg().initialize()
        return self._iceberg().opened()

    def get(self, zone: str, table: str) -> TableInfo | None:
        if zone in ICEBERG_ZONES:
            found = self._iceberg().tables(self.database(zone), [table])
            return found[0] if found else None
        data = self._read(zone, table)
        if data is None:
            return None
        data.pop("schema_versions", None)  # a lake written before the history was dropped
        data["columns"] = [tuple(c) for c in data["columns"]]
        return TableInfo(**data)

    def tables(self, zone: str) -> list[TableInfo]:
        if zone in ICEBERG_ZONES:
            return self._iceberg().tables(self.database(zone))
        folder = self._root() / self.database(zone)
        return [self.get(zone, p.stem) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def publish(self, zone, table, version, columns, description=""):
        if zone in ICEBERG_ZONES:
            raise ValueError(f"{self.database(zone)}.{table} is an Iceberg table: its writer commits it")
        previous = self.get(zone, table)
        target = Path(self.store.uri(version_key(zone, table, version)))
        if not target.is_dir():
            raise FileNotFoundError(f"cannot publish {zone}.{table}: version folder {target} does not exist")
        # Not store.uri(f"{zone}/{table}"): that resolves the existing symlink to the old version.
        link = Path(self.store.uri(zone)) / table
        if link.exists() and not link.is_symlink():
            raise RuntimeError(f"{link} is a real directory; the local catalog expects a symlink there")
        replace_atomically(link, lambda tmp: os.symlink(os.path.relpath(target, link.parent), tmp))
        info = TableInfo(self.database(zone), table, str(link), [tuple(c) for c in columns], version, description)
        doc_body = asdict(info)
        doc = self._doc(zone, table)
        replace_atomically(doc, lambda tmp: tmp.write_text(json.dumps(doc_body, indent=2)))
        keep = {version, previous.version if previous else version}
        _prune_versions(self.store, zone, table, keep)
        # A run killed before writing any file leaves only empty folders, which the listing above cannot see.
        for folder in Path(self.store.uri(f"{zone}/_versions/{table}")).iterdir():
            if folder.name not in keep and folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
        return info
