"""The one module that reads the environment for behaviour.

`LAKE_ENV` picks the deployment (`local`, the default, or `aws`); `LAKE_ROOT` moves the local lake
(default: `.lake/` in the project);
`DAGSTER_HOME` holds the Dagster instance (default: `.dagster_home/` in the project); `LAKE_AUTOMATION`
(`on` or `off`) sets whether the sensors, the automation sensor and the schedule start running (default: on
locally, off on AWS; once toggled in the UI, the UI's choice stays). Everything else receives these values
as arguments, so a test can build either deployment without touching the process environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"

Deployment = Literal["local", "aws"]
DEPLOYMENTS: tuple[Deployment, ...] = ("local", "aws")


@dataclass(frozen=True)
class Settings:
    deployment: Deployment
    lake_root: Path
    dagster_home: Path
    automation: bool = True


def current() -> Settings:
    deployment = os.environ.get("LAKE_ENV", "local").strip().lower() or "local"
    if deployment not in DEPLOYMENTS:
        raise ValueError(
            f"LAKE_ENV={deployment!r} is not a deployment; expected one of {', '.join(DEPLOYMENTS)}"
        )
    lake_root = Path(os.environ.get("LAKE_ROOT") or PROJECT_ROOT / ".lake").resolve()
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    automation = os.environ.get("LAKE_AUTOMATION", "on" if deployment == "local" else "off").strip().lower()
    if automation not in ("on", "off"):
        raise ValueError(f"LAKE_AUTOMATION={automation!r}: expected on or off")
    return Settings(
        deployment=deployment, lake_root=lake_root, dagster_home=dagster_home, automation=automation == "on"
    )  # type: ignore[arg-type]
