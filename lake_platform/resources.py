"""Resources per deployment: the same keys, different implementations (DESIGN.md, "One graph, two deployments").

`local` runs on embedded defaults under the lake root; `aws` takes account-specific names from environment
variables (`dg.EnvVar`, resolved when a run starts, never at import), so its definitions load with no
credentials and no network.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from lake_platform.adapters.catalog import GlueCatalog, LocalCatalog
from lake_platform.adapters.local_ingest import LocalDataExchange, LocalDms
from lake_platform.adapters.spark import LocalSparkJobs
from lake_platform.adapters.storage import LocalObjectStore, S3ObjectStore
from lake_platform.sources.seed import DATA_EXCHANGE_DIR, OPERATIONS_DB


def local_resources(lake_root: Path) -> dict:
    store = LocalObjectStore(root=str(lake_root))
    spark = LocalSparkJobs()
    return {
        "store": store,
        "catalog": LocalCatalog(store=store),
        "dms": LocalDms(
            source_url=f"sqlite:///{lake_root / OPERATIONS_DB}",
            state_path=str(lake_root / "sources" / "dms_task_state.json"),
        ),
        "data_exchange": LocalDataExchange(provider_dir=str(lake_root / DATA_EXCHANGE_DIR)),
        "glue": spark,
        "emr": spark,
    }


def aws_resources() -> dict:
    region = dg.EnvVar("LAKE_AWS_REGION")
    store = S3ObjectStore(bucket=dg.EnvVar("LAKE_BUCKET"), region_name=region)
    return {
        "store": store,
        "catalog": GlueCatalog(store=store, region_name=region),
    }


def resources_for(deployment: str, lake_root: Path) -> dict:
    if deployment == "local":
        return local_resources(lake_root)
    if deployment == "aws":
        return aws_resources()
    raise ValueError(f"unknown deployment {deployment!r}")
