"""Test helper: read a lake table's Iceberg snapshot the way readers do, from the data files PyIceberg plans for
it (lake_platform/adapters/lake_views.py: `lake sql` and dbt read them so)."""

from pathlib import Path

from lake_platform.adapters import lake_views


def snapshot_files(root: Path, zone: str, table: str, snapshot_id: int | None = None) -> list[str]:
    """The data files of the table's current (or given) snapshot, as local paths (delete files are refused)."""
    name = f"lake_{zone}.{table}"
    chosen = {name: snapshot_id} if snapshot_id is not None else None
    (view,) = [v for v in lake_views.iceberg_views(root, chosen) if v.name == name]
    return view.files


def relation(root: Path, zone: str, table: str, snapshot_id: int | None = None) -> str:
    """`read_parquet([...])` over the snapshot's files, for DuckDB SQL (the table must have data files)."""
    files = snapshot_files(root, zone, table, snapshot_id)
    assert files, f"lake_{zone}.{table} has no data files"
    return f"read_parquet({files!r}, union_by_name = true)"
