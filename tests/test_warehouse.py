"""The warehouse adapters (DuckDB on a temporary file, Redshift Data API against botocore's Stubber)
and the export of a warehouse table into the exports zone."""

from __future__ import annotations

import boto3
import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from botocore.stub import Stubber

from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.adapters.warehouse import DuckDBWarehouse, RedshiftWarehouse
from lake_platform.exports import build_export_assets

MART = "mart_carrier_ontime_monthly"


@pytest.fixture
def duckdb_warehouse(tmp_path) -> DuckDBWarehouse:
    """A warehouse file holding a small carrier mart, built the way dbt-duckdb builds it."""
    path = tmp_path / "lake" / "warehouse" / "lake.duckdb"
    path.parent.mkdir(parents=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            f"""
            create table {MART} as
            select * from (values
                ('AA', 'American Airlines Inc.', 2013, 1, 3::bigint, 1::bigint, 2::bigint, 1::bigint, 0.5::double),
                ('UA', 'United Air Lines Inc.', 2013, 1, 1::bigint, 0::bigint, 1::bigint, 0::bigint, 1.0),
                ('B6', 'JetBlue Airways', 2013, 3, 1::bigint, 1::bigint, 0::bigint, 0::bigint, null)
            ) as t(
                carrier, carrier_name, year, month, flights, cancelled, arrived, arrived_late, on_time_rate
            )
            """
        )
    return DuckDBWarehouse(path=str(path))


def test_duckdb_query_returns_rows_as_dicts(duckdb_warehouse):
    rows = duckdb_warehouse.query(f"select carrier, flights from {MART} order by carrier")
    assert rows == [
        {"carrier": "AA", "flights": 3}, {"carrier": "B6", "flights": 1}, {"carrier": "UA", "flights": 1}
    ]


def test_duckdb_columns_are_reported_in_glue_types(duckdb_warehouse):
    assert duckdb_warehouse.columns(MART) == [
        ("carrier", "string"), ("carrier_name", "string"), ("year", "int"), ("month", "int"),
        ("flights", "bigint"), ("cancelled", "bigint"), ("arrived", "bigint"), ("arrived_late", "bigint"),
        ("on_time_rate", "double"),
    ]


def test_duckdb_export_writes_every_row_as_parquet(duckdb_warehouse, tmp_path):
    result = duckdb_warehouse.export(MART, str(tmp_path / "out" / "v1"))

    assert result["rows"] == 3
    table = pq.read_table(result["files"][0])
    assert sorted(table.column("carrier").to_pylist()) == ["AA", "B6", "UA"]
    assert table.schema.field("flights").type == "int64"


def test_missing_warehouse_file_says_to_build_the_warehouse_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize the warehouse assets first"):
        DuckDBWarehouse(path=str(tmp_path / "absent.duckdb")).query("select 1")


def test_carrier_export_is_published_as_a_new_version_of_the_exports_table(duckdb_warehouse, tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    catalog = LocalCatalog(store=store)
    (export,) = build_export_assets("duckdb")

    result = dg.materialize(
        [export], resources={"warehouse": duckdb_warehouse, "store": store, "catalog": catalog}
    )

    metadata = result.asset_materializations_for_node(export.op.name)[0].metadata
    assert metadata["rows"].value == 3
    published = tmp_path / "lake" / "exports" / "carrier_ontime_monthly"
    assert published.is_symlink() and "_versions" in str(published.resolve())
    assert pq.read_table(published).num_rows == 3
    assert catalog.get("exports", "carrier_ontime_monthly").columns[4] == ("flights", "bigint")
    assert "| AA | American Airlines Inc. | 2013 | 1 | 3 |" in metadata["preview"].value


STATEMENT_ID = "d9b6c0c9-0747-4bf4-b142-e8883122f766"
COUNT_ID = "a1b2c3d4-0747-4bf4-b142-e8883122f766"
SESSION_ID = "5e55107d-0747-4bf4-b142-e8883122f766"
ROLE = "arn:aws:iam::123456789012:role/lake-redshift-unload"


def _client(service: str):
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def redshift(monkeypatch):
    """A RedshiftWarehouse whose boto3 clients are stubbed; yields (warehouse, data stub, s3 stub)."""
    clients = {"redshift-data": _client("redshift-data"), "s3": _client("s3")}
    monkeypatch.setattr(RedshiftWarehouse, "_client", lambda self, service="redshift-data": clients[service])
    warehouse = RedshiftWarehouse(workgroup="lake", database="dev", iam_role=ROLE, poll_seconds=0)
    with Stubber(clients["redshift-data"]) as data, Stubber(clients["s3"]) as s3:
        yield warehouse, data, s3
        data.assert_no_pending_responses()
        s3.assert_no_pending_responses()


def test_redshift_export_unloads_to_s3_and_counts_rows_in_the_same_session(redshift):
    warehouse, data, s3 = redshift
    prefix = "s3://lake-bucket/exports/_versions/carrier_ontime_monthly/v1/"
    data.add_response(
        "execute_statement",
        {"Id": STATEMENT_ID, "SessionId": SESSION_ID},
        {
            "Sql": f"unload ('select * from warehouse.{MART}') to '{prefix}' "
            f"iam_role '{ROLE}' format parquet",
            "StatementName": f"lake_platform export {MART}",
            "WorkgroupName": "lake",
            "Database": "dev",
            "SessionKeepAliveSeconds": 60,
        },
    )
    data.add_response("describe_statement", {"Id": STATEMENT_ID, "Status": "STARTED"}, {"Id": STATEMENT_ID})
    data.add_response("describe_statement", {"Id": STATEMENT_ID, "Status": "FINISHED"}, {"Id": STATEMENT_ID})
    data.add_response(
        "execute_statement",
        {"Id": COUNT_ID},
        {
            "Sql": "select pg_last_unload_count() as unloaded_rows",
            "StatementName": f"lake_platform count {MART}",
            "SessionId": SESSION_ID,
        },
    )
    data.add_response(
        "describe_statement", {"Id": COUNT_ID, "Status": "FINISHED", "HasResultSet": True}, {"Id": COUNT_ID}
    )
    data.add_response(
        "get_statement_result",
        {"Records": [[{"longValue": 192}]], "ColumnMetadata": [{"name": "unloaded_rows"}]},
        {"Id": COUNT_ID},
    )
    s3.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "exports/_versions/carrier_ontime_monthly/v1/0000_part_00.parquet"}]},
        {"Bucket": "lake-bucket", "Prefix": "exports/_versions/carrier_ontime_monthly/v1/"},
    )

    result = warehouse.export(MART, prefix.rstrip("/"))

    assert result == {"rows": 192, "files": [prefix + "0000_part_00.parquet"]}


