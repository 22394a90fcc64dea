"""Read and write the lake's tables in Spark jobs, the same way on Glue, EMR Serverless and local Spark.

A table input is either a location (an unpartitioned table: one folder) or a dict
`{"paths": [...], "partition_column": ..., "columns": [[name, type], ...]}`: the folders of the partitions to
read (on AWS each Glue partition has its own location, possibly in different version folders, so Spark's
partition discovery cannot be used). The partition value is taken from the `<column>=<value>` folder of each
file, as Hive and Athena do; `columns` gives the schema when no partition is in range.
"""

from __future__ import annotations


def read_table(spark, table):
    from pyspark.sql import functions as F

    if isinstance(table, str):
        return spark.read.parquet(table)
    column, paths = table["partition_column"], table["paths"]
    if not paths:
        return spark.createDataFrame([], ", ".join(f"`{n}` {t}" for n, t in table["columns"]))
    df = spark.read.option("recursiveFileLookup", "true").parquet(*paths)
    value = F.regexp_extract(F.input_file_name(), f"{column}=([^/]+)", 1)
    return df.withColumn(column, value.cast("date"))


def write_table(df, output: str, partition_column: str | None = None) -> None:
    """A fresh version folder; Hive-style `<column>=<value>/` folders for a partitioned table."""
    if partition_column is None:
        df.write.mode("overwrite").parquet(output)
        return
    # One task per day: a few files per partition folder instead of one per shuffle partition and day.
    df.repartition(partition_column).write.mode("overwrite").partitionBy(partition_column).parquet(output)


def read_back(spark, output: str, df):
    """What was written, as readers will see it; a range with no rows writes no file, only _SUCCESS."""
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(output)
    except AnalysisException:  # "Unable to infer schema": nothing but _SUCCESS in the folder
        return spark.createDataFrame([], df.schema)
