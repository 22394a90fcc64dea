"""Ingest services: the interfaces every deployment implements.

Each service's job is to put into the landing zone exactly what the AWS service writes there (README,
principle 2). Local stand-ins live in `local_ingest.py`; the AWS implementations in `aws_ingest.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from lake_platform.adapters.storage import ObjectInfo, ObjectStore


@dataclass
class LandingReport:
    """What a service delivered into landing in one call."""

    objects: list[ObjectInfo] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # rows per table, where the service knows them
    details: dict[str, str] = field(default_factory=dict)  # service-specific status (task ARN, job ids)


class DmsReplication(dg.ConfigurableResource):
    """AWS DMS replicating the operations database into `landing/dms/<schema>/<table>/`."""

    def replicate(self, context: dg.AssetExecutionContext, store: ObjectStore) -> LandingReport:
        raise NotImplementedError

    def pending(self, store: ObjectStore) -> list[str]:
        """What a `replicate` call would do now, one line per item (read-only; empty: nothing)."""
        raise NotImplementedError


class DataExchange(dg.ConfigurableResource):
    """AWS Data Exchange exporting a data set's revisions into `landing/data_exchange/<data set>/`."""

    def export_new_revisions(self, context: dg.AssetExecutionContext, store: ObjectStore) -> LandingReport:
        raise NotImplementedError

    def pending(self, store: ObjectStore) -> list[str]:
        """The revisions an `export_new_revisions` call would export now (read-only)."""
        raise NotImplementedError
