"""The summary printed at the end of `lake run`: what was produced, where, and what to do next."""

from __future__ import annotations

import click

from lake_platform.settings import Settings

COUNT_KEYS = ("rows_in_run", "dagster/row_count", "items_in_table", "objects_current", "objects_in_landing")
WHERE_KEYS = ("location", "table", "landing_location", "manifest", "model_uri")


def _value(entry):
    return getattr(entry, "value", entry)


def _warehouse_rows(current: Settings, models: list[str]) -> dict[str, int]:
    """Row counts of the local warehouse's models (dbt reports none); empty on AWS."""
    path = current.lake_root / "warehouse" / "lake.duckdb"
    if current.deployment != "local" or not path.exists():
        return {}
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {m: con.execute(f'select count(*) from main."{m}"').fetchall()[0][0] for m in models}


def _rows(result, current: Settings) -> list[tuple[str, object, str]]:
    """One row per asset; a daily-partitioned asset has one materialization per day of the run, alike."""
    rows: dict[str, tuple[str, object, str]] = {}  # asset key -> (key, count, where)
    days: dict[str, int] = {}
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        mat = event.event_specific_data.materialization
        key = mat.asset_key.to_user_string()
        days[key] = days.get(key, 0) + (mat.partition is not None)
        if key in rows:
            continue
        meta = {k: _value(v) for k, v in mat.metadata.items()}
        count = next((meta[k] for k in COUNT_KEYS if k in meta), "")
        where = next((str(meta[k]) for k in WHERE_KEYS if k in meta), "")
        if "roc_auc" in meta:
            where = f"ROC AUC {meta['roc_auc']:.3f} vs baseline {meta['baseline_roc_auc']:.3f}; {where}"
        rows[key] = (key, count, where)
    counts = _warehouse_rows(current, [k.removeprefix("warehouse/") for k in rows if k.startswith("warehouse/")])
    path = current.lake_root / "warehouse" / "lake.duckdb"
    out = []
    for key, count, where in rows.values():
        model = key.removeprefix("warehouse/")
        if model != key and model in counts:
            count, where = counts[model], f"{path} main.{model}"
        out.append((f"{key} ({days[key]} days)" if days[key] else key, count, where))
    return out


def print_summary(result, current: Settings, elapsed: float) -> None:
    rows = _rows(result, current)
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    # A WARN check that did not pass (e.g. the predictions' drift) is a warning, not a failure.
    warned = [c for c in checks if not c.passed and c.severity.value == "WARN"]
    failed = [c for c in checks if not c.passed and c not in warned]
    width = max((len(r[0]) for r in rows), default=10)
    click.echo("")
    click.echo(f"{'asset':<{width}}  {'rows/objects':>12}  location")
    for key, count, where in rows:
        shown = f"{count:,}" if isinstance(count, int) else str(count)
        click.echo(f"{key:<{width}}  {shown:>12}  {where}")
    status = "succeeded" if result.success else "FAILED"
    click.echo(
        f"\nrun {result.run_id} {status} in {elapsed:.0f} s: {len(rows)} assets materialized, "
        f"{len(checks)} checks evaluated, {len(failed)} failed, {len(warned)} warned"
    )
    for check in failed:
        click.echo(f"  failed check: {check.asset_key.to_user_string()} / {check.check_name}")
    for check in warned:
        click.echo(f"  warning: {check.asset_key.to_user_string()} / {check.check_name}: {check.description}")
    click.echo(f"\nThe lake:        {current.lake_root}")
    click.echo("Dagster UI:      make dev   (then http://127.0.0.1:3000; this run is in its Runs tab)")
    click.echo('Query the lake:  .venv/bin/lake sql "select * from mart_carrier_ontime_monthly limit 5"')
    if not result.success:
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                click.echo(f"\nstep {event.step_key} failed: {event.event_specific_data.error.message.strip()}")
