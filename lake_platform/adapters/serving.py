"""The serving key-value table: DynamoDB on AWS, an embedded SQLite item store locally.

An item is a flat JSON-able dict with one key attribute. `replace_all` makes the table hold exactly the
given items: loading the same predictions twice leaves the same rows, and keys that are no longer in the
load are deleted, so the table never accumulates stale predictions.
"""

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field


@dataclass(frozen=True)
class LoadReport:
    written: int
    deleted: int
    total: int


def clean_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON types: dates as ISO strings, numpy scalars as Python numbers, missing values dropped
    (DynamoDB stores no NaN and no empty attribute, so an absent attribute is how "unknown" is kept)."""
    out = {}
    for name, value in item.items():
        if type(value).__module__ == "numpy":
            value = value.item()  # numpy scalar to its Python number
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[name] = value.isoformat() if isinstance(value, (date, datetime)) else value
    return out


class KeyValueTable(dg.ConfigurableResource):
    """Interface shared by both deployments (see LocalKeyValueTable, DynamoDBTable)."""

    def put_items(self, items: Iterable[dict[str, Any]], key_name: str) -> int:
        """Insert or overwrite items by their `key_name` attribute; returns how many were written."""
        raise NotImplementedError

    def get(self, key: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def replace_all(self, items: list[dict[str, Any]], key_name: str) -> LoadReport:
        """Make the table hold exactly `items`, one per key."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the table is, for metadata."""
        raise NotImplementedError


def unique_by_key(items: Iterable[dict[str, Any]], key_name: str) -> dict[Any, dict[str, Any]]:
    by_key: dict[Any, dict[str, Any]] = {}
    for item in items:
        cleaned = clean_item(item)
        if key_name not in cleaned:
            raise KeyError(f"item without its key attribute {key_name!r}: {cleaned}")
        if cleaned[key_name] in by_key:
            raise ValueError(f"two items share the key {key_name}={cleaned[key_name]!r}")
        by_key[cleaned[key_name]] = cleaned
    return by_key


class LocalKeyValueTable(KeyValueTable):
    """A DynamoDB-like item store in one SQLite file: a primary key column and the item as JSON."""

    path: str = Field(description="SQLite file, e.g. <lake>/serving/serving.db.")
    table_name: str = Field(default="delay_predictions", description="Table inside the file.")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One connection, one transaction: committed on success, rolled back on error, then closed."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path)
        try:
            with connection:
                connection.execute(
                    f'create table if not exists "{self.table_name}" (pk text primary key, item text not null)'
                )
                yield connection
        finally:
            connection.close()

    @staticmethod
    def _rows(items: dict[Any, dict[str, Any]]) -> list[tuple[str, str]]:
        return [(str(key), json.dumps(item)) for key, item in items.items()]

    def put_items(self, items, key_name):
        rows = self._rows(unique_by_key(items, key_name))
        with self._transaction() as connection:
            connection.executemany(f'insert or replace into "{self.table_name}" values (?, ?)', rows)
        return len(rows)

    def get(self, key):
        with self._transaction() as connection:
            row = connection.execute(f'select item from "{self.table_name}" where pk = ?', (str(key),)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self):
        with self._transaction() as connection:
            return connection.execute(f'select count(*) from "{self.table_name}"').fetchone()[0]

    def replace_all(self, items, key_name):
        rows = self._rows(unique_by_key(items, key_name))
        with self._transaction() as connection:  # readers see the old table or the new one, never a mix
            connection.execute("create temp table incoming (pk text primary key, item text not null)")
            connection.executemany("insert into incoming values (?, ?)", rows)
            deleted = connection.execute(
                f'delete from "{self.table_name}" where pk not in (select pk from incoming)'
            ).rowcount
            connection.execute(f'insert or replace into "{self.table_name}" select pk, item from incoming')
            total = connection.execute(f'select count(*) from "{self.table_name}"').fetchone()[0]
        return LoadReport(written=len(rows), deleted=deleted, total=total)

    def describe(self):
        return f"sqlite:///{self.path} table {self.table_name}"


def to_dynamodb(value: Any) -> Any:
    """DynamoDB's number type is Decimal; boto3 rejects Python floats."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamodb(v) for v in value]
    return value


def from_dynamodb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamodb(v) for v in value]
    return value


class DynamoDBTable(KeyValueTable):
    """An existing DynamoDB table whose partition key is the items' key attribute."""

    table_name: str = Field(description="DynamoDB table, e.g. dg.EnvVar('SERVING_TABLE').")
    key_name: str = Field(default="flight_id", description="The table's partition key attribute.")
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests, DynamoDB Local).")

    def _table(self):
        import boto3

        return boto3.resource("dynamodb", region_name=self.region_name, endpoint_url=self.endpoint_url).Table(
            self.table_name
        )

    def _check_key(self, key_name: str) -> None:
        if key_name != self.key_name:
            raise ValueError(f"{self.table_name} is keyed by {self.key_name!r}, not {key_name!r}")

    def put_items(self, items, key_name):
        self._check_key(key_name)
        unique = unique_by_key(items, key_name)
        # batch_writer sends BatchWriteItem calls of 25 items and retries unprocessed ones.
        with self._table().batch_writer(overwrite_by_pkeys=[key_name]) as batch:
            for item in unique.values():
                batch.put_item(Item=to_dynamodb(item))
        return len(unique)

    def get(self, key):
        item = self._table().get_item(Key={self.key_name: to_dynamodb(key)}).get("Item")
        return from_dynamodb(item) if item else None

    def _keys(self) -> set:
        table, keys, start = self._table(), set(), {}
        while True:
            page = table.scan(ProjectionExpression="#k", ExpressionAttributeNames={"#k": self.key_name}, **start)
            keys |= {from_dynamodb(item[self.key_name]) for item in page["Items"]}
            if "LastEvaluatedKey" not in page:
                return keys
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def count(self):
        return len(self._keys())

    def replace_all(self, items, key_name):
        """Upsert every item, then delete the keys not in this load. DynamoDB has no table swap, so
        for a moment readers can see new items beside stale ones; never a missing current item."""
        self._check_key(key_name)
        unique = unique_by_key(items, key_name)
        written = self.put_items(unique.values(), key_name)
        stale = self._keys() - set(unique)
        with self._table().batch_writer() as batch:
            for key in stale:
                batch.delete_item(Key={key_name: to_dynamodb(key)})
        return LoadReport(written=written, deleted=len(stale), total=len(unique))

    def describe(self):
        return f"dynamodb table {self.table_name}"
