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

Status: this module and its test (tests/test_iceberg_local.py) are the first step of the Iceberg change; the
clean, curated and ML tables are not written through it yet.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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

    def spark_conf(self) -> dict[str, str]:
        """The Spark settings that make `lake.<database>.<table>` an Iceberg table of this catalog. They include
        `spark.jars`, so they must be set before the session's JVM starts."""
        self.database.parent.mkdir(parents=True, exist_ok=True)
        prefix = f"spark.sql.catalog.{CATALOG_NAME}"
        return {
            "spark.jars": ",".join(str(p) for p in jar_paths()),
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.type": "jdbc",
            f"{prefix}.uri": f"jdbc:sqlite:{self.database}",
            # V1 adds the column Iceberg 1.7 uses to tell tables from views; PyIceberg reads it too.
            f"{prefix}.jdbc.schema-version": "V1",
            f"{prefix}.warehouse": self.warehouse.as_uri(),
        }

    def pyiceberg(self):
        """The same catalog through PyIceberg (imported here: loading the code location must not import it)."""
        from pyiceberg.catalog.sql import SqlCatalog

        self.database.parent.mkdir(parents=True, exist_ok=True)
        return SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{self.database}", warehouse=self.warehouse.as_uri())


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m lake_platform.adapters.iceberg fetch")
    for path in fetch():
        print(path)
