"""The SQL warehouse the dbt project builds: a DuckDB file locally, Redshift Serverless on AWS.

Both answer queries and export a table as Parquet files under a destination (a local folder or an S3
prefix) — DuckDB with `COPY … TO`, Redshift with `UNLOAD` through the Redshift Data API, which needs
no driver, no VPC route and no password in the code location.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

# information_schema type names (DuckDB, Redshift) to the Glue/Spark type the catalog records.
_GLUE_TYPES = {
    "integer": "int", "int": "int", "int4": "int", "smallint": "smallint", "bigint": "bigint",
    "int8": "bigint", "double": "double", "double precision": "double", "float8": "double",
    "real": "float", "float": "float", "boolean": "boolean", "bool": "boolean", "date": "date",
    "varchar": "string", "character varying": "string", "text": "string", "character": "string",
}


def glue_type(sql_type: str) -> str:
    sql_type = sql_type.lower()
    if sql_type.startswith("timestamp"):
        return "timestamp"
    if sql_type.startswith(("decimal", "numeric")):
        return sql_type.replace("numeric", "decimal")
    return _GLUE_TYPES.get(sql_type.split("(")[0].strip(), "string")


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Warehouse(dg.ConfigurableResource):
    """Interface shared by both deployments. Tables are named without schema (`mart_…`)."""

    schema_name: str = Field(description="Schema the dbt models are built in (profiles.yml `schema`).")

    def query(self, sql: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def export(self, table: str, destination_uri: str) -> dict[str, Any]:
        """Write `table` as Parquet files under `destination_uri`; return {"rows": n, "files": [uris]}."""
        raise NotImplementedError

    def qualified(self, table: str) -> str:
        return f"{self.schema_name}.{table}"

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, Glue type) of the table's columns, in order."""
        rows = self.query(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = {quote_literal(self.schema_name)} and table_name = {quote_literal(table)} "
            "order by ordinal_position"
        )
        if not rows:
            raise LookupError(
                f"table {self.qualified(table)} does not exist in the warehouse: build it first"
            )
        return [(r["column_name"], glue_type(r["data_type"])) for r in rows]


class DuckDBWarehouse(Warehouse):
    """The DuckDB file dbt-duckdb builds, opened read-only so exports never hold its write lock."""

    path: str = Field(description="The DuckDB database file (<lake_root>/warehouse/lake.duckdb).")
    schema_name: str = Field(default="main", description="Schema the dbt models are built in.")

    def _connect(self):
        import duckdb

        if not Path(self.path).exists():
            raise FileNotFoundError(
                f"warehouse database {self.path} does not exist: materialize the warehouse assets first"
            )
        return duckdb.connect(self.path, read_only=True)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            cursor = conn.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def export(self, table: str, destination_uri: str) -> dict[str, Any]:
        folder = Path(destination_uri)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "part-00000.parquet"
        with self._connect() as conn:
            select = f"select * from {self.qualified(table)}"
            (rows,) = conn.execute(
                f"copy ({select}) to {quote_literal(str(target))} (format parquet)"
            ).fetchone()
        return {"rows": int(rows), "files": [str(target)]}


_RUNNING = {"SUBMITTED", "PICKED", "STARTED"}


def _field_value(field: dict[str, Any]) -> Any:
    """A Redshift Data API result cell (`{"longValue": 3}`, `{"isNull": True}`, …) as a Python value."""
    if field.get("isNull"):
        return None
    ((_, value),) = field.items()
    return value


