"""Read and write the lake's tables in Spark jobs, the same way on Glue, EMR Serverless and local Spark.

A lake table (the clean, quarantine and curated zones) is an Apache Iceberg table, a dict naming it in the
session's catalogs:
  input   {"iceberg": "<catalog>.<database>.<table>", "values": [day, ...] or None}: the table's current snapshot,
          only the partitions of `values` (the days of a daily table) when given;
  output  {"iceberg": ..., "partition_column": column or None, "replace": {"first": day, "last": day} or None,
          "description": text (optional)}: created on first write (copy-on-write, format v2,
          identity-partitioned by the column). A daily table's write replaces the days first..last and the NULL
          partition (rows whose day cannot be told) in one commit; a table without `replace` is replaced
          whole. Readers see the previous snapshot or this one.
A string is a plain Parquet folder, read or overwritten as it is (the cleaning job's unit tests write one).
"""

from __future__ import annotations

import uuid

WRITE_ID = "lake.write-id"  # the snapshot summary property that finds a write's snapshot among concurrent ones
# Iceberg's table properties of every lake table: format v2, copy-on-write for every row-level operation, so
# readers (DuckDB through PyIceberg's file list, Athena, Spectrum) never apply delete files; a rerun's frame may
# carry a column the table lacks yet (a contract gained one): the write adds it.
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "copy-on-write",
    "write.update.mode": "copy-on-write",
    "write.merge.mode": "copy-on-write",
    "write.parquet.compression-codec": "snappy",
    "write.spark.accept-any-schema": "true",
    # Each commit writes a new metadata file (the current one lists every snapshot, for time travel): keep the
    # last 20 and delete older ones at commit, instead of leaving them for orphan-file removal.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


def is_iceberg(table) -> bool:
    return isinstance(table, dict) and "iceberg" in table


def partition_column(spark, identifier: str) -> str | None:
    """The table's identity partition column (the lake's daily tables have one), from Spark's DESCRIBE: Spark 3.5
    lists it under `# Partition Information` (a `# col_name` header, then the column); a transform other than
    identity is listed under `# Partitioning` as `Part 0 | <transform>`, which the lake's tables never use."""
    rows = spark.sql(f"describe table {identifier}").collect()
    names = [r["col_name"] for r in rows]
    if "# Partition Information" in names:
        following = [r for r in rows[names.index("# Partition Information") + 1 :] if not r["col_name"].startswith("#")]
        return following[0]["col_name"] if following and following[0]["col_name"] else None
    if "# Partitioning" in names:
        part = rows[names.index("# Partitioning") + 1]
        if part["col_name"].startswith("Part ") and "(" not in part["data_type"]:
            return part["data_type"]
    return None


def day_filter(column: str, first: str, last: str):
    """The rows of days first..last and those without a day: what a daily run replaces."""
    from pyspark.sql import functions as F

    day = F.col(column)
    return day.between(F.lit(first).cast("date"), F.lit(last).cast("date")) | day.isNull()


def create_namespace(spark, namespace: str) -> None:
    """`create namespace if not exists`, when another process may create it at the same moment: the catalog's
    check and insert are two statements, and the slower process fails on the other's row."""
    try:
        spark.sql(f"create namespace if not exists {namespace}")
    except Exception:
        catalog, _, database = namespace.partition(".")
        if database not in {r[0] for r in spark.sql(f"show namespaces in {catalog}").collect()}:
            raise


def write_iceberg(spark, df, target: dict) -> int:
    """Commit `df` to the Iceberg table `target` (see the module's docstring); returns the snapshot id."""
    from pyspark.sql import functions as F

    identifier, column = target["iceberg"], target.get("partition_column")
    create_namespace(spark, identifier.rsplit(".", 1)[0])
    if not spark.catalog.tableExists(identifier):
        writer = df.limit(0).writeTo(identifier).using("iceberg")
        for key, value in TABLE_PROPERTIES.items():
            writer = writer.tableProperty(key, value)
        if target.get("description"):  # Iceberg's table comment; Glue shows it as the table's description
            writer = writer.tableProperty("comment", target["description"])
        if column:
            writer = writer.partitionedBy(F.col(column))
        try:
            writer.create()
        except Exception:  # a concurrent first write created it (Iceberg's AlreadyExistsException): write into it
            if not spark.catalog.tableExists(identifier):
                raise
    write_id = str(uuid.uuid4())
    if column:
        df = df.repartition(column)  # one task, hence one file, per day
    writer = df.writeTo(identifier).option("mergeSchema", "true").option(f"snapshot-property.{WRITE_ID}", write_id)
    scope = target.get("replace")
    condition = day_filter(column, scope["first"], scope["last"]) if column and scope else F.lit(True)
    writer.overwrite(condition)
    found = spark.sql(
        f"select snapshot_id from {identifier}.snapshots where summary['{WRITE_ID}'] = '{write_id}'"
    ).collect()
    return found[0][0]


def read_iceberg(spark, table: dict, snapshot_id: int | None = None):
    from pyspark.sql import functions as F

    reader = spark.read if snapshot_id is None else spark.read.option("snapshot-id", str(snapshot_id))
    df = reader.table(table["iceberg"])
    values = table.get("values")
    if values is not None:
        column = partition_column(spark, table["iceberg"])
        if column:
            df = df.filter(F.col(column).isin([F.lit(v).cast("date") for v in values]))
    return df


def read_table(spark, table):
    if is_iceberg(table):
        return read_iceberg(spark, table)
    return spark.read.parquet(table)


def write_table(df, output, partition_column: str | None = None) -> int | None:
    """A commit to an Iceberg table (returns its snapshot id), or an overwritten Parquet folder, with
    Hive-style `<column>=<value>/` folders when `partition_column` is given."""
    if is_iceberg(output):
        return write_iceberg(df.sparkSession, df, output)
    if partition_column is None:
        df.write.mode("overwrite").parquet(output)
        return
    # One task per day: a few files per partition folder instead of one per shuffle partition and day.
    df.repartition(partition_column).write.mode("overwrite").partitionBy(partition_column).parquet(output)


def read_back(spark, output, df, snapshot_id: int | None = None):
    """What was written, as readers will see it: for Iceberg the committed snapshot's rows of the write's scope;
    for a Parquet folder its files (a range with no rows writes no file, only _SUCCESS)."""
    from pyspark.errors import AnalysisException

    if is_iceberg(output):
        written = read_iceberg(spark, {"iceberg": output["iceberg"]}, snapshot_id)
        scope, column = output.get("replace"), output.get("partition_column")
        return written.filter(day_filter(column, scope["first"], scope["last"])) if column and scope else written
    try:
        return spark.read.parquet(output)
    except AnalysisException:  # "Unable to infer schema": nothing but _SUCCESS in the folder
        return spark.createDataFrame([], df.schema)
