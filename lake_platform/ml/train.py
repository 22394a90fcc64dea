"""Flight-delay classifier: a SageMaker script-mode training script and its inference handlers.

Predicts `arrived_late` (arr_delay > 15 min) from what is known before departure: the schedule, the
route, the weather at the origin at the scheduled hour and the aircraft. Never the delays themselves.

Runs unchanged in three places, so it imports nothing from lake_platform or Dagster:
- `python train.py --max-iter 200 ...` under the script-mode contract: features from `SM_CHANNEL_FEATURES`
  (a folder of Parquet files, curated.flight_features), model to `SM_MODEL_DIR`, metrics to
  `SM_OUTPUT_DATA_DIR`; hyperparameters as CLI arguments, defaults also taken from `SM_HPS`.
- the SageMaker scikit-learn container (training, and batch transform through `model_fn`, `input_fn`,
  `predict_fn`, `output_fn`); it must stay compatible with that image (Python 3.10, scikit-learn 1.4).
- locally, where the lake imports `score` and the handlers to run batch prediction.
"""

import argparse
import io
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

LABEL = "arrived_late"
SCHEDULE = ["month", "day_of_week", "sched_dep_hour", "distance"]
WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
PLANE = ["plane_year", "plane_seats", "plane_engines"]
NUMERIC = SCHEDULE + WEATHER + PLANE
CATEGORICAL = ["carrier", "origin", "dest", "plane_manufacturer", "plane_type"]
FEATURES = NUMERIC + CATEGORICAL
# HistGradientBoosting bins each categorical feature into at most max_bins (255) codes, so each keeps
# its most frequent categories (dest has ~105); rarer and unseen ones are treated like missing values.
MAX_CATEGORIES = 250
MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
PARQUET = "application/x-parquet"
JSONLINES = "application/jsonlines"

HYPERPARAMETERS = {  # name: (type, default, help)
    "max_iter": (int, 100, "boosting iterations"),
    "learning_rate": (float, 0.05, "shrinkage per iteration"),
    "max_leaf_nodes": (int, 15, "leaves per tree"),
    "min_samples_leaf": (int, 100, "minimum rows per leaf"),
    "l2_regularization": (float, 1.0, "L2 penalty on leaf values"),
    "early_stopping": (str, "auto", "auto, true or false (stop on a random 10% validation split)"),
    "holdout_fraction": (float, 0.2, "last fraction of the flight_date range held out as the test set"),
    "random_state": (int, 42, "seed for the validation split"),
}


