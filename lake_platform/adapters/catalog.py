"""The table catalog: a local JSON catalog with pointer-swap publish, or the AWS Glue Data Catalog.

The clean, quarantine and curated zones (`ICEBERG_ZONES`) are Apache Iceberg tables: the Spark job that writes one
commits it itself (spark_jobs/lake_tables.py), in Iceberg's catalog (locally Iceberg's JDBC catalog on SQLite,
adapters/iceberg.py; on AWS the Glue Data Catalog), and readers address it as `Catalog.iceberg_table`. What
follows is how the other zones' tables (ML outputs, exports, the raw inventory) are still published.

A table's data lives in immutable version folders (`<zone>/_versions/<table>/<version>/`). Publishing
points the table at a new version in one step, so readers see the old version or the new one, never a
half-written mix (README, principle 4). Locally the stable path `<zone>/<table>` is a symlink that is
replaced atomically with `os.replace`; on AWS the Glue table's `StorageDescriptor.Location` is updated.

A partitioned table (a daily `partition_column`) is written Hive-style, `<version>/<column>=<value>/`, and a
publish replaces only the partitions it names: on AWS each Glue partition's location is swapped to the new
version (partitions absent from the new version are dropped); locally the new version folder receives
hard links to the unchanged partitions' files of the current version, then the table symlink swaps, so the
local table is always one complete, consistent folder.
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


@dataclass(frozen=True)
class SchemaVersion:
    """One published definition of a table: Glue's table version, or an entry of the local history."""

    version_id: str
    lake_version: str
    columns: list[tuple[str, str]]
    partition_keys: list[str]


# Zones whose tables are Iceberg tables; `raw_index` holds, per daily dataset, the days of each raw file
# (spark_jobs/raw_index.py), so that a day's clean run reads that day's raw files only.
ICEBERG_ZONES = frozenset({"clean", "quarantine", "curated", "raw_index"})
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Spark's and Hive's folder for a NULL partition value


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

    def publish(
        self,
        zone: str,
        table: str,
        version: str,
        columns: list[tuple[str, str]],
        description: str = "",
        partition_column: str | None = None,
        replaced: list[str] | None = None,
    ) -> TableInfo:
        """Point the table at `version`. `columns` is the whole schema, the partition column included.

        Partitioned (`partition_column` set): the version folder holds `<column>=<value>/` folders for the
        values written; `replaced` lists every value this publish is responsible for (the run's range): those
        take the new version's data, or disappear when the new version has none; other partitions are kept.
        """
        raise NotImplementedError

    def partitions(self, zone: str, table: str) -> dict[str, str]:
        """Partition value -> its current location; empty for an unpartitioned or missing table."""
        raise NotImplementedError

    def schema_versions(self, zone: str, table: str) -> list[SchemaVersion]:
        """Every published definition of the table, oldest first."""
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

    def pyiceberg(self):
        """A context manager: PyIceberg's catalog of the lake's Iceberg tables (None when there is none yet)."""
        raise NotImplementedError

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


def _written_partitions(store: ObjectStore, zone: str, table: str, version: str, column: str) -> set[str]:
    """The `<column>=<value>` folders a job wrote into a version folder."""
    prefix = version_key(zone, table, version) + "/"
    found = set()
    for obj in store.list(prefix):
        head = obj.key[len(prefix) :].split("/", 1)[0]
        if head.startswith(f"{column}=") and "/" in obj.key[len(prefix) :]:
            found.add(head.split("=", 1)[1])
    return found


def _data_columns(columns, partition_column: str | None) -> list[tuple[str, str]]:
    """The schema with the partition column moved last, where Spark puts it when it reads the table."""
    if partition_column is None:
        return [tuple(c) for c in columns]
    rest = [tuple(c) for c in columns if c[0] != partition_column]
    kinds = dict(columns)
    return [*rest, (partition_column, kinds.get(partition_column, "date"))]


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of `source` into `target` (same filesystem: the lake root); copy if links fail."""
    for path in source.rglob("*"):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


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

    def pyiceberg(self):
        return self._iceberg().opened()

    def get(self, zone: str, table: str) -> TableInfo | None:
        if zone in ICEBERG_ZONES:
            found = self._iceberg().tables(self.database(zone), [table])
            return found[0] if found else None
        data = self._read(zone, table)
        if data is None:
            return None
        data.pop("schema_versions", None)
        data["columns"] = [tuple(c) for c in data["columns"]]
        return TableInfo(**data)

    def partitions(self, zone: str, table: str) -> dict[str, str]:
        info = self.get(zone, table)
        if info is None or not info.partition_keys:
            return {}
        column = info.partition_keys[0]
        folder = Path(info.location)
        return {
            p.name.split("=", 1)[1]: str(p)
            for p in sorted(folder.glob(f"{column}=*"))
            if p.is_dir()
        }

    def schema_versions(self, zone: str, table: str) -> list[SchemaVersion]:
        data = self._read(zone, table) or {}
        return [
            SchemaVersion(str(i), v["lake_version"], [tuple(c) for c in v["columns"]], v["partition_keys"])
            for i, v in enumerate(data.get("schema_versions", []), start=1)
        ]

    def tables(self, zone: str) -> list[TableInfo]:
        if zone in ICEBERG_ZONES:
            return self._iceberg().tables(self.database(zone))
        folder = self._root() / self.database(zone)
        return [self.get(zone, p.stem) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def publish(self, zone, table, version, columns, description="", partition_column=None, replaced=None):
        if zone in ICEBERG_ZONES:
            raise ValueError(f"{self.database(zone)}.{table} is an Iceberg table: its Spark job commits it")
        previous = self.get(zone, table)
        target = Path(self.store.uri(version_key(zone, table, version)))
        if not target.is_dir():
            raise FileNotFoundError(f"cannot publish {zone}.{table}: version folder {target} does not exist")
        if partition_column and previous is not None and previous.partition_keys == [partition_column]:
            # Carry the partitions this publish does not replace into the new version (hard links).
            keep_out = set(replaced or []) | _written_partitions(self.store, zone, table, version, partition_column)
            for value, location in self.partitions(zone, table).items():
                if value not in keep_out:
                    _link_tree(Path(location).resolve(), target / f"{partition_column}={value}")
        # Not store.uri(f"{zone}/{table}"): that resolves the existing symlink to the old version.
        link = Path(self.store.uri(zone)) / table
        if link.exists() and not link.is_symlink():
            raise RuntimeError(f"{link} is a real directory; the local catalog expects a symlink there")
        replace_atomically(link, lambda tmp: os.symlink(os.path.relpath(target, link.parent), tmp))
        partition_keys = [partition_column] if partition_column else []
        columns = _data_columns(columns, partition_column)
        info = TableInfo(self.database(zone), table, str(link), columns, version, description,
                         partition_keys=partition_keys)
        history = (self._read(zone, table) or {}).get("schema_versions", [])
        history = [*history, {"lake_version": version, "columns": columns, "partition_keys": partition_keys}]
        doc_body = {**asdict(info), "schema_versions": history[-100:]}  # Glue keeps up to 100,000; enough here
        doc = self._doc(zone, table)
        replace_atomically(doc, lambda tmp: tmp.write_text(json.dumps(doc_body, indent=2)))
        keep = {version, previous.version if previous else version}
        _prune_versions(self.store, zone, table, keep)
        # A run killed before writing any file leaves only empty folders, which the listing above cannot see.
        for folder in Path(self.store.uri(f"{zone}/_versions/{table}")).iterdir():
            if folder.name not in keep and folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)
        return info
