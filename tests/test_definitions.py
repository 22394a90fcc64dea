"""The code location loads for every deployment, offline, fast, and with the same resource keys."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake_platform.definitions import build_definitions
from lake_platform.settings import DEPLOYMENTS, PROJECT_ROOT

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_keys.txt"
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
    "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


def asset_keys(defs) -> list[str]:
    return sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())


def test_every_deployment_defines_the_same_resource_keys(tmp_path):
    keys = {d: set(build_definitions(d, tmp_path).resources) for d in DEPLOYMENTS}
    assert keys["local"] == keys["aws"]


def test_every_deployment_has_the_same_asset_graph(tmp_path):
    local, aws = (asset_keys(build_definitions(d, tmp_path)) for d in ("local", "aws"))
    assert local == aws


def test_the_asset_graph_matches_its_snapshot(tmp_path):
    """Regression guard: a graph change shows up here; update tests/snapshots/asset_keys.txt with it."""
    assert asset_keys(build_definitions("local", tmp_path)) == SNAPSHOT.read_text().split()


def test_importing_the_code_location_does_not_import_spark_sagemaker_sklearn_or_pyiceberg():
    code = (
        "import sys, lake_platform.definitions\n"
        "heavy = [m for m in ('pyspark', 'sagemaker', 'sklearn', 'pyiceberg') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_dagster_definitions_validate_passes_with_no_credentials(deployment, tmp_path):
    env = {**os.environ, **NO_AWS, "LAKE_ENV": deployment, "LAKE_ROOT": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr
