"""Clean (AWS Glue): typed, de-duplicated Apache Iceberg tables, checked against their contracts.

The cleaning job commits the clean table and its quarantine itself (Iceberg, spark_jobs/lake_tables.py): a daily
run replaces its days in one commit; readers see the previous snapshot or the new one. The materialization
records the snapshot ids it committed, so it links to the exact data it wrote.
"""

import dagster as dg

from lake_platform import contracts, partitions
from lake_platform.adapters.catalog import Catalog
from lake_platform.adapters.spark import SparkJobs
from lake_platform.adapters.storage import ObjectStore
from lake_platform.raw.copy import arrival_order, read_manifest

QUARANTINE_SCHEMA = [("source_file", "string"), ("line", "bigint"), ("reason", "string"), ("record", "string")]
ACCOUNTING_CHECK = "all_records_accounted_for"
SCHEMA_CHECK = "schema_matches_contract"
FILES_CHECK = "no_file_rejected"


def accounting(meta: dict) -> dg.AssetCheckResult:
    """Nothing lost: every input file is read or quarantined whole, and every record of the files read is
    clean, quarantined, or dropped as a superseded version of its key (CDC deletes included)."""
    out = meta["rows_clean"] + meta["rows_quarantined"] + meta["duplicates_dropped"]
    files_out = meta["files_read"] + len(meta["quarantined_files"])
    return dg.AssetCheckResult(
        check_name=ACCOUNTING_CHECK,
        passed=meta["rows_in"] == out and meta["input_files"] == files_out,
        metadata={
            "rows_in": meta["rows_in"],
            "rows_out": out,
            "difference": meta["rows_in"] - out,
            "input_files": meta["input_files"],
            "files_read": meta["files_read"],
            "files_quarantined": len(meta["quarantined_files"]),
        },
    )


def schema_check(contract: dict, schema: list) -> dg.AssetCheckResult:
    expected = [list(c) for c in contracts.schema(contract)]
    actual = [list(c) for c in schema]
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=actual == expected,
        metadata={"expected": str(expected), "actual": str(actual)},
    )


def rejected_files_check(meta: dict) -> dg.AssetCheckResult:
    """WARN, never blocking: which input files were rejected whole, and why. A bad file is quarantined and
    reported here; the good files beside it are cleaned and published all the same."""
    rejected = meta["quarantined_files"]
    return dg.AssetCheckResult(
        check_name=FILES_CHECK,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files_rejected": len(rejected),
            "files_read": meta["files_read"],
            "rejected": dg.MetadataValue.md(
                "| file | reason |\n|---|---|\n" + "\n".join(f"| `{r['file']}` | {r['reason']} |" for r in rejected[:50])
            ) if rejected else dg.MetadataValue.text("none"),
        },
    )


def partition_scope(context: dg.AssetExecutionContext, contract: dict) -> tuple[dict | None, list[str]]:
    """The cleaning job's `partition` parameter for this run's day range, and the days it is responsible for."""
    spec = partitions.spec(contract)
    if spec is None:
        return None, []
    days = context.partition_keys  # every day of the run's range, in order
    return {"column": spec["column"], "first": days[0], "last": days[-1]}, days


def clean_asset(name: str) -> dg.AssetsDefinition:
    contract = contracts.load(name)
    key = dg.AssetKey(["clean", name])
    partitioned = partitions.spec(contract) is not None

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(["raw", name])],
        group_name="clean",
        kinds={"glue", "spark", "parquet"},
        description=contract["description"],
        metadata={"primary_key": ", ".join(contract["primary_key"])},
        partitions_def=partitions.partitions_def(contract),
        backfill_policy=partitions.SINGLE_RUN if partitioned else None,
        check_specs=[
            dg.AssetCheckSpec(ACCOUNTING_CHECK, asset=key, blocking=True,
                              description="rows in = clean + quarantined + duplicates dropped; files = read + quarantined"),
            dg.AssetCheckSpec(SCHEMA_CHECK, asset=key, blocking=True,
                              description="the published table has exactly the contract's columns and types"),
            dg.AssetCheckSpec(FILES_CHECK, asset=key, blocking=False,
                              description="WARN when an input file was rejected whole (quarantined with its reason)"),
        ],
    )
    def _clean(context: dg.AssetExecutionContext, store: ObjectStore, catalog: Catalog, glue: SparkJobs):
        # In arrival order: a later version of a key wins over an earlier one (after the contract's order_by).
        raw_keys = [e["raw_key"] for e in arrival_order(read_manifest(store, name)["current"])]
        if not raw_keys:
            raise dg.Failure(f"clean/{name}: the raw manifest lists no objects; materialize raw/{name} first")
        part, days = partition_scope(context, contract)
        column = part["column"] if part else None
        scope = {"partition_column": column, "replace": {"first": days[0], "last": days[-1]}} if part else {}
        # Every raw object is listed, in arrival order. Of a daily dataset the job reads those its raw index
        # (spark_jobs/raw_index.py) does not rule out for this run's days: which days a CDC file holds is
        # only known by reading it once. `lake run --rebuild` reads them all.
        meta = glue.run(
            context,
            "clean",
            {
                "contract": contract,
                "inputs": [store.uri(k) for k in raw_keys],
                "output": {"iceberg": catalog.iceberg_table("clean", name), **scope},
                "quarantine": {"iceberg": catalog.iceberg_table("quarantine", name), **scope},
                "partition": part,
                "expected_schema": [list(c) for c in contracts.schema(contract)],
                **({"raw_index": catalog.iceberg_table("raw_index", name),
                    "rebuild": partitions.rebuild_requested(context.run.tags)} if part else {}),
            },
        )
        checks = [accounting(meta), schema_check(contract, meta["schema"])]
        table = catalog.iceberg_table("clean", name)
        location = f"{table} @ snapshot {meta['snapshot_id']}" if meta["committed"] else (
            f"not committed: {meta['held_because']}"
        )
        checks.append(rejected_files_check(meta))
        return dg.MaterializeResult(
            metadata={
                **partitions.row_count(context, meta["rows_clean"]),
                "rows_in": meta["rows_in"],
                "rows_quarantined": meta["rows_quarantined"],
                "duplicates_dropped": meta["duplicates_dropped"],
                "quarantine_reasons": dg.MetadataValue.json(meta["quarantine_reasons"]),
                "quarantined_files": dg.MetadataValue.json(meta["quarantined_files"]),
                "files_quarantined": len(meta["quarantined_files"]),
                "raw_files_read": meta["input_files"],
                "raw_files_skipped": meta.get("files_skipped", 0),
                "columns_added": dg.MetadataValue.json(meta["columns_added"]),
                "deletes_applied": meta["deletes_applied"],
                "deletes_for_unknown_keys": meta["deletes_for_unknown_keys"],
                "table": table,
                "snapshot_id": dg.MetadataValue.text(str(meta["snapshot_id"] or "")),
                "quarantine_snapshot_id": dg.MetadataValue.text(str(meta["quarantine_snapshot_id"])),
                "location": location,
                **({"days": f"{days[0]} .. {days[-1]} ({len(days)})"} if days else {}),
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(n, t) for n, t in meta["schema"]]
                ),
            },
            check_results=checks,
        )

    return _clean


clean_assets = [clean_asset(name) for name in contracts.names()]
