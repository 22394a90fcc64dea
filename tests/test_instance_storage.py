"""The local instance's storage (lake_platform/instance.py): a range's events in one transaction, same records.

Each test opens two instances from a dagster.yaml, Dagster's default SQLite storage and the project's
(`dagster.yaml`'s `storage:` block), runs the same ranged run on both and compares what Dagster reads back.
"""

import importlib.util
import os
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from lake_platform import instance as lake_instance
from lake_platform import partitions
from lake_platform.settings import PROJECT_ROOT

FIRST, LAST = "2013-01-01", "2013-03-31"  # 90 days
DAYS = partitions.DAILY.get_partition_keys_in_range(dg.PartitionKeyRange(FIRST, LAST))


@dg.asset(partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN)
def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows_in_run": len(context.partition_keys)})


@dg.asset(partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN, deps=[upstream])
def downstream(context: dg.AssetExecutionContext) -> None:
    if os.environ.get("FAIL_DOWNSTREAM"):
        raise RuntimeError("downstream fails on purpose")


JOB = dg.Definitions(assets=[upstream, downstream], jobs=[dg.define_asset_job("days")]).resolve_job_def("days")
KEYS = [upstream.key, downstream.key]


def open_instance(home: Path, project_storage: bool) -> dg.DagsterInstance:
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    if not project_storage:
        del config["storage"]
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


@pytest.fixture
def instances(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "project"))
    # Loading the project's storage sets it for the process; it is what makes Dagster hand batches over.
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    project = open_instance(tmp_path / "project", project_storage=True)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == lake_instance.EVENT_BATCH_SIZE
    default = open_instance(tmp_path / "default", project_storage=False)
    yield default, project
    default.dispose()
    project.dispose()


def run_range(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return JOB.execute_in_process(instance=instance, tags=partitions.range_tags(FIRST, LAST), raise_on_error=False)


def asset_events(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    """What Dagster records of a run's asset events, without ids and timestamps."""
    out = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.asset_key is None:
            continue
        out.append((event.event_type_value, event.asset_key.to_user_string(), event.partition))
    return out


def status(instance: dg.DagsterInstance, key: dg.AssetKey):
    value = get_and_update_asset_status_cache_value(instance, key, partitions.DAILY)
    return (
        sorted(value.deserialize_materialized_partition_subsets(partitions.DAILY).get_partition_keys()),
        sorted(value.deserialize_failed_partition_subsets(partitions.DAILY).get_partition_keys()),
        sorted(value.deserialize_in_progress_partition_subsets(partitions.DAILY).get_partition_keys()),
    )


def test_the_instance_is_dagsters_sqlite_storage_with_the_batching_event_log(instances):
    _, project = instances
    assert isinstance(project.event_log_storage, lake_instance.BatchingSqliteEventLogStorage)
    assert Path(project.event_log_storage._base_dir) == Path(os.environ["DAGSTER_HOME"]) / "history" / "runs"


def test_a_range_is_recorded_as_dagsters_default_storage_records_it(instances):
    default, project = instances
    results = [run_range(default), run_range(project)]
    assert all(result.success for result in results)

    recorded = [asset_events(i, r.run_id) for i, r in zip(instances, results)]
    assert recorded[0] == recorded[1]
    planned = [e for e in recorded[1] if e[0] == "ASSET_MATERIALIZATION_PLANNED"]
    assert len(planned) == 2 * len(DAYS)  # one per asset and day: the days' status is kept
    for key in KEYS:
        assert status(default, key) == status(project, key) == (DAYS, [], [])
        for instance in instances:
            latest = instance.fetch_materializations(key, limit=1).records[0]
            assert latest.partition_key == LAST
            assert instance.get_latest_materialization_event(key).run_id == latest.run_id
            by_day = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[DAYS[10]]), limit=5
            ).records
            assert len(by_day) == 1
        # The event tags Dagster indexes per asset event (the asset event tags table; the values are data
        # versions, which differ between runs).
        tags = [
            sorted(tuple(sorted(t)) for t in i.event_log_storage.get_event_tags_for_asset(key)) for i in instances
        ]
        assert tags[0] == tags[1] and len(tags[1]) == len(DAYS)


def test_a_range_is_written_in_a_few_transactions(instances, monkeypatch):
    """Dagster's SQLite event log opens a connection per event: 4 × 90 planned and materialized events
    here. The project's writes each batch together."""
    _, project = instances
    opened = []
    connect = type(project.event_log_storage)._connect

    def counting(self, shard):
        opened.append(shard)
        return connect(self, shard)

    monkeypatch.setattr(type(project.event_log_storage), "_connect", counting)
    assert run_range(project).success
    assert len(opened) < 60, len(opened)


def test_days_of_a_started_range_are_in_progress_and_of_a_failed_one_failed(instances, monkeypatch):
    """What Dagster's other switch (`DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`) gives up, and the
    automation's `in_progress` rule depends on, is kept."""
    default, project = instances
    for instance in instances:
        instance.create_run_for_job(JOB, tags=partitions.range_tags(FIRST, LAST), asset_selection={upstream.key})
    assert status(default, upstream.key) == status(project, upstream.key) == ([], [], DAYS)

    monkeypatch.setenv("FAIL_DOWNSTREAM", "1")
    for instance in instances:
        assert not run_range(instance).success
    assert status(default, downstream.key) == status(project, downstream.key) == ([], DAYS, [])


def test_the_event_writes_benchmark_runs_the_same_range_on_both_storages():
    """bench/event_writes.py (in `make bench`): the two storages get the same run and write the same events."""
    spec = importlib.util.spec_from_file_location("bench_event_writes", PROJECT_ROOT / "bench" / "event_writes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure(5)
    assert result["storage_default"] == "SqliteEventLogStorage"
    assert result["storage_project"] == "BatchingSqliteEventLogStorage"
    for storage in ("default", "project"):
        assert result[f"planned_events_{storage}"] == result[f"materialization_events_{storage}"] == 5 * module.ASSETS
    assert result["pre_step_ratio"] > 0 and result["run_ratio"] > 0
