"""The serving key-value table: DynamoDB on AWS, an embedded SQLite item store locally.

An item is a flat JSON-able dict with one key attribute and a date attribute (ISO `YYYY-MM-DD` string).
`replace_range` makes the items of a range of days exactly the given ones: loading the same predictions twice
leaves the same rows, and keys of those days that are no longer in the load are deleted, so the table never
accumulates stale predictions; items of other days are not touched (a daily-partitioned load).
"""

import json
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field


@dataclass(frozen=True)
class LoadReport:
    written: int
    deleted: int
    in_range: int  # items of the range's days after the load
    total: int | None = None  # items in the whole table, when known without reading it all (not on DynamoDB)


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

    def replace_range(
        self, items: list[dict[str, Any]], key_name: str, first: str, last: str, date_name: str = "flight_date"
    ) -> LoadReport:
        """Make the items whose `date_name` is within first..last (ISO dates, inclusive) exactly `items`, one per
        key: upsert them, delete that range's other items; items of other days are left untouched. Every item
        must fall in the range (a ValueError otherwise, before anything is written)."""
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


def in_range(items: dict[Any, dict[str, Any]], date_name: str, first: str, last: str) -> dict[Any, dict[str, Any]]:
    """`items` (cleaned: dates as ISO strings), checked to have `date_name` within first..last."""
    first, last = date.fromisoformat(first).isoformat(), date.fromisoformat(last).isoformat()
    for key, item in items.items():
        day = item.get(date_name)
        if not isinstance(day, str) or not first <= day <= last:
            raise ValueError(f"item {key!r} has {date_name}={day!r}, outside the range {first} .. {last} being loaded")
    return items


class LocalKeyValueTable(KeyValueTable):
    """A DynamoDB-like item store in one SQLite file: a primary key column and the item as JSON.

    A range load finds a day's items through an index on the expression `json_extract(item, '$."<date>"')`
    (SQLite's expression index, the local counterpart of the DynamoDB GSI): no extra column, so a table written
    before range loads existed needs no migration; the index is created on first use.
    """

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

    @staticmethod
    def date_expression(date_name: str) -> str:
        """The SQL expression of an item's date attribute; a query must use it verbatim to use the index."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", date_name):
            raise ValueError(f"not a plain attribute name: {date_name!r}")
        return f"json_extract(item, '$.\"{date_name}\"')"

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

    def replace_range(self, items, key_name, first, last, date_name="flight_date"):
        rows = self._rows(in_range(unique_by_key(items, key_name), date_name, first, last))
        day = self.date_expression(date_name)
        in_days = f"{day} between ? and ?"
        with self._transaction() as connection:  # readers see the old range or the new one, never a mix
            connection.execute(
                f'create index if not exists "{self.table_name}__{date_name}" on "{self.table_name}" ({day})'
            )
            connection.execute("create temp table incoming (pk text primary key)")
            connection.executemany("insert into incoming values (?)", [(pk,) for pk, _ in rows])
            deleted = connection.execute(
                f'delete from "{self.table_name}" where {in_days} and pk not in (select pk from incoming)',
                (first, last),
            ).rowcount
            connection.executemany(f'insert or replace into "{self.table_name}" values (?, ?)', rows)
            held = connection.execute(f'select count(*) from "{self.table_name}" where {in_days}', (first, last))
            in_range_count = held.fetchone()[0]
            total = connection.execute(f'select count(*) from "{self.table_name}"').fetchone()[0]
        return LoadReport(written=len(rows), deleted=deleted, in_range=in_range_count, total=total)

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
    """An existing DynamoDB table whose partition key is the items' key attribute, with a global secondary index
    `date_index` whose partition key is the date attribute (String, ISO date; KEYS_ONLY projection is enough).

    A range load finds each day's items with a Query on that index, reading only the range's keys; without the
    index (`date_index=None`) it has to Scan the whole table with a filter, which reads (and bills) every item
    of every day for each load.
    """

    table_name: str = Field(description="DynamoDB table, e.g. dg.EnvVar('SERVING_TABLE').")
    key_name: str = Field(default="flight_id", description="The table's partition key attribute.")
    date_index: str | None = Field(
        default="flight_date-index",
        description="GSI keyed by the items' date attribute, used to find a day's items; None: Scan instead.",
    )
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

    @staticmethod
    def _pages(call, **request) -> Iterator[dict]:
        while True:
            page = call(**request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _page_keys(self, pages: Iterable[dict]) -> set:
        return {from_dynamodb(item[self.key_name]) for page in pages for item in page["Items"]}

    def _keys(self) -> set:
        table = self._table()
        names = {"#k": self.key_name}
        return self._page_keys(self._pages(table.scan, ProjectionExpression="#k", ExpressionAttributeNames=names))

    def _keys_of_days(self, date_name: str, first: str, last: str) -> set:
        """The keys of the items whose date is within first..last."""
        from boto3.dynamodb.conditions import Attr, Key
        from botocore.exceptions import ClientError

        table, keys = self._table(), set()
        names = {"#k": self.key_name}
        if self.date_index is None:
            # No index on the date: a Scan with a filter is the only way to find a day's items. It reads every
            # item of the table (the filter applies after the read), so configure the GSI for real tables.
            condition = Attr(date_name).between(first, last)
            pages = self._pages(table.scan, ProjectionExpression="#k", ExpressionAttributeNames=names,
                                FilterExpression=condition)
            return self._page_keys(pages)
        day, end = date.fromisoformat(first), date.fromisoformat(last)
        while day <= end:  # a GSI Query takes one partition key value: one query (or a few pages) per day
            on_day = Key(date_name).eq(day.isoformat())
            pages = self._pages(table.query, IndexName=self.date_index, KeyConditionExpression=on_day,
                                ProjectionExpression="#k", ExpressionAttributeNames=names)
            try:
                keys |= self._page_keys(pages)
            except ClientError as error:
                # DynamoDB: ValidationException "The table does not have the specified index"; moto (and DynamoDB
                # Local): ResourceNotFoundException "Invalid index".
                if "index" in error.response.get("Error", {}).get("Message", "").lower():
                    raise LookupError(
                        f"{self.table_name} has no usable global secondary index {self.date_index!r} with partition "
                        f"key {date_name!r} (String): create it, or set date_index=None to scan instead ({error})"
                    ) from error
                raise
            day += timedelta(days=1)
        return keys

    def count(self):
        return len(self._keys())

    def replace_range(self, items, key_name, first, last, date_name="flight_date"):
        """Upsert every item, then delete the range's keys not in this load. DynamoDB has no table swap, so
        for a moment readers can see new items beside stale ones; never a missing current item. A GSI is
        eventually consistent: an item written a moment before this load may be missed as stale (the next
        load of its day deletes it)."""
        self._check_key(key_name)
        unique = in_range(unique_by_key(items, key_name), date_name, first, last)
        written = self.put_items(unique.values(), key_name)
        stale = self._keys_of_days(date_name, first, last) - set(unique)
        with self._table().batch_writer() as batch:
            for key in stale:
                batch.delete_item(Key={key_name: to_dynamodb(key)})
        return LoadReport(written=written, deleted=len(stale), in_range=len(unique))

    def describe(self):
        return f"dynamodb table {self.table_name}"
