"""Serving layer: the key-value table (embedded SQLite locally, DynamoDB against moto) and the asset
that loads the delay predictions into it, a range of days at a time. A reload must neither duplicate items
nor keep stale ones, and must not touch the items of days outside its range."""

import sqlite3
from datetime import date
from decimal import Decimal

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from lake_platform import partitions
from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.catalog_glue import GlueCatalog
from lake_platform.adapters.serving import DynamoDBTable, LocalKeyValueTable, clean_item
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.serving.assets import serving_delay_predictions


REGION, TABLE, BUCKET = "us-east-1", "lake-delay-predictions", "lake-test"
INDEX = "flight_date-index"
DAY = "2013-12-31"


def prediction(flight_id: int, probability: float, day: str = DAY) -> dict:
    return {
        "flight_id": flight_id,
        "flight_date": date.fromisoformat(day),
        "carrier": "UA",
        "origin": "EWR",
        "dest": "IAH",
        "probability_late": probability,
        "predicted_late": int(probability >= 0.5),
        "model_version": "delay-model-test",
    }


ITEMS = [prediction(i, p) for i, p in [(1, 0.125), (2, 0.5), (3, 0.875), (4, 0.1)]]
# Three days of five flights: flight 10*d + n on 2013-01-0d.
THREE_DAYS = [prediction(10 * d + n, n / 8, f"2013-01-0{d}") for d in (1, 2, 3) for n in range(5)]


def as_stored(item: dict) -> dict:
    return {**item, "flight_date": item["flight_date"].isoformat()}  # dates are stored as ISO strings


@pytest.fixture
def local_table(tmp_path):
    return LocalKeyValueTable(path=str(tmp_path / "serving" / "serving.db"))


def test_reloading_the_same_predictions_keeps_one_item_per_flight(local_table):
    first = local_table.replace_range(ITEMS, key_name="flight_id", first=DAY, last=DAY)
    second = local_table.replace_range(ITEMS, key_name="flight_id", first=DAY, last=DAY)
    assert (first.written, second.written, second.deleted, second.in_range, second.total) == (4, 4, 0, 4, 4)
    assert local_table.count() == 4
    assert local_table.get(3) == as_stored(ITEMS[2])


def test_reloading_fewer_predictions_removes_the_stale_flights(local_table):
    local_table.replace_range(ITEMS, key_name="flight_id", first=DAY, last=DAY)
    report = local_table.replace_range(ITEMS[:2], key_name="flight_id", first=DAY, last=DAY)
    assert (report.deleted, report.in_range, report.total) == (2, 2, 2)
    assert local_table.get(4) is None and local_table.get(1) is not None


def test_put_items_overwrites_an_item_with_the_same_key(local_table):
    local_table.put_items([prediction(7, 0.2)], key_name="flight_id")
    local_table.put_items([prediction(7, 0.9)], key_name="flight_id")
    assert local_table.count() == 1
    assert local_table.get(7)["probability_late"] == 0.9


def test_a_load_with_two_items_for_one_key_is_refused_and_changes_nothing(local_table):
    local_table.replace_range(ITEMS, key_name="flight_id", first=DAY, last=DAY)
    with pytest.raises(ValueError, match="flight_id=1"):
        local_table.replace_range([prediction(1, 0.1), prediction(1, 0.2)], key_name="flight_id", first=DAY, last=DAY)
    assert local_table.count() == 4


def test_items_are_cleaned_to_plain_json_types():
    raw = {"flight_id": np.int64(5), "p": np.float64(0.25), "day": date(2013, 1, 2), "wind_gust": float("nan")}
    cleaned = clean_item(raw)
    assert cleaned == {"flight_id": 5, "p": 0.25, "day": "2013-01-02"}
    assert type(cleaned["flight_id"]) is int


def test_the_local_range_lookup_uses_an_index_and_needs_no_migration_of_an_existing_table(tmp_path):
    path = tmp_path / "serving.db"
    with sqlite3.connect(path) as db:  # a table as written before range loads: key and JSON item only
        db.execute('create table "delay_predictions" (pk text primary key, item text not null)')
    table = LocalKeyValueTable(path=str(path))
    table.put_items(THREE_DAYS, key_name="flight_id")
    table.replace_range(THREE_DAYS[5:7], key_name="flight_id", first="2013-01-02", last="2013-01-02")
    assert table.count() == 12 and table.get(22) is None and table.get(11) is not None
    expression = LocalKeyValueTable.date_expression("flight_date")
    with sqlite3.connect(path) as db:
        plan = db.execute(
            f'explain query plan select pk from "delay_predictions" where {expression} between ? and ?',
            ("2013-01-02", "2013-01-02"),
        ).fetchall()
    assert "USING INDEX delay_predictions__flight_date" in " ".join(row[-1] for row in plan), plan


