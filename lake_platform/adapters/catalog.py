"""The table catalog: a local JSON catalog with pointer-swap publish, or the AWS Glue Data Catalog.

A table's data lives in immutable version folders (`<zone>/_versions/<table>/<version>/`). Publishing
points the table at a new version in one step, so readers see the old version or the new one, never a
half-written mix (DESIGN.md principle 4). Locally the stable path `<zone>/<table>` is a symlink that is
replaced atomically with `os.replace`; on AWS the Glue table's `StorageDescriptor.Location` is updated.
"""

from __future__ import annotations

import json
import os
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

    def publish(
        self, zone: str, table: str, version: str, columns: list[tuple[str, str]], description: str = ""
    ) -> TableInfo:
        raise NotImplementedError

    def tables(self, zone: str) -> list[TableInfo]:
        raise NotImplementedError

    def location(self, zone: str, table: str) -> str:
        info = self.get(zone, table)
        if info is None:
            raise LookupError(
                f"table {self.database(zone)}.{table} is not in the catalog: materialize its asset first"
            )
        return info.location


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

    def get(self, zone: str, table: str) -> TableInfo | None:
        doc = self._doc(zone, table)
        if not doc.exists():
            return None
        data = json.loads(doc.read_text())
        data["columns"] = [tuple(c) for c in data["columns"]]
        return TableInfo(**data)

    def tables(self, zone: str) -> list[TableInfo]:
        folder = self._root() / self.database(zone)
        return [self.get(zone, p.stem) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def publish(self, zone, table, version, columns, description=""):
        previous = self.get(zone, table)
        target = Path(self.store.uri(version_key(zone, table, version)))
        if not target.is_dir():
            raise FileNotFoundError(f"cannot publish {zone}.{table}: version folder {target} does not exist")
        # Not store.uri(f"{zone}/{table}"): that resolves the existing symlink to the old version.
        link = Path(self.store.uri(zone)) / table
        if link.exists() and not link.is_symlink():
            raise RuntimeError(f"{link} is a real directory; the local catalog expects a symlink there")
        replace_atomically(link, lambda tmp: os.symlink(os.path.relpath(target, link.parent), tmp))
        info = TableInfo(self.database(zone), table, str(link), list(columns), version, description)
        doc = self._doc(zone, table)
        replace_atomically(doc, lambda tmp: tmp.write_text(json.dumps(asdict(info), indent=2)))
        _prune_versions(self.store, zone, table, {version, previous.version if previous else version})
        return info



class GlueCatalog(Catalog):
    """The AWS Glue Data Catalog; the table's location is swapped to the new version on publish."""

    store: ObjectStore
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests).")

    def _client(self):
        import boto3

        return boto3.client("glue", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def get(self, zone: str, table: str) -> TableInfo | None:
        client = self._client()
        try:
            t = client.get_table(DatabaseName=self.database(zone), Name=table)["Table"]
        except client.exceptions.EntityNotFoundException:
            return None
        return _table_info(self.database(zone), t)

    def tables(self, zone: str) -> list[TableInfo]:
        client = self._client()
        try:
            pages = client.get_paginator("get_tables").paginate(DatabaseName=self.database(zone))
            return [_table_info(self.database(zone), t) for page in pages for t in page["TableList"]]
        except client.exceptions.EntityNotFoundException:
            return []

    def publish(self, zone, table, version, columns, description=""):
        client = self._client()
        database = self.database(zone)
        previous = self.get(zone, table)
        location = self.store.uri(version_key(zone, table, version)) + "/"
        table_input = {
            "Name": table,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "lake_version": version},
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": location,
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                },
            },
        }
        try:
            client.create_database(DatabaseInput={"Name": database})
        except client.exceptions.AlreadyExistsException:
            pass
        if previous is None:
            client.create_table(DatabaseName=database, TableInput=table_input)
        else:
            # UpdateTable keeps the old definition as a table version: Glue's own history of publishes.
            client.update_table(DatabaseName=database, TableInput=table_input)
        _prune_versions(self.store, zone, table, {version, previous.version if previous else version})
        return _table_info(database, client.get_table(DatabaseName=database, Name=table)["Table"])


def _table_info(database: str, t: dict) -> TableInfo:
    sd = t.get("StorageDescriptor", {})
    return TableInfo(
        database=database,
        name=t["Name"],
        location=sd.get("Location", ""),
        columns=[(c["Name"], c["Type"]) for c in sd.get("Columns", [])],
        version=t.get("Parameters", {}).get("lake_version", ""),
        description=t.get("Description", ""),
        updated_at=str(t.get("UpdateTime", "")),
    )
