"""Apache Iceberg locally: the Spark runtime's jars, and an embedded catalog Spark and PyIceberg share.

The lake's tables are moving to Iceberg (the format Glue 5.0, EMR 7, Athena and Redshift Spectrum read and
write natively). On AWS the catalog is the Glue Data Catalog; locally it is Iceberg's JDBC catalog on a SQLite
file under the lake (`<lake_root>/catalog/iceberg.db`, data and metadata under `<lake_root>/iceberg/`), which
PyIceberg's `SqlCatalog` reads and writes too: DuckDB, `lake sql`, dbt-duckdb and the ML steps can read a
table's current snapshot without Spark.

The jars (Iceberg's Spark runtime, at the Iceberg version Glue 5.0 runs, and SQLite's JDBC driver) come from
Maven Central with Maven's own client: `make install` runs `python -m lake_platform.adapters.iceberg fetch`,
which copies them into the venv (`<venv>/share/lake_platform/jars/`); nothing is committed, and after the
install everything runs offline.

Spark's catalog is named `lake` in both deployments (on AWS the Glue Data Catalog, spark_aws.py), so a table is
`lake.lake_clean.flights` everywhere. A Spark session fixes a catalog at first use; one process may work on
several local lakes in turn (a test session), so `use_lake` points the session's `lake` at a lake and drops
the catalog Spark already built when the lake changes.

The clean, quarantine, curated and ML zones are Iceberg tables; the exports and the raw inventory are still
version folders.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

# Glue 5.0 runs Iceberg 1.7.1 on Spark 3.5 (Scala 2.12): the same runtime locally, so both deployments write
# the same table format version and metadata.
ICEBERG_VERSION = "1.7.1"
JARS = {
    "iceberg-spark-runtime": f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG_VERSION}",
    "sqlite-jdbc": "org.xerial:sqlite-jdbc:3.50.3.0",
}
CATALOG_NAME = "lake"


def jars_dir() -> Path:
    """Where `make install` puts the jars: inside the venv, so a new venv fetches them again."""
    return Path(sys.prefix) / "share" / "lake_platform" / "jars"


def jar_paths() -> list[Path]:
    """The jars' files; a clear error naming the fix when one is missing."""
    found = []
    for name, coordinates in JARS.items():
        version = coordinates.rsplit(":", 1)[1]
        artifact = coordinates.split(":")[1]
        path = jars_dir() / f"{artifact}-{version}.jar"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing ({name}, {coordinates}): run `make install` (it fetches the Iceberg jars "
                "from Maven Central with `python -m lake_platform.adapters.iceberg fetch`)"
            )
        found.append(path)
    return found


def fetch(maven: str = "mvn") -> list[Path]:
    """Copy the jars from Maven Central (through Maven's local repository) into `jars_dir()`."""
    if shutil.which(maven) is None:
        raise FileNotFoundError(f"`{maven}` not found: Maven fetches the Iceberg jars (Debian: apt install maven)")
    jars_dir().mkdir(parents=True, exist_ok=True)
    for coordinates in JARS.values():
        subprocess.run(
            [maven, "--batch-mode", "--quiet", "-Dstyle.color=never", "dependency:copy", f"-Dartifact={coordinates}",
             f"-DoutputDirectory={jars_dir()}"],
            check=True,
        )
    return jar_paths()


def session_conf() -> dict[str, str]:
    """The settings a local SparkSession needs before its JVM starts: Iceberg's runtime on the classpath and its
    SQL extensions (MERGE INTO, CALL). A lake's catalog is added later, at runtime (`LocalIcebergCatalog.conf`)."""
    return {
        "spark.jars": ",".join(str(p) for p in jar_paths()),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    }


