"""Publishing is atomic and repeatable (README, principle 4), shown on the local catalog with an exports (version-folder) table.

A publishing process killed mid-publish leaves readers on the previous version, and the rerun succeeds;
publishing the same content twice yields the same table.
"""

import signal
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq

from lake_platform.adapters.catalog import LocalCatalog, version_key
from lake_platform.adapters.storage import LocalObjectStore

PUBLISHER = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow as pa, pyarrow.parquet as pq
    from lake_platform.adapters.catalog import LocalCatalog, version_key
    from lake_platform.adapters.storage import LocalObjectStore

    root, version, rows, kill = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "kill"
    store = LocalObjectStore(root=root)
    folder = store.uri(version_key("exports", "t", version))
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table({"id": list(range(rows))}), os.path.join(folder, "part-0.parquet"))
    if kill:
        def die_on_swap(src, dst):  # killed at the very moment the table pointer is swapped
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = die_on_swap
    LocalCatalog(store=store).publish("exports", "t", version, [("id", "bigint")])
    """
)


def publish_in_subprocess(root, version: str, rows: int, kill: bool) -> int:
    args = [sys.executable, "-c", PUBLISHER, str(root), version, str(rows), "kill" if kill else "ok"]
    return subprocess.run(args, capture_output=True, text=True).returncode


def read_rows(root) -> int:
    return pq.read_table(str(root / "exports" / "t")).num_rows


def test_a_publisher_killed_mid_publish_leaves_readers_on_the_previous_version_and_the_rerun_succeeds(tmp_path):
    assert publish_in_subprocess(tmp_path, "v1", rows=3, kill=False) == 0
    assert publish_in_subprocess(tmp_path, "v2", rows=5, kill=True) == -signal.SIGKILL
    assert read_rows(tmp_path) == 3
    catalog = LocalCatalog(store=LocalObjectStore(root=str(tmp_path)))
    assert catalog.get("exports", "t").version == "v1"
    assert publish_in_subprocess(tmp_path, "v2", rows=5, kill=False) == 0
    assert read_rows(tmp_path) == 5
    assert catalog.get("exports", "t").version == "v2"


def test_republishing_the_same_rows_yields_the_same_table_and_prunes_superseded_versions(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    catalog = LocalCatalog(store=store)
    table = pa.table({"id": [3, 1, 2], "name": ["c", "a", "b"]})
    contents = []
    for version in ("v1", "v2", "v3"):
        folder = tmp_path / version_key("exports", "t", version)
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet")
        catalog.publish("exports", "t", version, [("id", "bigint"), ("name", "string")])
        contents.append(sorted(pq.read_table(str(tmp_path / "exports" / "t")).to_pylist(), key=lambda r: r["id"]))
    assert contents[0] == contents[1] == contents[2]
    assert sorted(p.name for p in (tmp_path / "exports" / "_versions" / "t").iterdir()) == ["v2", "v3"]
