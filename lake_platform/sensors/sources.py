"""The landing sources the sensors watch: one per data contract, plus the file share.

Each source is a landing prefix and what a new object there runs. A contract's `source.service` and
`source.landing_prefix` say where its objects land (flights: DMS, weather: Data Exchange, planes,
airports and airlines: the SFTP partner); declaring a contract is enough to get its sensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dagster as dg

from lake_platform import contracts, partitions
from lake_platform.adapters.datasync import SHARE_PREFIX

# Key layouts whose names sort in arrival order, relative to the source's prefix. DMS names each CDC
# file by the time it writes it (`20130105-103000123.parquet`, optionally under `YYYY/MM/DD/` with
# DatePartitionEnabled) and never rewrites one: a listing can start after the last file handled.
# Its full-load files (`LOAD00000001.parquet`) sort after every digit, so they are always listed.
# Data Exchange is not ordered: revision ids (the export's `${Revision.Id}` folder) are random hex.
ORDERED_KEYS = {"dms": re.compile(r"(\d{4}/\d{2}/\d{2}/)?\d{8}-\d+\.[^/]+")}


@dataclass(frozen=True)
class LandingSource:
    name: str
    service: str
    prefix: str
    selection: tuple[dg.AssetKey, ...]  # what a new object runs: raw (and clean) of the dataset
    contract: dict | None = None  # set for a partitioned dataset: its objects are read to learn their days

    @property
    def sensor_name(self) -> str:
        return f"{self.name}_landing_sensor"

    @property
    def raw_key(self) -> dg.AssetKey:
        return self.selection[0]

    def ordered(self, key: str) -> bool:
        """Whether `key` belongs to the source's arrival-ordered layout (see ORDERED_KEYS)."""
        pattern = ORDERED_KEYS.get(self.service)
        return bool(pattern and key.startswith(self.prefix) and pattern.fullmatch(key[len(self.prefix) :]))


def contract_source(name: str) -> LandingSource:
    contract = contracts.load(name)
    source = contract["source"]
    return LandingSource(
        name=name,
        service=source["service"],
        prefix=source["landing_prefix"],
        selection=(dg.AssetKey(["raw", name]), dg.AssetKey(["clean", name])),
        contract=contract if partitions.spec(contract) else None,
    )


def landing_sources() -> list[LandingSource]:
    share = LandingSource(name="share", service="datasync", prefix=SHARE_PREFIX, selection=(dg.AssetKey(["raw", "share"]),))
    return [*(contract_source(n) for n in contracts.names()), share]


def source_for(key: str, sources: list[LandingSource]) -> LandingSource | None:
    """The source whose prefix holds `key` (the longest, should prefixes nest)."""
    matching = [s for s in sources if key.startswith(s.prefix)]
    return max(matching, key=lambda s: len(s.prefix), default=None)
