"""Local stand-ins for the ingest services, writing into landing what the AWS service would write."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field

from lake_platform.adapters.ingest import DataExchange, DmsReplication, LandingReport
from lake_platform.adapters.storage import ObjectStore


class LocalDms(DmsReplication):
    """A DMS emulator: full load of each table from a SQL database into DMS's S3 target layout.

    Mirrors a task with `DataFormat=parquet`, `IncludeOpForFullLoad=true` and
    `TimestampColumnName=dms_commit_ts`: files `landing/dms/<schema>/<table>/LOAD00000001.parquet`, …
    whose first column `Op` is `I`. The task's position is kept in `state_path`, so a completed full load
    is not written again.
    """

    source_url: str = Field(description="SQLAlchemy URL of the source database.")
    schema_name: str = Field(default="ops", description="Source schema; the second level of DMS's S3 keys.")
    tables: list[str] = Field(default=["flights"], description="Tables the task replicates.")
    rows_per_file: int = Field(default=100_000, description="Rows per LOAD file (DMS splits by MaxFileSize).")
    state_path: str = Field(description="JSON file holding the task's position.")

    def _state(self) -> dict:
        path = Path(self.state_path)
        return json.loads(path.read_text()) if path.exists() else {"tables": {}}

    def _save(self, state: dict) -> None:
        path = Path(self.state_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    def replicate(self, context, store: ObjectStore) -> LandingReport:
        import sqlalchemy

        state = self._state()
        report = LandingReport(details={"task": "local DMS emulator", "source": self.source_url})
        engine = sqlalchemy.create_engine(self.source_url)
        try:
            for table in self.tables:
                if table in state["tables"]:
                    context.log.info(f"{table}: full load already completed; no new changes to write")
                    report.rows[table] = 0
                    continue
                keys, rows = self._full_load(engine, store, table)
                state["tables"][table] = {
                    "full_load_completed_at": datetime.now(timezone.utc).isoformat(),
                    "files": keys,
                    "rows": rows,
                }
                self._save(state)
                report.rows[table] = rows
        finally:
            engine.dispose()
        for table in self.tables:
            prefix = f"landing/dms/{self.schema_name}/{table}/"
            landed = set(state["tables"].get(table, {}).get("files", []))
            report.objects += [o for o in store.list(prefix) if o.key in landed]
        return report

    def _full_load(self, engine, store: ObjectStore, table: str) -> tuple[list[str], int]:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        commit_ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        keys, rows = [], 0
        query = f'SELECT * FROM "{table}"'
        with tempfile.TemporaryDirectory() as tmp:
            chunks = pd.read_sql_query(query, engine, chunksize=self.rows_per_file)
            for number, chunk in enumerate(chunks, start=1):
                chunk.insert(0, "Op", "I")
                chunk.insert(1, "dms_commit_ts", commit_ts)
                local = Path(tmp) / f"LOAD{number:08d}.parquet"
                pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), local)
                key = f"landing/dms/{self.schema_name}/{table}/{local.name}"
                store.put_file(key, local)
                keys.append(key)
                rows += len(chunk)
        return keys, rows


class LocalDataExchange(DataExchange):
    """A Data Exchange provider folder: `<provider_dir>/<data set>/<revision id>/{revision.json, assets…}`.

    Exporting a revision copies its assets to `landing/data_exchange/<data set>/<revision id>/<asset>`,
    the layout of an EXPORT_REVISIONS_TO_S3 job with KeyPattern `${Revision.Id}/${Asset.Name}`.
    """

    provider_dir: str = Field(description="Folder of the provider's data sets and revisions.")
    data_set: str = Field(default="weather", description="Entitled data set to export.")

    def export_new_revisions(self, context, store: ObjectStore) -> LandingReport:
        folder = Path(self.provider_dir) / self.data_set
        revisions = sorted(
            (json.loads((d / "revision.json").read_text())["CreatedAt"], d.name)
            for d in (folder.iterdir() if folder.is_dir() else [])
            if (d / "revision.json").exists()
        )
        prefix = f"landing/data_exchange/{self.data_set}/"
        exported = {o.key[len(prefix) :].split("/", 1)[0] for o in store.list(prefix)}
        report = LandingReport(details={"data_set": self.data_set, "revisions_available": str(len(revisions))})
        for _, revision in revisions:
            if revision in exported:
                continue
            for asset in sorted((folder / revision).iterdir()):
                if asset.name == "revision.json":
                    continue
                store.put_file(f"{prefix}{revision}/{asset.name}", asset)
            report.objects += store.list(f"{prefix}{revision}/")
            context.log.info(f"exported revision {revision} of {self.data_set}")
        return report