def use_lake(spark, lake_root: Path | str) -> None:
    """Point the session's `lake` catalog at this lake's (a no-op when it already is)."""
    conf = LocalIcebergCatalog(Path(lake_root)).conf()
    uri_key = f"spark.sql.catalog.{CATALOG_NAME}.uri"
    if spark.conf.get(uri_key, None) == conf[uri_key]:
        return
    for key, value in conf.items():
        spark.conf.set(key, value)
    # Spark builds a catalog once, from the settings at its first use, and keeps it for the session:
    # CatalogManager.reset (package-private in Scala, public in the bytecode) drops it, so the next use builds
    # it from the settings above. Pinned with Spark 3.5 (tests/test_iceberg_local.py switches lakes).
    spark._jsparkSession.sessionState().catalogManager().reset()


# Iceberg 1.7's JDBC catalog tables, schema V1 (`iceberg_type` tells tables from views), as it creates them.
JDBC_CATALOG_TABLES = (
    "create table if not exists iceberg_tables(catalog_name VARCHAR(255) NOT NULL,table_namespace VARCHAR(255) "
    "NOT NULL,table_name VARCHAR(255) NOT NULL,metadata_location VARCHAR(1000),previous_metadata_location "
    "VARCHAR(1000), iceberg_type VARCHAR(5),PRIMARY KEY (catalog_name, table_namespace, table_name))",
    "create table if not exists iceberg_namespace_properties(catalog_name VARCHAR(255) NOT NULL,namespace "
    "VARCHAR(255) NOT NULL,property_key VARCHAR(255),property_value VARCHAR(1000),PRIMARY KEY (catalog_name, "
    "namespace, property_key))",
)


