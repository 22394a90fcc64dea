"""One contract for the lake's object store and catalog, run against both deployments.

`local`: LocalObjectStore + LocalCatalog in a temporary directory; `aws`: S3ObjectStore + GlueCatalog
against moto. The same test functions run on both, so the local lake cannot drift from the AWS one.
"""

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lake_platform.adapters.catalog import LocalCatalog, version_key
from lake_platform.adapters.catalog_glue import GlueCatalog
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore

REGION = "us-east-1"
BUCKET = "lake-test"
COLUMNS = [("flight_id", "bigint"), ("carrier", "string")]


@pytest.fixture(params=["local", "aws"])
def lake(request, tmp_path, monkeypatch):
    if request.param == "local":
        store = LocalObjectStore(root=str(tmp_path / "lake"))
        yield store, LocalCatalog(store=store)
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
        yield store, GlueCatalog(store=store, region_name=REGION)


def files_at(store, location: str) -> dict[str, bytes]:
    """What an engine reading the catalog location sees: file name -> content."""
    if location.startswith("s3://"):
        prefix = location.removeprefix(f"s3://{BUCKET}/")
        return {o.key.rsplit("/", 1)[1]: store.get_bytes(o.key) for o in store.list(prefix)}
    return {p.name: p.read_bytes() for p in Path(location).iterdir()}


def put_many(store, keys: list[str]) -> None:
    if isinstance(store, S3ObjectStore):
        # One client for the setup: the store makes a client per call (~30 ms each here).
        s3 = boto3.client("s3")
        for key in keys:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    else:
        for key in keys:
            store.put_bytes(key, b"x")


def test_objects_round_trip_through_put_get_list_copy_and_delete(lake, tmp_path):
    store, _ = lake
    source = tmp_path / "weather.csv"
    source.write_bytes(b"origin,temp\nJFK,39.0\n")

    store.put_bytes("landing/sftp/airlines.csv", b"carrier,name\nAA,American\n")
    store.put_file("landing/data_exchange/weather/r1/weather.csv", source)
    store.copy("landing/sftp/airlines.csv", "raw/airlines/2024-01-01/airlines.csv")
    store.download("raw/airlines/2024-01-01/airlines.csv", tmp_path / "out" / "airlines.csv")

    listed = {o.key: o for o in store.list("landing/")}
    assert set(listed) == {"landing/sftp/airlines.csv", "landing/data_exchange/weather/r1/weather.csv"}
    assert listed["landing/sftp/airlines.csv"].size == len(b"carrier,name\nAA,American\n")
    assert store.get_bytes("landing/data_exchange/weather/r1/weather.csv") == source.read_bytes()
    assert (tmp_path / "out" / "airlines.csv").read_bytes() == b"carrier,name\nAA,American\n"
    assert store.exists("raw/airlines/2024-01-01/airlines.csv")
    assert not store.exists("raw/airlines/2024-01-01/airlines")
    assert store.uri("raw/x").endswith("raw/x")

    assert store.delete_prefix("landing/") == 2
    assert store.list("landing/") == []
    assert [o.key for o in store.list("raw/")] == ["raw/airlines/2024-01-01/airlines.csv"]


def test_rewriting_an_object_changes_its_etag(lake):
    store, _ = lake
    store.put_bytes("landing/sftp/planes.csv", b"v1")
    before = store.list("landing/sftp/planes.csv")[0].etag
    store.put_bytes("landing/sftp/planes.csv", b"version 2")

    assert store.list("landing/sftp/planes.csv")[0].etag != before
    assert store.get_bytes("landing/sftp/planes.csv") == b"version 2"


def test_listing_and_deleting_more_keys_than_one_s3_page(lake):
    store, _ = lake
    keys = [f"raw/flights/part-{i:05d}.csv" for i in range(1001)]  # S3 pages hold 1,000 keys
    put_many(store, keys)
    put_many(store, ["raw/flights_other/part-0.csv"])

    assert sorted(o.key for o in store.list("raw/flights/")) == keys
    assert store.delete_prefix("raw/flights/") == 1001  # DeleteObjects takes 1,000 keys a call
    assert store.list("raw/flights/") == []
    assert [o.key for o in store.list("raw/")] == ["raw/flights_other/part-0.csv"]


