"""The dbt project handle and the `dbt` resource that runs it.

One dbt project (`dbt_project/`) serves both deployments; only the profile target differs: `duckdb`
(local, the warehouse is `<lake_root>/warehouse/lake.duckdb` reading the lake's Parquet) or
`redshift` (Redshift Serverless reading the Glue catalog through Spectrum).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from pydantic import Field

from lake_platform.settings import DBT_PROJECT_DIR, Deployment

WAREHOUSE_TARGETS: dict[Deployment, str] = {"local": "duckdb", "aws": "redshift"}

# The manifest comes from `dbt parse` (`make prepare`), never from loading definitions: the code
# location must load offline and fast (README, principle 6).
DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def warehouse_target(deployment: Deployment) -> str:
    """The dbt profile target a deployment's warehouse runs on."""
    return WAREHOUSE_TARGETS[deployment]


def require_manifest(project: DbtProject = DBT_PROJECT) -> Path:
    if not project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {project.manifest_path}. Run `make prepare` (it runs "
            f"`dbt parse --project-dir {project.project_dir} --profiles-dir {project.profiles_dir}`) "
            "before loading the definitions."
        )
    return project.manifest_path


def _dbt_executable() -> str:
    # `dagster dev` started as `.venv/bin/dagster` does not put .venv/bin on PATH; the dbt beside
    # the running interpreter is the one installed with this package.
    beside_python = Path(sys.executable).with_name("dbt")
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


class LakeDbtCliResource(DbtCliResource):
    """dbt CLI for the lake's warehouse: knows the lake root that the project's `--vars` need."""

    lake_root: str = Field(
        description="Absolute path of the local lake (LAKE_ROOT); dbt-duckdb reads its Parquet and "
        "keeps the warehouse at <lake_root>/warehouse/lake.duckdb. Unused by the redshift target."
    )

    def lake_vars(self, days: tuple[str, str] | None = None) -> list[str]:
        """`--vars` arguments every dbt command of the project needs; `days` (first, last), the run's range of
        daily partitions, for the daily models (macros/lake_days.sql)."""
        values = {"lake_root": self.lake_root}
        if days is not None:
            values.update(first_day=days[0], last_day=days[1])
        return ["--vars", json.dumps(values)]

    @property
    def _cli_version(self):
        """dbt's version. dagster-dbt runs `dbt --version` for it (once per process, ~5 s here), which also asks
        PyPI for dbt's latest release: an offline machine waits on that. The dbt installed with this package
        (`_dbt_executable`) is the installed dbt-core, whose version the package metadata gives at once."""
        if Path(self.dbt_executable) == Path(sys.executable).with_name("dbt"):
            from importlib.metadata import version as installed

            from packaging.version import parse

            return parse(installed("dbt-core"))
        return super()._cli_version

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        if self.target == "duckdb":
            # DuckDB creates the database file but not its folder.
            Path(self.lake_root, "warehouse").mkdir(parents=True, exist_ok=True)


def _absolute(lake_root: str | Path) -> str:
    # dbt runs in the project folder, so a relative lake root would point somewhere else.
    return str(lake_root) if "://" in str(lake_root) else str(Path(lake_root).resolve())


def dbt_resource(target: str, lake_root: str | Path) -> LakeDbtCliResource:
    """The `dbt` resource for a deployment's target (`duckdb` or `redshift`)."""
    if target not in WAREHOUSE_TARGETS.values():
        expected = ", ".join(WAREHOUSE_TARGETS.values())
        raise ValueError(f"unknown dbt target {target!r}; expected one of {expected}")
    return LakeDbtCliResource(
        project_dir=DBT_PROJECT,
        profiles_dir=DBT_PROJECT_DIR,
        target=target,
        lake_root=_absolute(lake_root),
        dbt_executable=_dbt_executable(),
    )
