"""Raw: every landed object copied once, by content, into the immutable raw zone."""

import dagster as dg

from lake_platform import contracts
from lake_platform.adapters.storage import ObjectStore
from lake_platform.raw.copy import RawReport, copy_to_raw, manifest_key


def copy_metadata(store: ObjectStore, dataset: str, report: RawReport) -> dict:
    """What a raw copy did, for any dataset: counts, bytes and where its manifest is."""
    return {
        "objects_current": len(report.current),
        "objects_copied": len(report.copied),
        "objects_unchanged": report.unchanged,
        "bytes_current": sum(e["size"] for e in report.current.values()),
        "manifest": dg.MetadataValue.path(store.uri(manifest_key(dataset))),
    }


def raw_asset(name: str) -> dg.AssetsDefinition:
    contract = contracts.load(name)
    prefix = contract["source"]["landing_prefix"]

    @dg.asset(
        key=["raw", name],
        deps=[dg.AssetKey(["landing", name])],
        group_name="raw",
        kinds={"s3"},
        description=f"Immutable copies of every `{name}` object that landed under `{prefix}`, with SHA-256 checksums.",
    )
    def _raw(store: ObjectStore) -> dg.MaterializeResult:
        report = copy_to_raw(store, name, prefix)
        if not report.current:
            raise dg.Failure(f"nothing to copy for {name}: landing prefix {store.uri(prefix)} is empty")
        rows = [(k, e["sha256"][:16], e["size"]) for k, e in sorted(report.current.items())]
        return dg.MaterializeResult(
            metadata={
                **copy_metadata(store, name, report),
                "objects": dg.MetadataValue.md(
                    "| landing key | sha256 | bytes |\n|---|---|---|\n"
                    + "\n".join(f"| `{k}` | `{s}…` | {n:,} |" for k, s, n in rows[:50])
                ),
            }
        )

    return _raw


raw_assets = [raw_asset(name) for name in contracts.names()]
