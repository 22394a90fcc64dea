"""Batch predictions after the model's training cutoff: what is sent for scoring, and the table that comes back.

The table `ml.delay_predictions` is an Apache Iceberg table like the clean and curated ones, identity-partitioned
by flight_date, committed here with PyIceberg (`Catalog.commit`): a run replaces its days in one commit.
"""

import io
from datetime import date

import pandas as pd
import pyarrow as pa

from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.storage import ObjectStore
from lake_platform.ml.tables import read_partitions, write_chunks

# Outcomes are never sent for scoring: the model must not see them, even by mistake.
OUTCOME_COLUMNS = ["dep_delay", "arr_delay", "arrived_late", "cancelled"]
ID_COLUMNS = ["flight_id", "flight_date", "carrier", "origin", "dest"]
# 100k flights are ~4 MB of Parquet, well under a transform request's MaxPayloadInMB.
ROWS_PER_FILE = 100_000
SCHEMA = pa.schema(
    [
        ("flight_id", pa.int64()),
        ("flight_date", pa.date32()),
        ("carrier", pa.string()),
        ("origin", pa.string()),
        ("dest", pa.string()),
        ("probability_late", pa.float64()),
        ("predicted_late", pa.int32()),
        ("model_version", pa.string()),
    ]
)
PARTITION_COLUMN = "flight_date"
DESCRIPTION = "arrival-delay predictions for the flights after the model's training cutoff"


def split_days(days: list[str], cutoff_date: str) -> tuple[list[str], list[str]]:
    """(days the model trained on, days to score): a day at or before `cutoff_date` is in the training window
    and has nothing to score; the model only predicts flights it has not seen."""
    cutoff = date.fromisoformat(cutoff_date)
    trained = [d for d in days if date.fromisoformat(d) <= cutoff]
    return trained, [d for d in days if date.fromisoformat(d) > cutoff]


def features_for_days(store: ObjectStore, catalog: Catalog, days: list[str]) -> pd.DataFrame:
    """The flights of `days` in curated.flight_features (cancelled ones too), without outcome columns.

    Only those days' partitions are read. Empty when none of the days has flights (not an error: a range of
    days may have no data yet).
    """
    frame = read_partitions(store, catalog, "curated", "flight_features", days)
    return frame.drop(columns=[c for c in OUTCOME_COLUMNS if c in frame.columns])


def empty_table() -> pd.DataFrame:
    return SCHEMA.empty_table().to_pandas()


def read_batch_output(store: ObjectStore, output_key: str) -> pd.DataFrame:
    """The `.out` files of a batch prediction (JSON lines: flight_id, probability_late)."""
    parts = [
        pd.read_json(io.BytesIO(store.get_bytes(o.key)), lines=True, precise_float=True)
        for o in store.list(output_key.rstrip("/") + "/")
        if o.key.endswith(".out")
    ]
    if not parts:
        raise FileNotFoundError(f"batch prediction wrote no .out files under {store.uri(output_key)}")
    return pd.concat(parts, ignore_index=True)


def assemble(features: pd.DataFrame, scored: pd.DataFrame, model_version: str, threshold: float) -> pd.DataFrame:
    """One row per flight: its identity, the probability of arriving late and the thresholded call."""
    table = features[ID_COLUMNS].merge(
        scored[["flight_id", "probability_late"]], on="flight_id", how="left", validate="one_to_one"
    )
    unscored = int(table["probability_late"].isna().sum())
    if unscored:
        raise ValueError(f"{unscored} of {len(table)} flights came back from batch prediction without a score")
    table["flight_date"] = pd.to_datetime(table["flight_date"]).dt.date
    table["predicted_late"] = (table["probability_late"] >= threshold).astype("int32")
    table["model_version"] = model_version
    return table.sort_values(["flight_date", "flight_id"], ignore_index=True)[SCHEMA.names]


def score(context, store: ObjectStore, features: pd.DataFrame, sagemaker, model, version: str, threshold: float):
    """Send `features` (every flight of a range of days) through one batch prediction; returns the assembled
    predictions table. The scoring files live under `ml/_scoring/<version>/` and are removed afterwards.
    """
    if features.empty:
        raise ValueError("nothing to score: the caller publishes an empty range without a batch prediction")
    scratch = f"ml/_scoring/{version}"
    write_chunks(store, f"{scratch}/input", features, ROWS_PER_FILE)
    job_name = f"delay-predictions-{version}"
    sagemaker.batch_predict(context, job_name, model, f"{scratch}/input", f"{scratch}/output")
    table = assemble(features, read_batch_output(store, f"{scratch}/output"), model.job_name, threshold)
    store.delete_prefix(scratch)
    return table


def commit_days(catalog: Catalog, table: pd.DataFrame, days: list[str]) -> tuple[list[str], int]:
    """Replace the days `days[0]..days[-1]` of `ml.delay_predictions` with `table`'s rows in one commit (a day
    without rows is emptied). Returns the days with rows and the commit's snapshot id."""
    rows = pa.Table.from_pandas(table[SCHEMA.names], schema=SCHEMA, preserve_index=False)
    snapshot_id = catalog.commit(
        "ml", "delay_predictions", rows, PARTITION_COLUMN, {"first": days[0], "last": days[-1]}, DESCRIPTION
    )
    written = sorted({d.isoformat() for d in table[PARTITION_COLUMN]})
    return written, snapshot_id
