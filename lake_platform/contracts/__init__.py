"""Data contracts: one YAML file per dataset, the single source for cleaning, catalog schema and checks.

Adding a dataset to the lake is declaring its contract here; the raw and clean assets follow from it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

TYPES = {"string", "int", "bigint", "double", "boolean", "date", "timestamp"}
CONTRACT_KEYS = {"name", "description", "source", "primary_key", "order_by", "partition", "columns", "derived", "null_values"}
COLUMN_KEYS = {"name", "type", "nullable", "check", "null_values", "allow_nonfinite", "description"}


class ContractError(ValueError):
    pass


@cache
def load(name: str) -> dict:
    text = resources.files(__package__).joinpath(f"{name}.yml").read_text()
    contract = yaml.safe_load(text)
    validate(contract, f"{name}.yml")
    return contract


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yml") for p in resources.files(__package__).iterdir() if p.name.endswith(".yml")
    )


def validate(contract: dict, origin: str) -> None:
    for key in ("name", "source", "primary_key", "columns"):
        if key not in contract:
            raise ContractError(f"{origin}: missing required key {key!r}")
    unknown = sorted(set(contract) - CONTRACT_KEYS)
    if unknown:
        raise ContractError(f"{origin}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(CONTRACT_KEYS))}")
    _null_values(contract.get("null_values", [""]), f"{origin}: null_values")
    columns = [c["name"] for c in contract["columns"]]
    for column in contract["columns"]:
        where = f"{origin}: column {column.get('name')!r}"
        unknown = sorted(set(column) - COLUMN_KEYS)
        if unknown:
            raise ContractError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(COLUMN_KEYS))}")
        if "null_values" in column:
            _null_values(column["null_values"], f"{where}: null_values")
        if "allow_nonfinite" in column:
            if column.get("type") != "double":
                raise ContractError(f"{where}: allow_nonfinite applies to double columns only")
            if not isinstance(column["allow_nonfinite"], bool):
                raise ContractError(f"{where}: allow_nonfinite must be true or false")
    for column in contract["columns"] + contract.get("derived", []):
        if column.get("type") not in TYPES:
            raise ContractError(
                f"{origin}: column {column.get('name')!r} has type {column.get('type')!r}; "
                f"allowed: {', '.join(sorted(TYPES))}"
            )
    if "Op" in columns:
        raise ContractError(f"{origin}: column name 'Op' is reserved for DMS's change operation (I/U/D)")
    part = contract.get("partition")
    if part is not None:
        declared = {c["name"]: c["type"] for c in contract["columns"] + contract.get("derived", [])}
        if declared.get(part.get("column")) != "date":
            raise ContractError(f"{origin}: partition column {part.get('column')!r} must be a declared date column")
        for p in part.get("date_parts", []):
            if p not in columns:
                raise ContractError(f"{origin}: partition date part {p!r} is not declared in columns")
        if len(part.get("date_parts", [])) != 3:
            raise ContractError(f"{origin}: partition date_parts must name the year, month and day columns")
    for key in contract["primary_key"]:
        if key not in columns:
            raise ContractError(f"{origin}: primary key column {key!r} is not declared in columns")


def _null_values(values, where: str) -> None:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ContractError(f"{where} must be a list of strings (quote them in YAML: [\"\", \"NA\"]), got {values!r}")


def schema(contract: dict) -> list[tuple[str, str]]:
    """The clean table's columns, in order: declared columns, then derived ones."""
    return [(c["name"], c["type"]) for c in contract["columns"] + contract.get("derived", [])]
