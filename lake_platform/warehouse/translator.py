"""How dbt nodes appear in the asset graph: `warehouse/<model>`, in group `warehouse`.

Sources keep the asset keys their `meta.dagster.asset_key` declares (`clean/flights`, …), so dbt's
lineage joins the Python assets that write those tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject


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
        # dagster-dbt also records the manifest's adapter as the table's storage kind.
        return spec.replace_attributes(kinds={"dbt", self.target}).merge_attributes(
            metadata={"dagster/storage_kind": self.target}
        )