def publish_version(catalog, store, version: str):
    """What an exports run does: write a fresh version folder, then publish it (clean, quarantine and curated tables
    are Iceberg tables, which their Spark jobs commit: see the Iceberg tests below)."""
    store.put_bytes(f"{version_key('exports', 'flights', version)}/part-0.parquet", version.encode())
    return catalog.publish("exports", "flights", version, COLUMNS, "Flights")


def test_publish_swaps_the_table_to_the_new_version_and_prunes_superseded_ones(lake):
    store, catalog = lake

    first = publish_version(catalog, store, "v1")
    assert (first.database, first.version, first.columns) == ("lake_exports", "v1", COLUMNS)
    assert files_at(store, catalog.location("exports", "flights")) == {"part-0.parquet": b"v1"}

    publish_version(catalog, store, "v2")
    assert files_at(store, catalog.location("exports", "flights")) == {"part-0.parquet": b"v2"}
    assert store.list(version_key("exports", "flights", "v1")), "the previous version stays for readers"

    publish_version(catalog, store, "v3")
    assert files_at(store, catalog.location("exports", "flights")) == {"part-0.parquet": b"v3"}
    assert store.list(version_key("exports", "flights", "v1")) == []
    assert store.list(version_key("exports", "flights", "v2"))

    tables = catalog.tables("exports")
    assert [(t.name, t.version, t.description) for t in tables] == [("flights", "v3", "Flights")]
    assert catalog.get("exports", "flights").columns == COLUMNS


def test_catalog_reports_missing_tables_clearly(lake):
    _, catalog = lake

    assert catalog.get("exports", "planes") is None
    assert catalog.tables("exports") == []
    with pytest.raises(LookupError, match="lake_exports.planes is not in the catalog"):
        catalog.location("exports", "planes")


# Iceberg tables on AWS: the Spark jobs commit them through Iceberg's GlueCatalog (the Spark catalog `lake`),
# which writes the Glue table itself. `commit_iceberg_table` writes what Iceberg 1.7.1 (Glue 5.0's) writes:
# GlueTableOperations.doCommit/persistGlueTable and IcebergToGlueConverter.setTableInputInformation.

WAREHOUSE = f"s3://{BUCKET}/iceberg"  # GlueJobs/EmrServerlessJobs' default warehouse, trailing slash stripped


