"""Export a warehouse table to a fresh version folder of the exports zone and publish it."""

from __future__ import annotations

from typing import Any

from lake_platform.adapters.catalog import Catalog, version_key
from lake_platform.adapters.storage import ObjectStore
from lake_platform.adapters.warehouse import Warehouse

PREVIEW_ROWS = 10


def export_table(
    warehouse: Warehouse,
    store: ObjectStore,
    catalog: Catalog,
    *,
    table: str,
    name: str,
    version: str,
    order_by: str,
    description: str = "",
) -> dict[str, Any]:
    """Unload `table` to `exports/_versions/<name>/<version>/`, point `exports.<name>` at it.

    The previous version stays readable until the catalog switches over (README, principle 4).
    Returns what was published: rows, files, location, version and a preview of the first rows.
    """
    exported = warehouse.export(table, store.uri(version_key("exports", name, version)))
    info = catalog.publish("exports", name, version, warehouse.columns(table), description)
    preview = warehouse.query(
        f"select * from {warehouse.qualified(table)} order by {order_by} limit {PREVIEW_ROWS}"
    )
    return {
        "rows": exported["rows"],
        "files": len(exported["files"]),
        "location": info.location,
        "version": version,
        "preview": markdown_table(preview),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    lines += ["| " + " | ".join(_cell(row[n]) for n in names) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