def parse_args(argv=None, environ=os.environ) -> argparse.Namespace:
    """CLI arguments win; `SM_HPS` (the JSON SageMaker also exports) supplies the rest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, (kind, default, text) in HYPERPARAMETERS.items():
        flags = sorted({f"--{name.replace('_', '-')}", f"--{name}"})
        parser.add_argument(*flags, dest=name, type=kind, default=default, help=text)
    parser.add_argument("--features", default=environ.get("SM_CHANNEL_FEATURES", "/opt/ml/input/data/features"))
    parser.add_argument("--model-dir", default=environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--output-data-dir", default=environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    from_env = {k.replace("-", "_"): v for k, v in json.loads(environ.get("SM_HPS") or "{}").items()}
    parser.set_defaults(**{k: HYPERPARAMETERS[k][0](v) for k, v in from_env.items() if k in HYPERPARAMETERS})
    args = parser.parse_args(argv)
    if not 0 < args.holdout_fraction < 1:
        parser.error(f"--holdout-fraction must be between 0 and 1, got {args.holdout_fraction}")
    if args.early_stopping.lower() not in ("auto", "true", "false"):
        parser.error(f"--early-stopping must be auto, true or false, got {args.early_stopping!r}")
    return args


def read_features(folder: str) -> pd.DataFrame:
    """Read the channel's Parquet files (Spark's `_SUCCESS` and `.crc` files are skipped)."""
    files = sorted(p for p in Path(folder).rglob("*.parquet") if not p.name.startswith(("_", ".")))
    if not files:
        raise FileNotFoundError(f"no Parquet files under the features channel {folder}")
    columns = ["flight_date", LABEL, *FEATURES]
    frame = pd.concat((_read_file(p, columns) for p in files), ignore_index=True)
    frame["flight_date"] = pd.to_datetime(frame["flight_date"])
    return frame


def _read_file(path: Path, columns: list[str]) -> pd.DataFrame:
    """One Parquet file; a column missing from it is taken from a Hive-style `<column>=<value>` folder."""
    from_path = {k: v for k, _, v in (part.partition("=") for part in path.parent.parts) if v}
    present = [c for c in columns if c not in from_path]
    frame = pd.read_parquet(path, columns=present)
    for column, value in from_path.items():
        if column in columns:
            frame[column] = value
    return frame[columns]


def split_by_date(frame: pd.DataFrame, holdout_fraction: float):
    """Labelled rows only; the last `holdout_fraction` of the date range is the test set.

    Returns (train, test, cutoff): train holds flight_date <= cutoff, test the later dates, so the
    evaluation is on days the model has never seen, as it will be in use.
    """
    labelled = frame[frame[LABEL].notna()]
    first, last = labelled["flight_date"].min(), labelled["flight_date"].max()
    cutoff = first + timedelta(days=int((last - first).days * (1 - holdout_fraction)))
    train = labelled[labelled["flight_date"] <= cutoff]
    test = labelled[labelled["flight_date"] > cutoff]
    for name, part in (("training", train), ("hold-out", test)):
        if part[LABEL].nunique() < 2:
            raise ValueError(
                f"the {name} set ({len(part)} rows, cutoff {cutoff:%Y-%m-%d}) needs both late and on-time "
                "flights; widen the date range or change --holdout-fraction"
            )
    return train, test, cutoff


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns with stable dtypes (Parquet may give ints, nullable ints or all-null objects)."""
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise KeyError(f"input lacks feature columns {missing}")
    # Whole blocks at once, converting only the columns that are not numeric already: built column by column
    # this took 16 ms for one row, a third of an online prediction's time (5 ms now, measured in-process).
    numbers = frame[NUMERIC]
    coerce = [c for c in NUMERIC if not is_numeric_dtype(numbers[c].dtype) or is_bool_dtype(numbers[c].dtype)]
    if coerce:
        numbers = numbers.assign(**{c: pd.to_numeric(numbers[c], errors="coerce") for c in coerce})
    categories = frame[CATEGORICAL].astype("object")
    return pd.concat([numbers.astype("float64"), categories.where(categories.notna(), np.nan)], axis=1)