def test_redshift_failed_statement_raises_with_its_name_id_and_error(redshift):
    warehouse, data, _ = redshift
    data.add_response("execute_statement", {"Id": STATEMENT_ID}, None)
    data.add_response(
        "describe_statement",
        {"Id": STATEMENT_ID, "Status": "FAILED", "Error": 'ERROR: relation "warehouse.nope" does not exist'},
        {"Id": STATEMENT_ID},
    )

    with pytest.raises(RuntimeError) as raised:
        warehouse.query("select * from warehouse.nope")

    message = str(raised.value)
    assert STATEMENT_ID in message and "lake_platform query" in message
    assert 'relation "warehouse.nope" does not exist' in message


def test_redshift_query_reads_every_result_page_with_nulls(redshift):
    warehouse, data, _ = redshift
    columns = [{"name": "carrier"}, {"name": "on_time_rate"}]
    data.add_response("execute_statement", {"Id": STATEMENT_ID}, None)
    data.add_response(
        "describe_statement", {"Id": STATEMENT_ID, "Status": "FINISHED", "HasResultSet": True}, None
    )
    data.add_response(
        "get_statement_result",
        {
            "Records": [[{"stringValue": "AA"}, {"doubleValue": 0.5}]],
            "ColumnMetadata": columns,
            "NextToken": "p2",
        },
        {"Id": STATEMENT_ID},
    )
    data.add_response(
        "get_statement_result",
        {"Records": [[{"stringValue": "B6"}, {"isNull": True}]], "ColumnMetadata": columns},
        {"Id": STATEMENT_ID, "NextToken": "p2"},
    )

    rows = warehouse.query(f"select carrier, on_time_rate from warehouse.{MART}")

    assert rows == [{"carrier": "AA", "on_time_rate": 0.5}, {"carrier": "B6", "on_time_rate": None}]


def test_redshift_export_refuses_a_local_destination():
    warehouse = RedshiftWarehouse(workgroup="lake", iam_role=ROLE)
    with pytest.raises(ValueError, match="only UNLOAD to S3"):
        warehouse.export(MART, "/tmp/exports")


def test_both_deployments_define_the_same_warehouse_resources_without_credentials(tmp_path, monkeypatch):
    from lake_platform.warehouse import warehouse_resources

    for name in ("LAKE_REDSHIFT_WORKGROUP", "LAKE_REDSHIFT_DATABASE", "LAKE_REDSHIFT_UNLOAD_ROLE"):
        monkeypatch.delenv(name, raising=False)
    local = warehouse_resources("local", tmp_path)
    aws = warehouse_resources("aws", tmp_path)

    assert local.keys() == aws.keys() == {"dbt", "warehouse"}
    assert (local["dbt"].target, aws["dbt"].target) == ("duckdb", "redshift")
    assert local["warehouse"].path == str(tmp_path / "warehouse" / "lake.duckdb")
