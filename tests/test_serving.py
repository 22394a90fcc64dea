"""Serving layer: the key-value table (embedded SQLite locally, DynamoDB against moto) and the asset
that loads the delay predictions into it. A reload must neither duplicate items nor keep stale ones."""

import io
from datetime import date
from decimal import Decimal

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from lake_platform.adapters.catalog import LocalCatalog, version_key
from lake_platform.adapters.serving import DynamoDBTable, LocalKeyValueTable, clean_item
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.serving.assets import serving_delay_predictions

REGION, TABLE = "us-east-1", "lake-delay-predictions"


def prediction(flight_id: int, probability: float) -> dict:
    return {
        "flight_id": flight_id,
        "flight_date": date(2013, 12, 31),
        "carrier": "UA",
        "origin": "EWR",
        "dest": "IAH",
        "probability_late": probability,
        "predicted_late": int(probability >= 0.5),
        "model_version": "delay-model-test",
    }


ITEMS = [prediction(i, p) for i, p in [(1, 0.125), (2, 0.5), (3, 0.875), (4, 0.1)]]


@pytest.fixture
def local_table(tmp_path):
    return LocalKeyValueTable(path=str(tmp_path / "serving" / "serving.db"))


def test_reloading_the_same_predictions_keeps_one_item_per_flight(local_table):
    first = local_table.replace_all(ITEMS, key_name="flight_id")
    second = local_table.replace_all(ITEMS, key_name="flight_id")
    assert (first.written, second.written, second.deleted, second.total) == (4, 4, 0, 4)
    assert local_table.count() == 4
    assert local_table.get(3) == {**ITEMS[2], "flight_date": "2013-12-31"}


def test_reloading_fewer_predictions_removes_the_stale_flights(local_table):
    local_table.replace_all(ITEMS, key_name="flight_id")
    report = local_table.replace_all(ITEMS[:2], key_name="flight_id")
    assert (report.deleted, report.total) == (2, 2)
    assert local_table.get(4) is None and local_table.get(1) is not None


def test_put_items_overwrites_an_item_with_the_same_key(local_table):
    local_table.put_items([prediction(7, 0.2)], key_name="flight_id")
    local_table.put_items([prediction(7, 0.9)], key_name="flight_id")
    assert local_table.count() == 1
    assert local_table.get(7)["probability_late"] == 0.9


def test_a_load_with_two_items_for_one_key_is_refused_and_changes_nothing(local_table):
    local_table.replace_all(ITEMS, key_name="flight_id")
    with pytest.raises(ValueError, match="flight_id=1"):
        local_table.replace_all([prediction(1, 0.1), prediction(1, 0.2)], key_name="flight_id")
    assert local_table.count() == 4


def test_items_are_cleaned_to_plain_json_types():
    raw = {"flight_id": np.int64(5), "p": np.float64(0.25), "day": date(2013, 1, 2), "wind_gust": float("nan")}
    cleaned = clean_item(raw)
    assert cleaned == {"flight_id": 5, "p": 0.25, "day": "2013-01-02"}
    assert type(cleaned["flight_id"]) is int


@pytest.fixture
def dynamodb_table(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "flight_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "flight_id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoDBTable(table_name=TABLE, region_name=REGION)


def test_dynamodb_reload_is_idempotent_and_drops_stale_flights(dynamodb_table):
    many = [prediction(i, (i % 7) / 7) for i in range(1, 61)]  # more than one 25-item batch
    dynamodb_table.replace_all(many, key_name="flight_id")
    again = dynamodb_table.replace_all(many[:40], key_name="flight_id")
    assert (again.written, again.deleted, dynamodb_table.count()) == (40, 20, 40)
    assert dynamodb_table.get(41) is None
    assert dynamodb_table.get(3) == {**many[2], "flight_date": "2013-12-31"}


def test_dynamodb_stores_probabilities_as_exact_decimals(dynamodb_table):
    dynamodb_table.put_items([prediction(9, 0.1)], key_name="flight_id")
    raw = boto3.resource("dynamodb", region_name=REGION).Table(TABLE).get_item(Key={"flight_id": 9})["Item"]
    assert raw["probability_late"] == Decimal("0.1")


def test_dynamodb_table_refuses_a_key_other_than_its_partition_key(dynamodb_table):
    with pytest.raises(ValueError, match="keyed by 'flight_id'"):
        dynamodb_table.put_items([{"id": 1}], key_name="id")


def test_serving_asset_loads_the_published_predictions_and_reloads_without_duplicates(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "lake"))
    catalog = LocalCatalog(store=store)
    buffer = io.BytesIO()
    pd.DataFrame(ITEMS).to_parquet(buffer, index=False)
    store.put_bytes(f"{version_key('ml', 'delay_predictions', 'v1')}/part-00000.parquet", buffer.getvalue())
    catalog.publish("ml", "delay_predictions", "v1", [("flight_id", "bigint")])
    table = LocalKeyValueTable(path=str(tmp_path / "lake" / "serving" / "serving.db"))
    resources = {"store": store, "catalog": catalog, "serving": table}

    for _ in range(2):
        result = dg.materialize([serving_delay_predictions], resources=resources)
        metadata = result.asset_materializations_for_node("serving__delay_predictions")[0].metadata
        assert metadata["items_written"].value == 4
        assert metadata["stale_items_deleted"].value == 0
    assert table.count() == 4
    assert metadata["sample_item"].value["model_version"] == "delay-model-test"
