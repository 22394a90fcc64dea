"""The local Dagster instance's storage: Dagster's SQLite storage, with a run's batch of events written at once.

A run over a range of days writes two events per daily asset and day: one `ASSET_MATERIALIZATION_PLANNED`
when the run is created, one `ASSET_MATERIALIZATION` when the step ends (Dagster records each partition of a
range separately; upstream: dagster-io/dagster#18789, #19829). Dagster's SQLite event log writes each one in
its own connection and transaction (~15 ms each on the project's machine), so a year of 8 daily assets spent
~40 s writing planned events before its first step ran (README, "Performance").

Dagster already sends these events as batches (`DagsterEventBatchMetadata`): when `DAGSTER_EVENT_BATCH_SIZE`
is set, the instance hands a batch to `EventLogStorage.store_event_batch`, which SQLite implements as a loop
of single writes. `BatchingSqliteEventLogStorage.store_event_batch` writes a batch's asset events in one
transaction per database (the run's shard, then the cross-run index), with the same rows as one by one:
every partition keeps its own planned and materialization event, so Dagster still marks a range's days in
progress while the run runs and failed if it fails (which `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`,
Dagster's other switch, gives up).

`dagster.yaml` selects `LakeSqliteStorage` (`storage: custom:`); loading it sets `DAGSTER_EVENT_BATCH_SIZE`
(unless set) in each process that opens the instance: the webserver and daemon, which create runs and write
the planned events, the run workers and `lake run`, which write the materializations.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import dagster._check as check
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

# Events buffered per batch before a write; a year of one daily asset is 365. Dagster writes a batch when it
# ends or reaches this size, so a larger batch only means fewer transactions.
EVENT_BATCH_SIZE = "10000"


def _batched(event: EventLogEntry) -> bool:
    """An asset event (planned, materialized, observed, failed): what Dagster batches for a range of days."""
    return event.is_dagster_event and event.get_dagster_event().event_type in ASSET_EVENTS


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage whose `store_event_batch` writes a batch's asset events in one transaction
    per database; other events, and single events, are stored as Dagster stores them."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        check.sequence_param(events, "events", of_type=EventLogEntry)
        pending: list[EventLogEntry] = []
        for event in events:
            if _batched(event):
                pending.append(event)
                continue
            self._store_together(pending)
            pending = []
            self.store_event(event)
        self._store_together(pending)

    def _store_together(self, events: Sequence[EventLogEntry]) -> None:
        """The rows `store_event` writes for each asset event, in one transaction per database and run."""
        for run_id, group in itertools.groupby(events, key=lambda event: event.run_id):
            group = list(group)
            rows = [self._event_to_row(event) for event in group]  # each event serialized once
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)
            with self.index_transaction() as conn:
                event_ids = []
                for event, row in zip(group, rows):
                    with db_result(conn, SqlEventLogStorageTable.insert().values(**row)) as result:
                        event_ids.append(result.inserted_primary_key[0])
                    self._store_asset_event(conn, event, event_ids[-1])
                self._store_asset_event_tags(conn, group, event_ids)


class LakeSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, events, schedules under `base_dir`, by default DAGSTER_HOME, the same
    files as Dagster's default storage) with `BatchingSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        # The event log Dagster's __init__ opened, on the same folder, replaced by the batching one.
        self._event_log_storage = BatchingSqliteEventLogStorage(_event_logs_directory(base_dir))
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> LakeSqliteStorage:
        # DagsterSqliteStorage's names its own class; this one builds the subclass (same `base_dir` config).
        return cls.from_local(inst_data=inst_data, **config_value)
