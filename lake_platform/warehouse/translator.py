"""How dbt nodes appear in the asset graph: `warehouse/<model>`, in group `warehouse`.

Sources keep the asset keys their `meta.dagster.asset_key` declares (`clean/flights`, …), so dbt's
lineage joins the Python assets that write those tables.

A daily model (tag `daily`, the facts) also depends, day for day, on the lake tables its views read: the
staging views are unpartitioned (a view is created once and always shows its table's current data, so a
materialization per day would record nothing), and the direct edge `clean/flights` → `fct_flights` is what
lets a fact follow the days of the table under its view (the automation's day rule reads a dependency's
days; a view has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject


DAILY_TAG = "daily"


def lake_tables_read_through_views(manifest: Mapping[str, Any], props: Mapping[str, Any]) -> list[str]:
    """The unique ids of the sources a model reads through views (its view parents, their view parents, …)."""
    found: list[str] = []
    queue = [p for p in props.get("depends_on", {}).get("nodes", []) if p.startswith("model.")]
    seen: set[str] = set()
    while queue:
        parent = manifest["nodes"][queue.pop(0)]
        if parent["unique_id"] in seen or parent.get("config", {}).get("materialized") != "view":
            continue
        seen.add(parent["unique_id"])
        for node in parent.get("depends_on", {}).get("nodes", []):
            if node.startswith("source.") and node not in found:
                found.append(node)
            elif node.startswith("model."):
                queue.append(node)
    return found


class LakeDbtTranslator(DagsterDbtTranslator):
    """Keys, group, kinds and descriptions for the warehouse's dbt models.

    `target` is the dbt target the models run on (`duckdb` or `redshift`); it becomes the asset kind.
    The manifest is parsed once with the duckdb target, so the adapter it records cannot be used.
    """

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(["warehouse", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        name = dbt_resource_props["name"]
        return dbt_resource_props.get("description") or f"dbt {dbt_resource_props['resource_type']} {name}"

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = manifest["nodes"].get(unique_id) or {}
        if DAILY_TAG in props.get("tags", []):
            present = {dep.asset_key for dep in spec.deps}
            through = [
                self.get_asset_key(manifest["sources"][source])
                for source in lake_tables_read_through_views(manifest, props)
            ]
            spec = spec.replace_attributes(
                deps=[*spec.deps, *(dg.AssetDep(key) for key in through if key not in present)]
            )
        # dagster-dbt also records the manifest's adapter as the table's storage kind.
        return spec.replace_attributes(kinds={"dbt", self.target}).merge_attributes(
            metadata={"dagster/storage_kind": self.target}
        )