@pytest.fixture
def glue_lake(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
        yield store, GlueCatalog(store=store, region_name=REGION)


def iceberg_column(name: str, kind: str, field_id: int, current: bool = True) -> dict:
    """A Glue column as IcebergToGlueConverter writes it (Java's Boolean.toString: "true"/"false")."""
    return {
        "Name": name,
        "Type": kind,
        "Parameters": {
            "iceberg.field.id": str(field_id),
            "iceberg.field.optional": "true",
            "iceberg.field.current": str(current).lower(),
        },
    }


def commit_iceberg_table(database: str, table: str, sequence: int, columns: list[dict]) -> str:
    """One Iceberg commit as Iceberg's GlueCatalog makes it; returns the new metadata file's location."""
    glue = boto3.client("glue")
    location = f"{WAREHOUSE}/{database}.db/{table}"  # GlueCatalog.defaultWarehouseLocation
    metadata = f"{location}/metadata/{sequence:05d}-6b1f1c9e-0d3a-4c7e-9a51-{sequence:012d}.metadata.json"
    try:
        existing = glue.get_table(DatabaseName=database, Name=table)["Table"]
    except glue.exceptions.EntityNotFoundException:
        existing = None
    parameters = dict(existing["Parameters"]) if existing else {}
    parameters["table_type"] = "ICEBERG"
    parameters["metadata_location"] = metadata
    if existing:
        parameters["previous_metadata_location"] = existing["Parameters"]["metadata_location"]
    table_input = {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "StorageDescriptor": {"Location": location, "Columns": columns},  # no PartitionKeys, no formats/serde
    }
    if existing:
        glue.update_table(DatabaseName=database, TableInput=table_input)
    else:
        glue.create_table(DatabaseName=database, TableInput=table_input)
    return metadata


def create_clean_flights() -> tuple[str, str]:
    """CREATE TABLE lake.lake_clean.flights, then ALTER TABLE ... DROP COLUMN tailnum: two commits."""
    boto3.client("glue").create_database(DatabaseInput={"Name": "lake_clean"})  # CREATE NAMESPACE lake.lake_clean
    first = commit_iceberg_table("lake_clean", "flights", 0, [
        iceberg_column("flight_id", "bigint", 1),
        iceberg_column("carrier", "string", 2),
        iceberg_column("tailnum", "string", 3),
        iceberg_column("flight_date", "date", 4),
    ])
    # The current schema's columns first, then those only an earlier schema had, marked not current.
    second = commit_iceberg_table("lake_clean", "flights", 1, [
        iceberg_column("flight_id", "bigint", 1),
        iceberg_column("carrier", "string", 2),
        iceberg_column("flight_date", "date", 4),
        iceberg_column("tailnum", "string", 3, current=False),
    ])
    return first, second


def test_glue_catalog_reads_an_iceberg_table_as_icebergs_glue_catalog_registers_it(glue_lake):
    _, catalog = glue_lake
    _, second = create_clean_flights()
    commit_iceberg_table("lake_clean", "planes", 0, [iceberg_column("tailnum", "string", 1)])

    info = catalog.get("clean", "flights")
    assert info.database == "lake_clean" and info.name == "flights"
    assert info.location == f"{WAREHOUSE}/lake_clean.db/flights"
    assert info.version == second  # the metadata file of the last commit
    assert second == f"{info.location}/metadata/00001-6b1f1c9e-0d3a-4c7e-9a51-000000000001.metadata.json"
    assert info.columns == [("flight_id", "bigint"), ("carrier", "string"), ("flight_date", "date")]
    assert info.partition_keys == []  # Iceberg's partitioning is its own, not Glue's

    tables = {t.name: t for t in catalog.tables("clean")}
    assert sorted(tables) == ["flights", "planes"]
    assert tables["flights"] == info
    assert tables["planes"].columns == [("tailnum", "string")]
    assert tables["planes"].version == f"{WAREHOUSE}/lake_clean.db/planes/metadata/" + (
        "00000-6b1f1c9e-0d3a-4c7e-9a51-000000000000.metadata.json"
    )

    assert catalog.iceberg_catalog_name() == "lake"
    assert catalog.iceberg_table("clean", "flights") == "lake.lake_clean.flights"


def test_glue_catalog_recognises_iceberg_table_type_case_insensitively_as_iceberg_does(glue_lake):
    _, catalog = glue_lake
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "lake_quarantine"})
    glue.create_table(DatabaseName="lake_quarantine", TableInput={
        "Name": "flights",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"table_type": "iceberg", "metadata_location": f"{WAREHOUSE}/q/metadata/00000-a.metadata.json"},
        "StorageDescriptor": {"Location": f"{WAREHOUSE}/q", "Columns": [iceberg_column("flight_id", "bigint", 1)]},
    })

    info = catalog.get("quarantine", "flights")
    assert (info.version, info.location) == (f"{WAREHOUSE}/q/metadata/00000-a.metadata.json", f"{WAREHOUSE}/q")


def test_publishing_a_version_folder_over_an_iceberg_table_is_refused(glue_lake):
    store, catalog = glue_lake
    _, second = create_clean_flights()
    store.put_bytes(f"{version_key('clean', 'flights', 'v1')}/part-0.parquet", b"v1")

    with pytest.raises(ValueError, match=r"lake_clean\.flights is an Iceberg table: its writer commits it"):
        catalog.publish("clean", "flights", "v1", COLUMNS, "Flights")

    table = boto3.client("glue").get_table(DatabaseName="lake_clean", Name="flights")["Table"]
    assert table["Parameters"]["metadata_location"] == second  # untouched
    assert table["StorageDescriptor"]["Location"] == f"{WAREHOUSE}/lake_clean.db/flights"
    assert catalog.get("clean", "flights").version == second
