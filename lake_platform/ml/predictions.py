"""Batch predictions for the hold-out window: what is sent for scoring, and the table that comes back."""

import io
from datetime import date

import pandas as pd
import pyarrow as pa

from lake_platform.adapters.storage import ObjectStore
from lake_platform.ml.tables import read_table, write_chunks

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
CATALOG_TYPES = {pa.int64(): "bigint", pa.int32(): "int", pa.float64(): "double", pa.date32(): "date"}
COLUMNS = [(f.name, CATALOG_TYPES.get(f.type, "string")) for f in SCHEMA]


def holdout_features(store: ObjectStore, location: str, cutoff_date: str) -> pd.DataFrame:
    """Every flight after the model's training cutoff (cancelled ones too), without outcome columns."""
    cutoff = date.fromisoformat(cutoff_date)
    frame = read_table(store, location, filters=[("flight_date", ">", cutoff)])
    if frame.empty:
        raise ValueError(f"no flights after the model's cutoff {cutoff_date} in {location}")
    return frame.drop(columns=[c for c in OUTCOME_COLUMNS if c in frame.columns])


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


def score_holdout(context, store: ObjectStore, location: str, sagemaker, model, version: str, threshold: float):
    """Send the hold-out flights through batch prediction; returns the assembled predictions table.

    The scoring files live under `ml/_scoring/<version>/` and are removed once the table is assembled.
    """
    features = holdout_features(store, location, model.metrics["cutoff_date"])
    scratch = f"ml/_scoring/{version}"
    write_chunks(store, f"{scratch}/input", features, ROWS_PER_FILE)
    job_name = f"delay-predictions-{version}"
    sagemaker.batch_predict(context, job_name, model, f"{scratch}/input", f"{scratch}/output")
    table = assemble(features, read_batch_output(store, f"{scratch}/output"), model.job_name, threshold)
    store.delete_prefix(scratch)
    return table
