"""Ingest: the landing zone as each AWS service delivers it (DMS, Data Exchange, Transfer Family)."""

import dagster as dg

from lake_platform import contracts
from lake_platform.adapters.ingest import DataExchange, DmsReplication, LandingReport
from lake_platform.adapters.partners import SftpPartners, UnknownPartner, contract_partner, inside
from lake_platform.adapters.storage import ObjectStore

# Every dataset whose contract says it arrives over SFTP: declaring a contract is enough to onboard one.
SFTP_DATASETS = [n for n in contracts.names() if contracts.load(n)["source"]["service"] == "sftp"]


def landing_metadata(report: LandingReport, store: ObjectStore, prefix: str) -> dict:
    in_landing = store.list(prefix)
    return {
        "objects_delivered": len(report.objects),
        "bytes_delivered": sum(o.size for o in report.objects),
        "objects_in_landing": len(in_landing),
        "rows_delivered": sum(report.rows.values()),
        "landing_location": dg.MetadataValue.path(store.uri(prefix)),
        **{f"service_{k}": v for k, v in report.details.items()},
    }


@dg.asset(key=["landing", "flights"], group_name="ingest", kinds={"dms", "s3"})
def landing_flights(context: dg.AssetExecutionContext, dms: DmsReplication, store: ObjectStore):
    """Flights replicated by AWS DMS from the operations database: full-load files in DMS's S3 format."""
    report = dms.replicate(context, store)
    return dg.MaterializeResult(metadata=landing_metadata(report, store, "landing/dms/"))


@dg.asset(key=["landing", "weather"], group_name="ingest", kinds={"dataexchange", "s3"})
def landing_weather(context: dg.AssetExecutionContext, data_exchange: DataExchange, store: ObjectStore):
    """Hourly weather, a third-party data product: each new AWS Data Exchange revision exported to S3."""
    report = data_exchange.export_new_revisions(context, store)
    return dg.MaterializeResult(metadata=landing_metadata(report, store, "landing/data_exchange/weather/"))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=["landing", name],
            group_name="ingest",
            kinds={"sftp", "s3"},
            description=f"The partner's `{name}` files, uploaded over SFTP (AWS Transfer Family) into landing.",
        )
        for name in SFTP_DATASETS
    ],
    can_subset=True,
)
def landing_reference(context: dg.AssetExecutionContext, store: ObjectStore, partners: SftpPartners):
    """Transfer Family writes uploads straight into landing; this records what the partner has delivered,
    once the contract's landing prefix is checked to be inside its partner's SFTP home."""
    homes: dict[str, list[str]] = {}  # partner -> landing prefixes, asked once per run
    for key in context.selected_asset_keys:
        name = key.path[-1]
        prefix = contracts.load(name)["source"]["landing_prefix"]
        partner = partner_home_check(name, prefix, partners, homes)
        objects = store.list(prefix)
        if not objects:
            raise dg.Failure(
                f"the partner has not delivered {name!r}: no object under {store.uri(prefix)}*"
                " (locally, `lake seed` plays the partner for the reference data)"
            )
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "partner": partner,
                "partner_landing_prefixes": ", ".join(homes[partner]),
                "objects_in_landing": len(objects),
                "landing_location": dg.MetadataValue.path(store.uri(prefix)),
                "bytes": sum(o.size for o in objects),
                "latest_upload": max(o.last_modified for o in objects).isoformat(),
                "files": dg.MetadataValue.md("\n".join(f"- `{o.key}` ({o.size:,} B)" for o in objects)),
            },
        )


def partner_home_check(name: str, prefix: str, partners: SftpPartners, homes: dict[str, list[str]]) -> str:
    """The contract's partner, once its `landing_prefix` is known to be inside that partner's SFTP home: a
    prefix elsewhere would never receive an upload, and the dataset would wait for files that cannot come."""
    partner = contract_partner(prefix)
    if partner is None:
        raise dg.Failure(
            f"contract {name!r}: landing_prefix {prefix!r} names no SFTP partner: an SFTP dataset lands at"
            f" `landing/sftp/<partner>/<dataset>` (the partner's home, `/` on the SFTP server)"
        )
    if partner not in homes:
        try:
            homes[partner] = partners.landing_prefixes(partner)
        except UnknownPartner as exc:
            raise dg.Failure(f"contract {name!r} expects uploads from SFTP partner {partner!r}, but {exc}") from exc
    if not inside(prefix, homes[partner]):
        found = ", ".join(homes[partner]) or "none"
        raise dg.Failure(
            f"contract {name!r}: landing_prefix {prefix!r} is not inside SFTP partner {partner!r}'s home (its"
            f" uploads land under: {found}): map the partner's home directory to landing/sftp/{partner}/, or"
            " correct the contract's landing_prefix"
        )
    return partner
