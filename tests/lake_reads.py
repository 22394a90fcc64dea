"""Test helper: read a lake table's current Iceberg snapshot the way readers do, from its planned data files."""

from pathlib import Path

from lake_platform.adapters.iceberg import LocalIcebergCatalog


def snapshot_files(root: Path, zone: str, table: str, snapshot_id: int | None = None) -> list[str]:
    """The data files of the table's current (or given) snapshot, as local paths."""
    loaded = LocalIcebergCatalog(Path(root)).pyiceberg().load_table((f"lake_{zone}", table))
    tasks = list(loaded.scan(snapshot_id=snapshot_id).plan_files())
    assert all(not t.delete_files for t in tasks), "lake tables are copy-on-write: no delete files"
    return [t.file.file_path.removeprefix("file://").removeprefix("file:") for t in tasks]


def relation(root: Path, zone: str, table: str, snapshot_id: int | None = None) -> str:
    """`read_parquet([...])` over the snapshot's files, for DuckDB SQL (the table must have data files)."""
    files = snapshot_files(root, zone, table, snapshot_id)
    assert files, f"lake_{zone}.{table} has no data files"
    return f"read_parquet({files!r}, union_by_name = true)"


def current_snapshot(root: Path, zone: str, table: str) -> int | None:
    loaded = LocalIcebergCatalog(Path(root)).pyiceberg().load_table((f"lake_{zone}", table))
    snapshot = loaded.current_snapshot()
    return snapshot.snapshot_id if snapshot else None
