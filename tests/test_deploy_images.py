"""The images of deploy/docker/, checked offline (they are not built here: no container registry is reachable): the
EMR Serverless image's pins are requirements.lock's, its Python is the one the EMR job runs use, its base is the
release the CDK app's application runs; the Dagster image installs the lock and the project at the paths the CDK
app's ECS services use; every file a Dockerfile copies exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "deploy" / "docker"
sys.path.insert(0, str(ROOT / "deploy" / "aws"))

from lake_platform.adapters.spark_aws import EmrServerlessJobs  # noqa: E402
from lake_stacks import dagster as dagster_stack  # noqa: E402


def lock() -> dict[str, str]:
    pins = (line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line)
    return {name.lower(): version.strip() for name, version in pins}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_emr_image_pins_are_the_locks():
    pins = [line for line in (DOCKER / "emr-spark" / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    locked = lock()
    assert pins and all(locked[name.lower()] == version for name, version in (p.split("==") for p in pins))
    assert {p.split("==")[0] for p in pins} >= {"dagster-pipes", "boto3"}


def test_emr_image_runs_the_python_the_job_runs_ask_for_on_the_applications_release():
    steps = instructions(DOCKER / "emr-spark" / "Dockerfile")
    python = EmrServerlessJobs.model_fields["python"].default
    assert ("ENV", f"PYSPARK_PYTHON={python}") in steps
    assert any(kind == "RUN" and "python3.11" in args for kind, args in steps) and python.endswith("python3.11")
    release = json.loads((ROOT / "deploy" / "aws" / "config.json").read_text())["emr_release_label"]
    assert ("ARG", f"EMR_RELEASE={release.removeprefix('emr-')}") in steps
    assert steps[1] == ("FROM", "public.ecr.aws/emr-serverless/spark/emr-${EMR_RELEASE}:latest")
    assert steps[-1] == ("USER", "hadoop:hadoop"), "EMR Serverless runs the image as hadoop"


def test_dagster_image_installs_the_lock_and_the_project_where_the_ecs_services_look():
    steps = instructions(DOCKER / "dagster" / "Dockerfile")
    assert ("RUN", "pip install --no-cache-dir -r requirements.lock") in steps
    workdir = next(args for kind, args in steps if kind == "WORKDIR")
    assert f"{workdir}/workspace.yaml" == dagster_stack.WORKSPACE
    assert f"DAGSTER_HOME={dagster_stack.DAGSTER_HOME}" in next(args for kind, args in steps if kind == "ENV")
    assert ("COPY", "deploy/aws/dagster.yaml ${DAGSTER_HOME}/dagster.yaml") in steps


def test_every_file_a_dockerfile_copies_exists():
    for dockerfile, context in ((DOCKER / "dagster" / "Dockerfile", ROOT), (DOCKER / "emr-spark" / "Dockerfile", DOCKER / "emr-spark")):
        for kind, args in instructions(dockerfile):
            if kind == "COPY":
                for source in args.split()[:-1]:
                    assert (context / source).exists(), f"{dockerfile}: COPY {source}: not in {context}"
