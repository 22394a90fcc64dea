"""The AWS Glue Data Catalog implementation of the lake's `Catalog` (see catalog.py for the contract).

Publishing an unpartitioned table updates its `StorageDescriptor.Location` (UpdateTable keeps the previous
definition as a table version); a partitioned table's publish swaps each replaced partition's location with
BatchCreatePartition / BatchUpdatePartition and drops the days the new version has no data for.

Iceberg tables live in the same databases: the Spark jobs create and commit them through Iceberg's GlueCatalog
(the Spark catalog `lake`, iceberg.CATALOG_NAME), which marks the Glue table `table_type=ICEBERG` and points
its `metadata_location` at the committed metadata file. They are read here (`get`, `tables`: the version is
that metadata file) and never published: `publish` refuses to swap a version folder over one.
"""

from __future__ import annotations

from contextlib import contextmanager

from pydantic import Field

from lake_platform.adapters.catalog import (
    ICEBERG_ZONES,
    Catalog,
    SchemaVersion,
    TableInfo,
    _prune_versions,
    _written_partitions,
    version_key,
)
from lake_platform.adapters.iceberg import CATALOG_NAME
from lake_platform.adapters.storage import ObjectStore

# What Iceberg's GlueCatalog writes into a Glue table (iceberg-aws 1.7.1, GlueTableOperations and
# IcebergToGlueConverter): Parameters `table_type` = "ICEBERG" (read case-insensitively, as Iceberg does) and
# `metadata_location` (+ `previous_metadata_location`), TableType EXTERNAL_TABLE, StorageDescriptor.Location =
# the table's base location, Columns = the current schema's columns followed by the columns only earlier
# schemas had, each with Parameters iceberg.field.{id,optional,current}; no PartitionKeys (partitioning is
# Iceberg's own, hidden from Glue).
ICEBERG_TABLE_TYPE = "ICEBERG"
ICEBERG_FIELD_CURRENT = "iceberg.field.current"


class GlueCatalog(Catalog):
    """The AWS Glue Data Catalog; the table's location is swapped to the new version on publish."""

    store: ObjectStore
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests).")

    def _client(self):
        import boto3

        return boto3.client("glue", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def iceberg_catalog_name(self) -> str:
        """The Spark catalog the jobs address Iceberg tables through: Iceberg's GlueCatalog on this catalog."""
        return CATALOG_NAME

    @contextmanager
    def pyiceberg(self):
        """PyIceberg's GlueCatalog on this Glue catalog, reading metadata files from S3 with boto3
        (iceberg_s3.Boto3FileIO) at the store's endpoint and region."""
        from pyiceberg.catalog.glue import GlueCatalog as PyIcebergGlue

        from lake_platform.adapters import iceberg_s3

        properties = {"py-io-impl": f"{iceberg_s3.__name__}.Boto3FileIO"}
        region = getattr(self.store, "region_name", None) or self.region_name
        endpoint = getattr(self.store, "endpoint_url", None) or self.endpoint_url
        properties.update({iceberg_s3.S3_REGION: region} if region else {})
        properties.update({iceberg_s3.S3_ENDPOINT: endpoint} if endpoint else {})
        yield PyIcebergGlue(CATALOG_NAME, client=self._client(), **properties)

    def get(self, zone: str, table: str) -> TableInfo | None:
        t = _glue_table(self._client(), self.database(zone), table)
        return None if t is None else _table_info(self.database(zone), t)

    def tables(self, zone: str) -> list[TableInfo]:
        client = self._client()
        try:
            pages = client.get_paginator("get_tables").paginate(DatabaseName=self.database(zone))
            return [_table_info(self.database(zone), t) for page in pages for t in page["TableList"]]
        except client.exceptions.EntityNotFoundException:
            return []

    def partitions(self, zone: str, table: str) -> dict[str, str]:
        client = self._client()
        try:
            pages = client.get_paginator("get_partitions").paginate(DatabaseName=self.database(zone), TableName=table)
            return {
                p["Values"][0]: p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]
            }
        except client.exceptions.EntityNotFoundException:
            return {}

    def schema_versions(self, zone: str, table: str) -> list[SchemaVersion]:
        client = self._client()
        try:
            pages = client.get_paginator("get_table_versions").paginate(
                DatabaseName=self.database(zone), TableName=table
            )
            found = [v for page in pages for v in page["TableVersions"]]
        except client.exceptions.EntityNotFoundException:
            return []
        found.sort(key=lambda v: int(v["VersionId"]))
        out = []
        for v in found:
            t = v["Table"]
            info = _table_info(self.database(zone), t)
            out.append(SchemaVersion(v["VersionId"], info.version, info.columns, info.partition_keys))
        return out

    def publish(self, zone, table, version, columns, description="", partition_column=None, replaced=None):
        client = self._client()
        database = self.database(zone)
        if zone in ICEBERG_ZONES:
            raise ValueError(f"{database}.{table} is an Iceberg table: its Spark job commits it")
        existing = _glue_table(client, database, table)
        if existing is not None and _is_iceberg(existing):
            raise ValueError(
                f"refusing to publish {version_key(zone, table, version)} over {database}.{table}: it is an Iceberg "
                f"table (metadata {_parameters(existing).get('metadata_location')}), which its Spark job commits as "
                f"{CATALOG_NAME}.{database}.{table}, never by a location swap"
            )
        previous = None if existing is None else _table_info(database, existing)
        location = self.store.uri(version_key(zone, table, version)) + "/"
        storage = {
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        }
        data_columns = [(n, t) for n, t in columns if n != partition_column]
        table_input = {
            "Name": table,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "lake_version": version},
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in data_columns],
                # A partitioned table's location is its versions' root; each partition has its own location.
                "Location": location if not partition_column else location.rsplit("/", 2)[0] + "/",
                **storage,
            },
        }
        if partition_column:
            kinds = dict(columns)
            table_input["PartitionKeys"] = [{"Name": partition_column, "Type": kinds.get(partition_column, "date")}]
        try:
            client.create_database(DatabaseInput={"Name": database})
        except client.exceptions.AlreadyExistsException:
            pass
        if previous is None:
            client.create_table(DatabaseName=database, TableInput=table_input)
        else:
            # UpdateTable keeps the old definition as a table version: Glue's own history of publishes.
            client.update_table(DatabaseName=database, TableInput=table_input)
        if not partition_column:
            _prune_versions(self.store, zone, table, {version, previous.version if previous else version})
        else:
            self._swap_partitions(zone, table, version, partition_column, data_columns, storage, replaced or [])
        return _table_info(database, client.get_table(DatabaseName=database, Name=table)["Table"])

    def _swap_partitions(self, zone, table, version, column, data_columns, storage, replaced) -> None:
        """Point each replaced partition at the new version, drop those it has no data for, prune folders."""
        client = self._client()
        database = self.database(zone)
        current = self.partitions(zone, table)
        written = _written_partitions(self.store, zone, table, version, column)
        base = self.store.uri(version_key(zone, table, version))

        def partition_input(value: str) -> dict:
            return {
                "Values": [value],
                "StorageDescriptor": {
                    "Columns": [{"Name": n, "Type": t} for n, t in data_columns],
                    "Location": f"{base}/{column}={value}/",
                    **storage,
                },
            }

        create = [v for v in sorted(written) if v not in current]
        update = [v for v in sorted(written) if v in current]
        drop = [v for v in sorted(set(replaced) - written) if v in current]
        for chunk in _chunks(create, 100):
            _raise_errors(client.batch_create_partition(
                DatabaseName=database, TableName=table, PartitionInputList=[partition_input(v) for v in chunk]
            ), "create")
        for chunk in _chunks(update, 100):
            entries = [{"PartitionValueList": [v], "PartitionInput": partition_input(v)} for v in chunk]
            _raise_errors(client.batch_update_partition(DatabaseName=database, TableName=table, Entries=entries),
                          "update")
        for chunk in _chunks(drop, 25):
            _raise_errors(client.batch_delete_partition(
                DatabaseName=database, TableName=table, PartitionsToDelete=[{"Values": [v]} for v in chunk]
            ), "delete")
        # Keep every version a partition points at, and the ones just replaced, for in-flight readers.
        keep = {version} | {_version_of(loc) for loc in self.partitions(zone, table).values()}
        keep |= {_version_of(current[v]) for v in update + drop}
        _prune_versions(self.store, zone, table, keep)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _raise_errors(response: dict, action: str) -> None:
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise RuntimeError(
            f"Glue could not {action} {len(errors)} partition(s), first {first.get('PartitionValues')}: "
            f"{first.get('ErrorDetail', {}).get('ErrorMessage')}"
        )


