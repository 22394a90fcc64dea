"""deploy/aws/dagster.yaml, the Dagster instance of the AWS deployment, against the schemas of what it names.

Validation only: the classes import, each section's config matches the class's own schema, the environment
variables resolve, and the landing-source concurrency limit names the tag the sensors set. Nothing here talks
to Postgres or ECS (neither is reachable offline; moto answers the S3 client of the compute log manager).
"""

import boto3
import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config
from moto import mock_aws

from lake_platform.sensors.requests import SOURCE_TAG
from lake_platform.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy" / "aws"
ENV = {
    "DAGSTER_POSTGRES_HOST": "dagster.cluster-abc.us-east-1.rds.amazonaws.com",
    "DAGSTER_POSTGRES_USER": "dagster",
    "DAGSTER_POSTGRES_PASSWORD": "from-secrets-manager",
    "DAGSTER_POSTGRES_DB": "dagster",
    "LAKE_BUCKET": "lake-test",
    "LAKE_AWS_REGION": "us-east-1",
}


@pytest.fixture
def config(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    value, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    return value


def section(config: dict, name: str):
    """The class a configurable section names, and its config validated against the class's own schema."""
    data = config[name]
    cls = class_from_code_pointer(data["module"], data["class"])
    result = process_config(cls.config_type(), data.get("config") or {})
    assert result.success, (name, [e.message for e in result.errors])
    return cls, result.value


def test_the_instance_file_matches_dagsters_instance_schema(config):
    assert set(config) >= {"storage", "run_launcher", "run_coordinator", "compute_logs"}
    assert config["telemetry"] == {"enabled": False}


def test_storage_is_postgres_with_every_setting_from_the_environment(config):
    result = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert result.success, [e.message for e in result.errors]
    url = pg_url_from_config(result.value)
    assert url == (
        "postgresql://dagster:from-secrets-manager@dagster.cluster-abc.us-east-1.rds.amazonaws.com:5432/dagster"
    )


def test_a_missing_environment_variable_is_named(config, monkeypatch):
    monkeypatch.delenv("DAGSTER_POSTGRES_PASSWORD")
    result = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert not result.success
    assert 'environment variable "DAGSTER_POSTGRES_PASSWORD" which is not set' in result.errors[0].message


def test_runs_are_ecs_tasks_launched_like_the_daemons_own_task(config):
    cls, value = section(config, "run_launcher")
    assert cls.__name__ == "EcsRunLauncher"
    assert value["use_current_ecs_task_config"] is True


def test_one_run_at_a_time_per_landing_source(config):
    cls, value = section(config, "run_coordinator")
    assert cls.__name__ == "QueuedRunCoordinator"
    (limit,) = value["tag_concurrency_limits"]
    assert limit == {"key": SOURCE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def test_step_logs_go_to_the_lake_bucket(config, monkeypatch):
    cls, value = section(config, "compute_logs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lake-test")
        manager = cls.from_config_value(None, value)
        assert (manager._s3_bucket, manager._s3_prefix) == ("lake-test", "_dagster/compute-logs")