def build_model(args: argparse.Namespace, train_features: pd.DataFrame) -> Pipeline:
    """Categories become ordinal codes that the booster splits on natively; unseen ones count as missing."""
    # Listing the categories up front (from pandas' value counts) instead of letting the encoder count
    # them takes fitting from ~3 s to ~0.5 s on the full 2013 data: its counting is per Python object.
    top = [train_features[c].value_counts().index[:MAX_CATEGORIES] for c in CATEGORICAL]
    codes = OrdinalEncoder(
        categories=[sorted(values) or ["(none)"] for values in top],  # the encoder rejects an empty list
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
    )
    # Only the listed columns reach the booster; anything else in the input (delays, ids) is dropped.
    encode = ColumnTransformer(
        [("categories", codes, CATEGORICAL), ("numbers", "passthrough", NUMERIC)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    early = {"auto": "auto", "true": True, "false": False}[args.early_stopping.lower()]
    booster = HistGradientBoostingClassifier(
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        max_leaf_nodes=args.max_leaf_nodes,
        min_samples_leaf=args.min_samples_leaf,
        l2_regularization=args.l2_regularization,
        early_stopping=early,
        categorical_features=CATEGORICAL,
        random_state=args.random_state,
    )
    return Pipeline([("encode", encode), ("boost", booster)])


def score(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Probability that each flight arrives more than 15 minutes late."""
    return model.predict_proba(prepare(features))[:, 1]


def evaluate(model: Pipeline, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Hold-out metrics beside the majority-class baseline (always predict the training prior)."""
    y_test = test[LABEL].astype(int).to_numpy()
    prior = float(train[LABEL].mean())
    probability = score(model, test)
    majority = int(prior >= 0.5)
    return {
        "roc_auc": float(roc_auc_score(y_test, probability)),
        "log_loss": float(log_loss(y_test, probability, labels=[0, 1])),
        "accuracy": float(accuracy_score(y_test, (probability >= 0.5).astype(int))),
        "baseline_roc_auc": 0.5,
        "baseline_log_loss": float(log_loss(y_test, np.full(len(y_test), prior), labels=[0, 1])),
        "baseline_accuracy": float(np.mean(y_test == majority)),
        "train_positive_rate": prior,
        "test_positive_rate": float(y_test.mean()),
    }


# The training window's distributions, kept with the metrics, that the daily drift check compares the scored
# days with (lake_platform/ml/drift.py): deciles of each numeric feature, the most frequent categories, and the
# model's own probabilities. Shares of the training rows; "missing" and "other" are bins of their own.
REFERENCE_QUANTILES = [q / 10 for q in range(1, 10)]
REFERENCE_CATEGORIES = 20


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of the non-missing `values` in the bins the edges cut (below the first edge, ..., from the last
    one up), then the share missing: len(edges) + 2 numbers summing to 1 (all 0 for no values)."""
    values = np.asarray(values, dtype="float64")
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), present, side="right"), minlength=len(edges) + 1)
    total = len(values)
    return [float(c / total) if total else 0.0 for c in counts] + [
        float((total - len(present)) / total) if total else 0.0
    ]


def category_shares(values: pd.Series, categories: list[str]) -> list[float]:
    """Shares of each of `categories`, then of any other value, then of missing values."""
    total = len(values)
    if not total:
        return [0.0] * (len(categories) + 2)
    present = values[values.notna()].astype(str)
    counts = present.value_counts()
    listed = [float(counts.get(c, 0) / total) for c in categories]
    return listed + [float((len(present) - sum(counts.get(c, 0) for c in categories)) / total),
                     float((total - len(present)) / total)]


def reference(features: pd.DataFrame, probability: np.ndarray) -> dict:
    """The distributions of the prepared training features and of the model's probabilities on them."""
    numeric = {}
    for column in NUMERIC:
        values = features[column].to_numpy(dtype="float64")
        present = values[~np.isnan(values)]
        edges = sorted(set(np.quantile(present, REFERENCE_QUANTILES).tolist())) if len(present) else []
        numeric[column] = {"edges": edges, "shares": bin_shares(values, edges)}
    categorical = {}
    for column in CATEGORICAL:
        top = features[column].dropna().astype(str).value_counts().index[:REFERENCE_CATEGORIES].tolist()
        categorical[column] = {"categories": top, "shares": category_shares(features[column], top)}
    edges = sorted(set(np.quantile(probability, REFERENCE_QUANTILES).tolist())) if len(probability) else []
    return {
        "rows": int(len(features)),
        "numeric": numeric,
        "categorical": categorical,
        "probability": {"edges": edges, "shares": bin_shares(probability, edges)},
        "mean_probability": float(np.mean(probability)) if len(probability) else None,
    }


def train(args: argparse.Namespace) -> dict:
    """Fit, evaluate and write the model and metrics; returns the metrics."""
    frame = read_features(args.features)
    train_set, test_set, cutoff = split_by_date(frame, args.holdout_fraction)
    print(f"training on {len(train_set)} flights up to {cutoff:%Y-%m-%d}, testing on {len(test_set)}", flush=True)
    features = prepare(train_set)
    model = build_model(args, features).fit(features, train_set[LABEL].astype(int))
    metrics = evaluate(model, train_set, test_set)
    metrics.update(
        train_rows=len(train_set),
        test_rows=len(test_set),
        unlabelled_rows=int(frame[LABEL].isna().sum()),
        cutoff_date=f"{cutoff:%Y-%m-%d}",
        train_start=f"{train_set['flight_date'].min():%Y-%m-%d}",
        test_start=f"{test_set['flight_date'].min():%Y-%m-%d}",
        test_end=f"{test_set['flight_date'].max():%Y-%m-%d}",
        n_iter=int(model.named_steps["boost"].n_iter_),
        features=FEATURES,
        hyperparameters={name: getattr(args, name) for name in HYPERPARAMETERS},
        sklearn_version=sklearn.__version__,
        reference=reference(features, model.predict_proba(features)[:, 1]),
    )
    write_outputs(model, metrics, Path(args.model_dir), Path(args.output_data_dir))
    return metrics


def write_outputs(model: Pipeline, metrics: dict, model_dir: Path, output_dir: Path) -> None:
    """Model and metrics into model.tar.gz's folder; metrics also into output.tar.gz's."""
    for folder in (model_dir, output_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    joblib.dump(model, model_dir / MODEL_FILE)
    for name in ("roc_auc", "log_loss", "accuracy", "baseline_log_loss"):
        print(f"{name}={metrics[name]:.6f}", flush=True)  # parsed by the job's MetricDefinitions


# SageMaker inference handlers (batch transform and endpoints in the scikit-learn container).


def model_fn(model_dir):
    return joblib.load(Path(model_dir) / MODEL_FILE)


def input_fn(request_body, content_type=PARQUET):
    """Parquet (one file per request in batch transform), JSON lines, a JSON array or CSV with a header."""
    content_type = (content_type or PARQUET).split(";")[0].strip().lower()
    if isinstance(request_body, str):
        request_body = request_body.encode("utf-8")
    if content_type in (PARQUET, "application/parquet"):
        return pd.read_parquet(io.BytesIO(request_body))
    if content_type in (JSONLINES, "application/x-jsonlines", "application/json"):
        text = request_body.decode("utf-8").strip()
        return pd.read_json(io.StringIO(text), orient="records", lines=not text.startswith("["))
    if content_type == "text/csv":
        return pd.read_csv(io.BytesIO(request_body))
    raise ValueError(f"unsupported content type {content_type!r}; send {PARQUET}, {JSONLINES} or text/csv")


def predict_fn(input_data, model):
    """One row per input row: flight_id (when sent) and probability_late."""
    out = pd.DataFrame({"probability_late": score(model, input_data)}, index=input_data.index)
    if "flight_id" in input_data.columns:
        out.insert(0, "flight_id", input_data["flight_id"].to_numpy())
    return out


def output_fn(prediction, accept=JSONLINES):
    """Returns (body, content type), which both SageMaker serving stacks accept."""
    accept = (accept or JSONLINES).split(";")[0].strip().lower()
    if accept in ("*/*", JSONLINES, "application/x-jsonlines"):
        return prediction.to_json(orient="records", lines=True, double_precision=15).encode("utf-8"), JSONLINES
    if accept == "application/json":
        return prediction.to_json(orient="records", double_precision=15).encode("utf-8"), accept
    if accept == "text/csv":
        return prediction.to_csv(index=False).encode("utf-8"), accept
    if accept in (PARQUET, "application/parquet"):
        buffer = io.BytesIO()
        prediction.to_parquet(buffer, index=False)
        return buffer.getvalue(), PARQUET
    raise ValueError(f"unsupported accept type {accept!r}")


if __name__ == "__main__":
    results = train(parse_args(sys.argv[1:]))
    print(json.dumps({k: results[k] for k in ("roc_auc", "baseline_log_loss", "log_loss", "test_rows")}))