def _version_of(location: str) -> str:
    """The version folder name in `.../_versions/<table>/<version>/<column>=<value>/`."""
    return location.rstrip("/").split("/")[-2]


def _glue_table(client, database: str, table: str) -> dict | None:
    try:
        return client.get_table(DatabaseName=database, Name=table)["Table"]
    except client.exceptions.EntityNotFoundException:
        return None


def _parameters(t: dict) -> dict:
    return t.get("Parameters") or {}


def _is_iceberg(t: dict) -> bool:
    """Whether a Glue table (GetTable's `Table`) is an Iceberg table, by Iceberg's own test."""
    return str(_parameters(t).get("table_type", "")).upper() == ICEBERG_TABLE_TYPE


def _table_info(database: str, t: dict) -> TableInfo:
    sd = t.get("StorageDescriptor", {})
    if _is_iceberg(t):
        # The version is the committed metadata file; the columns are the current schema's (the Glue table also
        # lists the columns earlier schemas had, flagged iceberg.field.current=false).
        return TableInfo(
            database=database,
            name=t["Name"],
            location=sd.get("Location", ""),
            columns=[
                (c["Name"], c["Type"])
                for c in sd.get("Columns", [])
                if (c.get("Parameters") or {}).get(ICEBERG_FIELD_CURRENT, "true").lower() != "false"
            ],
            version=_parameters(t).get("metadata_location", ""),
            description=t.get("Description", ""),
            updated_at=str(t.get("UpdateTime", "")),
            partition_keys=[],
        )
    return TableInfo(
        database=database,
        name=t["Name"],
        location=sd.get("Location", ""),
        columns=[(c["Name"], c["Type"]) for c in sd.get("Columns", []) + t.get("PartitionKeys", [])],
        version=_parameters(t).get("lake_version", ""),
        description=t.get("Description", ""),
        updated_at=str(t.get("UpdateTime", "")),
        partition_keys=[k["Name"] for k in t.get("PartitionKeys", [])],
    )