class RedshiftWarehouse(Warehouse):
    """Redshift Serverless through the Redshift Data API: statements run asynchronously and are polled."""

    workgroup: str = Field(description="Redshift Serverless workgroup name.")
    schema_name: str = Field(default="warehouse", description="Schema the dbt models are built in.")
    database: str = Field(default="dev", description="Database the dbt models are built in.")
    iam_role: str = Field(description="ARN of the IAM role Redshift assumes to UNLOAD to S3.")
    kms_key_id: str | None = Field(
        default=None, description="KMS key (ARN) UNLOAD encrypts its files with (SSE-KMS); None: UNLOAD's SSE-S3."
    )
    secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret with database credentials; default: IAM identity."
    )
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    poll_seconds: float = Field(default=2.0, description="Pause between DescribeStatement calls.")
    timeout_seconds: float = Field(default=3600.0, description="Give up on a statement after this long.")

    def _client(self, service: str = "redshift-data"):
        import boto3

        return boto3.client(service, region_name=self.region_name)

    def _run(
        self, client, sql: str, name: str, session_id: str | None = None, keep_session: bool = False
    ) -> dict[str, Any]:
        """Execute `sql`, wait until it finishes; return its final DescribeStatement answer.

        `keep_session` keeps the database session open for a follow-up statement (`session_id`).
        """
        if session_id:
            target: dict[str, Any] = {"SessionId": session_id}
        else:
            target = {"WorkgroupName": self.workgroup, "Database": self.database}
            if self.secret_arn:
                target["SecretArn"] = self.secret_arn
        if keep_session:
            target["SessionKeepAliveSeconds"] = 60
        executed = client.execute_statement(Sql=sql, StatementName=name, **target)
        statement_id = executed["Id"]
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = client.describe_statement(Id=statement_id)
            if status["Status"] == "FINISHED":
                return {**status, "SessionId": executed.get("SessionId")}
            if status["Status"] not in _RUNNING:
                raise RuntimeError(
                    f"Redshift statement {name} ({statement_id}) {status['Status']}: "
                    f"{status.get('Error', 'no error message')}\nSQL: {sql}"
                )
            if time.monotonic() > deadline:
                client.cancel_statement(Id=statement_id)
                raise TimeoutError(
                    f"Redshift statement {name} ({statement_id}) still running after "
                    f"{self.timeout_seconds} s; cancelled"
                )
            time.sleep(self.poll_seconds)

    def _result(self, client, statement_id: str) -> list[dict[str, Any]]:
        rows, token = [], None
        while True:
            page = client.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
            names = [c["name"] for c in page["ColumnMetadata"]]
            rows += [dict(zip(names, map(_field_value, record))) for record in page["Records"]]
            token = page.get("NextToken")
            if not token:
                return rows

    def query(self, sql: str) -> list[dict[str, Any]]:
        client = self._client()
        status = self._run(client, sql, "lake_platform query")
        return self._result(client, status["Id"]) if status.get("HasResultSet") else []

    def export(self, table: str, destination_uri: str) -> dict[str, Any]:
        if not destination_uri.startswith("s3://"):
            raise ValueError(f"Redshift can only UNLOAD to S3, not to {destination_uri}")
        prefix = destination_uri.rstrip("/") + "/"
        select = f"select * from {self.qualified(table)}"
        # UNLOAD writes SSE-S3 unless told a KMS key: `kms_key_id '<key>' encrypted` is its SSE-KMS (Redshift,
        # "Unloading encrypted data files").
        encryption = f" kms_key_id {quote_literal(self.kms_key_id)} encrypted" if self.kms_key_id else ""
        client = self._client()
        unload = self._run(
            client,
            f"unload ({quote_literal(select)}) to {quote_literal(prefix)} "
            f"iam_role {quote_literal(self.iam_role)} format parquet{encryption}",
            f"lake_platform export {table}",
            keep_session=True,
        )
        # pg_last_unload_count() answers for the session that ran the UNLOAD.
        counted = self._run(
            client,
            "select pg_last_unload_count() as unloaded_rows",
            f"lake_platform count {table}",
            session_id=unload["SessionId"],
        )
        (count,) = self._result(client, counted["Id"])
        return {"rows": int(count["unloaded_rows"]), "files": self._list_files(prefix)}

    def _list_files(self, prefix: str) -> list[str]:
        bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
        pages = self._client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]