# --- DynamoDB (moto) -------------------------------------------------------------------------------
@pytest.fixture
def aws_session(monkeypatch):
    """moto with a default boto3 session; yields the names of the DynamoDB operations called."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        calls: list[str] = []
        boto3.DEFAULT_SESSION.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        yield calls


def create_dynamodb_table(with_index: bool = True) -> None:
    index = {
        "GlobalSecondaryIndexes": [{
            "IndexName": INDEX,
            "KeySchema": [{"AttributeName": "flight_date", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }]
    } if with_index else {}
    dates = [{"AttributeName": "flight_date", "AttributeType": "S"}] if with_index else []
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "flight_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "flight_id", "AttributeType": "N"}, *dates],
        BillingMode="PAY_PER_REQUEST",
        **index,
    )


@pytest.fixture
def dynamodb_table(aws_session):
    create_dynamodb_table()
    yield DynamoDBTable(table_name=TABLE, region_name=REGION)


@pytest.fixture(params=["local", "dynamodb", "dynamodb-scan"])
def any_table(request, tmp_path):
    """The same range-load contract on the local table, DynamoDB with its GSI, and DynamoDB without one.
    Yields the table and the list of DynamoDB operations called (stays empty locally)."""
    if request.param == "local":
        yield LocalKeyValueTable(path=str(tmp_path / "serving.db")), []
        return
    calls = request.getfixturevalue("aws_session")
    create_dynamodb_table(with_index=request.param == "dynamodb")
    index = INDEX if request.param == "dynamodb" else None
    yield DynamoDBTable(table_name=TABLE, region_name=REGION, date_index=index), calls


def test_a_range_reload_deletes_stale_items_only_inside_the_range(any_table):
    table, calls = any_table
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        loaded = [i for i in THREE_DAYS if i["flight_date"].isoformat() == day]
        table.replace_range(loaded, key_name="flight_id", first=day, last=day)
    untouched = {i["flight_id"]: table.get(i["flight_id"]) for i in THREE_DAYS[:5]}
    # Day 2 keeps two flights (one with a new probability), day 3 has no predictions any more.
    reload = [THREE_DAYS[5], prediction(21, 0.75, "2013-01-02")]
    calls.clear()
    report = table.replace_range(reload, key_name="flight_id", first="2013-01-02", last="2013-01-03")
    if isinstance(table, DynamoDBTable):  # with the GSI: one Query per day of the range, never a Scan
        assert sorted(set(calls)) == (["BatchWriteItem", "Query"] if table.date_index else ["BatchWriteItem", "Scan"])
        assert calls.count("Query") == (2 if table.date_index else 0)
    assert (report.written, report.deleted, report.in_range) == (2, 8, 2)
    assert {i["flight_id"]: table.get(i["flight_id"]) for i in THREE_DAYS[:5]} == untouched
    assert untouched[11] == as_stored(THREE_DAYS[1])
    assert table.get(21)["probability_late"] == 0.75 and table.get(21)["flight_date"] == "2013-01-02"
    assert [table.get(k) for k in (22, 23, 24, 30, 31, 32, 33, 34)] == [None] * 8
    assert table.count() == 7


def test_a_range_load_with_an_item_of_another_day_is_refused_and_changes_nothing(any_table):
    table, _ = any_table
    table.replace_range(THREE_DAYS[:5], key_name="flight_id", first="2013-01-01", last="2013-01-01")
    with pytest.raises(ValueError, match="flight_date='2013-01-02', outside the range 2013-01-01 .. 2013-01-01"):
        table.replace_range(THREE_DAYS[:6], key_name="flight_id", first="2013-01-01", last="2013-01-01")
    assert table.count() == 5 and table.get(20) is None


def test_dynamodb_reload_is_idempotent_and_drops_stale_flights(dynamodb_table):
    many = [prediction(i, (i % 7) / 7) for i in range(1, 61)]  # more than one 25-item batch
    dynamodb_table.replace_range(many, key_name="flight_id", first=DAY, last=DAY)
    again = dynamodb_table.replace_range(many[:40], key_name="flight_id", first=DAY, last=DAY)
    assert (again.written, again.deleted, again.in_range, again.total) == (40, 20, 40, None)
    assert dynamodb_table.count() == 40
    assert dynamodb_table.get(41) is None
    assert dynamodb_table.get(3) == as_stored(many[2])


def test_dynamodb_without_the_date_index_says_what_to_create(aws_session):
    create_dynamodb_table(with_index=False)
    table = DynamoDBTable(table_name=TABLE, region_name=REGION)
    with pytest.raises(LookupError, match="no usable global secondary index 'flight_date-index'"):
        table.replace_range(ITEMS, key_name="flight_id", first=DAY, last=DAY)


def test_dynamodb_stores_probabilities_as_exact_decimals(dynamodb_table):
    dynamodb_table.put_items([prediction(9, 0.1)], key_name="flight_id")
    raw = boto3.resource("dynamodb", region_name=REGION).Table(TABLE).get_item(Key={"flight_id": 9})["Item"]
    assert raw["probability_late"] == Decimal("0.1")
    assert raw["flight_date"] == DAY


def test_dynamodb_table_refuses_a_key_other_than_its_partition_key(dynamodb_table):
    with pytest.raises(ValueError, match="keyed by 'flight_id'"):
        dynamodb_table.put_items([{"id": 1}], key_name="id")


# --- The asset -------------------------------------------------------------------------------------
def publish_predictions(catalog, items: list[dict], replaced: list[str]) -> None:
    """ml.delay_predictions as the ML asset commits it (predictions.commit_days): the days of `replaced`
    replaced by `items`, the other days kept."""
    from lake_platform.ml import predictions

    frame = pd.DataFrame(items) if items else predictions.empty_table()
    predictions.commit_days(catalog, frame, sorted(replaced))


def load(resources: dict, first: str, last: str | None = None) -> dict:
    """Materialize serving/delay_predictions for first..last; returns the metadata of its first day."""
    one_day = last is None
    result = dg.materialize(
        [serving_delay_predictions],
        resources=resources,
        partition_key=first if one_day else None,
        tags=None if one_day else partitions.range_tags(first, last),
    )
    events = result.asset_materializations_for_node("serving__delay_predictions")
    assert sorted(e.partition for e in events) == partitions_between(first, last or first)
    return {k: v.value for k, v in events[0].metadata.items()}


def partitions_between(first: str, last: str) -> list[str]:
    return [k for k in partitions.DAILY.get_partition_keys() if first <= k <= last]


def test_serving_asset_loads_the_published_predictions_and_reloads_without_duplicates(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    catalog = LocalCatalog(store=store)
    publish_predictions(catalog, ITEMS, [DAY])
    table = LocalKeyValueTable(path=str(tmp_path / "lake" / "serving" / "serving.db"))
    resources = {"store": store, "catalog": catalog, "serving": table}

    for _ in range(2):
        metadata = load(resources, DAY)
        assert metadata["items_written"] == 4
        assert metadata["stale_items_deleted"] == 0
        assert (metadata["items_in_range"], metadata["items_in_table"]) == (4, 4)
    assert table.count() == 4
    assert metadata["sample_item"]["model_version"] == "delay-model-test"
    assert metadata["sample_item"]["flight_date"] == DAY
    assert metadata["days"] == f"{DAY} .. {DAY} (1 days)"


def test_serving_asset_reloads_a_range_and_leaves_other_days_alone(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    catalog = LocalCatalog(store=store)
    publish_predictions(catalog, THREE_DAYS, ["2013-01-01", "2013-01-02", "2013-01-03"])
    table = LocalKeyValueTable(path=str(tmp_path / "lake" / "serving" / "serving.db"))
    resources = {"store": store, "catalog": catalog, "serving": table}
    load(resources, "2013-01-01", "2013-01-03")
    assert table.count() == 15
    before = {i["flight_id"]: table.get(i["flight_id"]) for i in THREE_DAYS}

    # Day 2 rescored with two flights; day 3 no longer predicted (e.g. inside a new model's training window).
    day2 = [prediction(20, 0.9, "2013-01-02"), prediction(21, 0.1, "2013-01-02")]
    publish_predictions(catalog, day2, ["2013-01-02", "2013-01-03"])
    metadata = load(resources, "2013-01-02")
    assert (metadata["items_written"], metadata["stale_items_deleted"], metadata["items_in_range"]) == (2, 3, 2)
    assert table.count() == 12 and table.get(20)["probability_late"] == 0.9
    assert {k: table.get(k) for k in before if k >= 30 or k < 20} == {k: v for k, v in before.items()
                                                                       if k >= 30 or k < 20}
    metadata = load(resources, "2013-01-03")
    assert (metadata["items_written"], metadata["stale_items_deleted"], metadata["sample_item"]) == (0, 5, {})
    assert table.count() == 7
    assert {k: table.get(k) for k in range(10, 15)} == {k: before[k] for k in range(10, 15)}


def test_serving_asset_on_aws_reads_the_glue_partitions_into_dynamodb(aws_session):
    """S3 + Glue + DynamoDB on moto: the range's days are read from their Glue partitions (not the table's
    location, which also holds the superseded version), and stale items are found through the GSI."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    create_dynamodb_table()
    store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
    glue = GlueCatalog(store=store, region_name=REGION)
    serving = DynamoDBTable(table_name=TABLE, region_name=REGION)
    resources = {"store": store, "catalog": glue, "serving": serving}
    publish_predictions(glue, THREE_DAYS, ["2013-01-01", "2013-01-02", "2013-01-03"])
    load(resources, "2013-01-01", "2013-01-03")
    day2 = [prediction(20, 0.9, "2013-01-02")]
    publish_predictions(glue, day2, ["2013-01-02"])
    aws_session.clear()
    metadata = load(resources, "2013-01-01", "2013-01-03")
    assert (metadata["items_written"], metadata["stale_items_deleted"], metadata["items_in_range"]) == (11, 4, 11)
    assert "items_in_table" not in metadata  # DynamoDB: not counted, that would read the whole table
    assert "Scan" not in aws_session and aws_session.count("Query") == 3
    assert serving.count() == 11 and serving.get(20)["probability_late"] == 0.9 and serving.get(21) is None
    assert serving.get(34)["flight_date"] == "2013-01-03"
