"""The AWS Glue Data Catalog implementation of the lake's `Catalog` (see catalog.py for the contract).

Publishing a version-folder table (exports, the raw inventory) updates its `StorageDescriptor.Location`.

The lake's other tables are Iceberg tables in the same databases: the Spark jobs create and commit them through
Iceberg's GlueCatalog (the Spark catalog `lake`, iceberg.CATALOG_NAME), the Python assets through PyIceberg's
(`pyiceberg`, `Catalog.commit`); both mark the Glue table `table_type=ICEBERG` and point its
`metadata_location` at the committed metadata file. They are read here (`get`, `tables`: the version is that
metadata file) and never published: `publish` refuses to swap a version folder over one.
"""

from __future__ import annotations

from contextlib import contextmanager

from pydantic import Field

from lake_platform.adapters.catalog import (
    ICEBERG_ZONES,
    Catalog,
    TableInfo,
    _prune_versions,
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
    iceberg_prefix: str = Field(
        default="iceberg", description="Prefix of the Iceberg warehouse in the bucket (as the Spark jobs' resource)."
    )

    def _client(self):
        import boto3

        return boto3.client("glue", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def iceberg_catalog_name(self) -> str:
        """The Spark catalog the jobs address Iceberg tables through: Iceberg's GlueCatalog on this catalog."""
        return CATALOG_NAME

    @contextmanager
    def pyiceberg(self, create: bool = False):
        """PyIceberg's GlueCatalog on this Glue catalog, reading and writing files on S3 with boto3
        (iceberg_s3.Boto3FileIO) at the store's endpoint and region; new tables under the warehouse the Spark
        jobs use (`s3://<bucket>/<iceberg_prefix>/<database>.db/<table>`)."""
        from pyiceberg.catalog.glue import GlueCatalog as PyIcebergGlue

        from lake_platform.adapters import iceberg_s3

        properties = {"py-io-impl": f"{iceberg_s3.__name__}.Boto3FileIO",
                      "warehouse": self.store.uri(self.iceberg_prefix.strip("/"))}
        region = getattr(self.store, "region_name", None) or self.region_name
        endpoint = getattr(self.store, "endpoint_url", None) or self.endpoint_url
        properties.update({iceberg_s3.S3_REGION: region} if region else {})
        properties.update({iceberg_s3.S3_ENDPOINT: endpoint} if endpoint else {})
        kms_key_id = getattr(self.store, "kms_key_id", None)  # the store's SSE-KMS key: PyIceberg's writes use it too
        properties.update({iceberg_s3.S3_SSE_TYPE: "kms", iceberg_s3.S3_SSE_KEY: kms_key_id} if kms_key_id else {})
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

    def publish(self, zone, table, version, columns, description=""):
        client = self._client()
        database = self.database(zone)
        if zone in ICEBERG_ZONES:
            raise ValueError(f"{database}.{table} is an Iceberg table: its writer commits it")
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
        table_input = {
            "Name": table,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "lake_version": version},
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": location,
                **storage,
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