@dataclass(frozen=True)
class LocalIcebergCatalog:
    """The local lake's Iceberg catalog: JDBC on SQLite for Spark, `SqlCatalog` on the same file for PyIceberg."""

    lake_root: Path

    @property
    def database(self) -> Path:
        return Path(self.lake_root) / "catalog" / "iceberg.db"

    @property
    def warehouse(self) -> Path:
        return Path(self.lake_root) / "iceberg"

    def initialize(self) -> None:
        """Create the catalog's database as Iceberg's JDBC catalog (schema V1) would, once, before any Spark
        process opens it: two processes opening a new catalog at once would both create its tables, and one
        fails ("table iceberg_tables already exists")."""
        self.database.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.database, timeout=60) as db:
            for statement in JDBC_CATALOG_TABLES:
                db.execute(statement)
        db.close()

    def conf(self, name: str = CATALOG_NAME) -> dict[str, str]:
        """The runtime settings of this lake's catalog as Spark catalog `name` (its database is created)."""
        self.initialize()
        prefix = f"spark.sql.catalog.{name}"
        return {
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.type": "jdbc",
            f"{prefix}.uri": f"jdbc:sqlite:{self.database}",
            # V1 adds the column Iceberg 1.7 uses to tell tables from views; PyIceberg reads it too.
            f"{prefix}.jdbc.schema-version": "V1",
            # Several processes commit to one SQLite file (Dagster's multiprocess executor, two runs): a writer
            # waits for the lock instead of failing at once; Iceberg's own commit check does the rest.
            f"{prefix}.jdbc.busy_timeout": "60000",
            # The tables are created by `initialize`; Iceberg's own check of them leaves a read lock held.
            f"{prefix}.jdbc.init-catalog-tables": "false",
            f"{prefix}.warehouse": self.warehouse.as_uri(),
        }

    def spark_conf(self, name: str = CATALOG_NAME) -> dict[str, str]:
        """Everything a new SparkSession needs for this catalog as `name` (`lake` by default): jars, extensions,
        catalog. `spark.jars` must be set before the session's JVM starts."""
        return {**session_conf(), **self.conf(name)}

    @contextmanager
    def opened(self):
        """PyIceberg's catalog of the lake for the block, or None when the lake has no catalog file yet (opening
        one would create it); its database connections are closed after the block."""
        if not self.database.is_file():
            yield None
            return
        catalog = self.pyiceberg()
        try:
            yield catalog
        finally:
            catalog.engine.dispose()

    def tables(self, database: str, names: list[str] | None = None) -> list:
        """The catalog's `TableInfo` of the namespace's Iceberg tables (version: the current snapshot id), or of
        those of `names` that exist; none when the catalog or the namespace does not exist yet."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        with self.opened() as catalog:
            if catalog is None:
                return []
            if names is None:
                try:
                    names = sorted(name for _, name in catalog.list_tables(database))
                except NoSuchNamespaceError:
                    return []
            infos = []
            for name in names:
                try:
                    infos.append(_table_info(database, name, catalog.load_table((database, name))))
                except NoSuchTableError:
                    continue
            return infos

    def pyiceberg(self):
        """The same catalog through PyIceberg (imported here: loading the code location must not import it)."""
        from pyiceberg.catalog.sql import SqlCatalog

        self.database.parent.mkdir(parents=True, exist_ok=True)
        return SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{self.database}", warehouse=self.warehouse.as_uri())


def local_path(location: str) -> str:
    """A data file's location as a local reader opens it: `file:/x` and `file:///x` become `/x` (as PyIceberg's
    own file IO resolves them); other schemes (s3://...) are left as they are."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return f"{parsed.netloc}{parsed.path}"
    return location


def planned_files(name: str, tasks, error: type[Exception] = ValueError) -> list[str]:
    """The data files of a planned scan (`scan.plan_files()`), sorted; refused (`error`) when one has delete
    files (merge-on-read), which reading the Parquet files alone would not apply. The lake's tables are
    copy-on-write, so their scans have none."""
    files = []
    for task in tasks:
        if task.delete_files:
            deletes = sorted(local_path(d.file_path) for d in task.delete_files)
            raise error(
                f"{name}: the snapshot has delete files (merge-on-read), e.g. {deletes[0]} for "
                f"{local_path(task.file.file_path)}; only copy-on-write tables are read as plain Parquet here (set "
                "the table's write.delete.mode, write.update.mode and write.merge.mode to copy-on-write and "
                "rewrite its data)"
            )
        files.append(local_path(task.file.file_path))
    return sorted(files)


def current_files(name: str, table, values: list[str] | None = None) -> list[str]:
    """The data files of the table's current snapshot (PyIceberg `Table`), only those of the partitions
    `values` of its identity partition column (a daily table's days) when given; none for an empty table."""
    from pyiceberg.expressions import AlwaysTrue, In

    if table.current_snapshot() is None:
        return []
    row_filter = AlwaysTrue()
    if values is not None:
        fields = table.spec().fields
        if not fields:
            raise ValueError(f"{name} is not partitioned: read it whole (values=None)")
        column = table.schema().find_field(fields[0].source_id).name
        if not values:
            return []
        row_filter = In(column, set(values))
    return planned_files(name, table.scan(row_filter=row_filter).plan_files())


def _table_info(database: str, name: str, table):
    from lake_platform.adapters.catalog import TableInfo

    schema, snapshot = table.schema(), table.current_snapshot()
    partition_keys = [schema.find_field(f.source_id).name for f in table.spec().fields]
    updated = datetime.fromtimestamp(table.metadata.last_updated_ms / 1000, timezone.utc).isoformat()
    return TableInfo(
        database, name, table.location(), [(f.name, spark_type(f.field_type)) for f in schema.fields],
        str(snapshot.snapshot_id) if snapshot else "", table.properties.get("comment", ""), updated,
        partition_keys,
    )


def spark_type(kind) -> str:
    """Spark's (and Glue's) name of an Iceberg type, as the catalog's other tables list their columns."""
    text = str(kind)
    return {"long": "bigint", "timestamptz": "timestamp", "timestamp": "timestamp_ntz"}.get(text, text)


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m lake_platform.adapters.iceberg fetch")
    for path in fetch():
        print(path)
