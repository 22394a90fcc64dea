"""The summary printed at the end of `lake run`: what was produced, where, and what to do next."""

from __future__ import annotations

import click

from lake_platform.settings import Settings


def _value(entry):
    return getattr(entry, "value", entry)


def print_summary(result, current: Settings, elapsed: float) -> None:

    rows = []
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        mat = event.event_specific_data.materialization
        meta = mat.metadata
        count = next((_value(meta[k]) for k in ("dagster/row_count", "objects_current", "objects_in_landing",
                                                 "items_written", "rows") if k in meta), "")
        where = next((_value(meta[k]) for k in ("location", "landing_location", "manifest") if k in meta), "")
        rows.append((mat.asset_key.to_user_string(), count, where))
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = [c for c in checks if not c.passed]
    width = max((len(r[0]) for r in rows), default=10)
    click.echo("")
    click.echo(f"{'asset':<{width}}  {'rows/objects':>12}  location")
    for key, count, where in rows:
        shown = f"{count:,}" if isinstance(count, int) else str(count)
        click.echo(f"{key:<{width}}  {shown:>12}  {where}")
    status = "succeeded" if result.success else "FAILED"
    click.echo(
        f"\nrun {result.run_id} {status} in {elapsed:.0f} s: {len(rows)} assets materialized, "
        f"{len(checks)} checks evaluated, {len(failed)} failed"
    )
    for check in failed:
        click.echo(f"  failed check: {check.asset_key.to_user_string()} / {check.check_name}")
    click.echo(f"\nThe lake:        {current.lake_root}")
    click.echo("Dagster UI:      make dev   (then http://127.0.0.1:3000; this run is in its Runs tab)")
    click.echo("Query the lake:  lake sql \"select * from mart_carrier_ontime_monthly limit 5\"")
    if not result.success:
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                click.echo(f"\nstep {event.step_key} failed: {event.event_specific_data.error.message.strip()}")
