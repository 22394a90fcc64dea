"""Reading a dataset's raw objects file by file, so a bad file is rejected alone and CSV lines keep their number.

Every accepted file becomes rows of one frame of strings: the declared columns, the DMS control columns
(`Op`, the commit timestamp) when present, and
  _source_file  the input URI as given
  line          the physical line number in a CSV file (1 is the header); null for Parquet
  _seq          the record's position within its file (the tie-break between equal commit times)
  _record       the record as delivered: the CSV line, or the Parquet row as JSON
  _malformed    the CSV line's fields do not match its header
Ships to Glue beside clean.py: pyspark and the standard library; pyarrow, when importable, reads Parquet
schemas without a Spark job per file (Glue 4.0 provides pyarrow 10.0.0, aws/aws-sdk-pandas#1849; without
pyarrow, Spark infers each schema as before).
"""

from __future__ import annotations

import json

import clean_files

WHOLE_FILE = "whole file: "  # the reason prefix of the quarantine row that stands for a file rejected whole
OP = "Op"  # DMS's change column (I/U/D); absent from full-load files written without IncludeOpForFullLoad
META = ["_source_file", "line", "_seq", "_record", "_malformed"]


def control_columns(contract: dict) -> list[str]:
    """Columns read besides the declared ones: DMS's `Op`, and `order_by` unless it is declared itself."""
    declared = {c["name"] for c in contract["columns"]}
    order = contract.get("order_by")
    return [OP] + ([order] if order and order not in declared else [])


def frame_schema(contract: dict) -> str:
    names = [c["name"] for c in contract["columns"]] + control_columns(contract)
    return ", ".join(
        [f"`{n}` string" for n in names]
        + ["_source_file string", "line bigint", "_seq bigint", "_record string", "_malformed boolean"]
    )


def read_inputs(spark, contract: dict, inputs: list[str]):
    """(frame of all accepted files, [{file, reason}] of rejected files, {file: [columns not in the contract]})."""
    frames, rejected, extras = [], [], {}
    declared = [c["name"] for c in contract["columns"]]
    known = set(declared) | set(control_columns(contract))
    for uri in inputs:
        try:
            frame, columns = read_file(spark, contract, uri)
        except BadFile as e:
            rejected.append({"file": uri, "reason": str(e)})
            continue
        missing = [c for c in declared if c not in columns]
        if missing:
            rejected.append({"file": uri, "reason": f"lacks declared column(s) {', '.join(missing)}"})
            continue
        extras[uri] = sorted(c for c in columns if c not in known)
        frames.append(frame)
    if not frames:
        return spark.createDataFrame([], frame_schema(contract)), rejected, extras
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out, rejected, extras


class BadFile(ValueError):
    """The whole file is unusable; the message says why."""


def read_file(spark, contract: dict, uri: str):
    """(frame, the file's column names) or BadFile."""
    reason = clean_files.unreadable_name(uri)
    if reason:
        raise BadFile(reason)
    fmt = contract["source"]["format"]
    if fmt == "csv":
        reason, header = clean_files.check_csv(uri)
        if reason:
            raise BadFile(reason)
        if len(set(header)) != len(header):
            raise BadFile(f"header repeats a column name: {header}")
        return read_csv_file(spark, contract, uri, header), header
    if fmt == "parquet":
        reason, footer = clean_files.check_parquet(uri)
        if reason:
            raise BadFile(reason)
        return read_parquet_file(spark, contract, uri, footer_schema(spark, footer))
    raise ValueError(f"contract {contract['name']}: unsupported source format {fmt!r}")


def whole_file_quarantine(spark, rejected: list[dict]):
    """One quarantine row per file rejected whole: the file, no line, the reason after WHOLE_FILE, no record."""
    rows = [(r["file"], None, WHOLE_FILE + r["reason"], None) for r in rejected]
    schema = "source_file string, line bigint, reason string, record string"
    return spark.createDataFrame(rows, schema).coalesce(1)  # one small part file, not one per core


def read_csv_file(spark, contract: dict, uri: str, header: list[str]):
    from pyspark.sql import functions as F

    # Spark's CSV reader gives no line numbers: read the lines in order with their index instead (Hadoop
    # splits a file in offset order and zipWithIndex numbers partitions in that order), then parse each line
    # with the CSV reader's own parser. A quoted value spanning lines is therefore seen as malformed lines.
    lines = spark.read.text(clean_files.hadoop_path(uri)).rdd.zipWithIndex()
    body = lines.filter(lambda t: t[1] > 0 and t[0][0].strip()).map(lambda t: (t[1] + 1, t[0][0]))
    df = spark.createDataFrame(body, "line bigint, _record string")
    fields = ", ".join(f"_c{i} string" for i in range(len(header)))
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
    parsed = df.withColumn("_p", F.from_csv("_record", f"{fields}, _corrupt string", options))
    position = {name: i for i, name in enumerate(header)}
    wanted = [c["name"] for c in contract["columns"]] + control_columns(contract)
    return parsed.select(
        *[(F.col(f"_p._c{position[n]}") if n in position else F.lit(None).cast("string")).alias(n) for n in wanted],
        F.lit(uri).alias("_source_file"),
        F.col("line"),
        F.col("line").alias("_seq"),
        F.col("_record"),
        F.col("_p._corrupt").isNotNull().alias("_malformed"),
    )


def footer_schema(spark, footer: bytes):
    """The schema Spark would infer from a Parquet footer, parsed by pyarrow on the driver.

    Spark infers a Parquet file's schema with a Spark job of its own: one job per file, thousands for the
    files of a DMS CDC backlog (measured on 50 small DMS files, loaded 2-core machine: 0.6 s a file that way,
    0.12 s with the footer read here). None (Spark infers it as before) where pyarrow is missing, cannot
    parse the footer, or a column has a type mapped by Spark's rules only (nested, INT96, decimal, unsigned...).
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(pa.BufferReader(footer)).schema
    except Exception:  # ImportError, or a footer pyarrow rejects: Spark's own verdict decides
        return None
    from pyspark.sql import types as T

    try:  # the registered default (true in Spark 3.5); unknown before Spark 3.4, which had no NTZ inference
        infer_ntz = spark.conf.get("spark.sql.parquet.inferTimestampNTZ.enabled").lower() == "true"
    except Exception:
        infer_ntz = None
    fields = []
    for i in range(len(schema)):
        column = schema.column(i)
        kind = spark_type(column.physical_type, json.loads(column.logical_type.to_json()), infer_ntz)
        if kind is None or column.max_repetition_level or column.path != column.name:
            return None
        fields.append(T.StructField(column.name, kind, True))
    if len({f.name.lower() for f in fields}) != len(fields):  # Spark's duplicate-column error decides
        return None
    return T.StructType(fields)


def spark_type(physical: str, logical: dict, infer_ntz: bool | None):
    """Spark's type for a flat Parquet column (its ParquetToSparkSchemaConverter rules), or None if not covered."""
    from pyspark.sql import types as T

    kind = logical["Type"]
    if kind == "None":
        plain = {"BOOLEAN": T.BooleanType, "INT32": T.IntegerType, "INT64": T.LongType,
                 "FLOAT": T.FloatType, "DOUBLE": T.DoubleType}
        return plain[physical]() if physical in plain else None
    if kind == "String" and physical == "BYTE_ARRAY":
        return T.StringType()
    if kind == "Date" and physical == "INT32":
        return T.DateType()
    if kind == "Int" and logical["isSigned"] and physical in ("INT32", "INT64"):
        return {8: T.ByteType, 16: T.ShortType, 32: T.IntegerType, 64: T.LongType}[logical["bitWidth"]]()
    if kind == "Timestamp" and physical == "INT64" and logical["timeUnit"] in ("milliseconds", "microseconds"):
        if logical["isAdjustedToUTC"]:
            return T.TimestampType()
        if infer_ntz is not None:
            return T.TimestampNTZType() if infer_ntz else T.TimestampType()
    return None


def read_parquet_file(spark, contract: dict, uri: str, schema=None):
    from pyspark.sql import functions as F

    reader = spark.read if schema is None else spark.read.schema(schema)
    try:
        df = reader.parquet(clean_files.hadoop_path(uri))
    except Exception as e:  # Spark reports a corrupt footer as a JVM exception of varying class
        raise BadFile(f"unreadable Parquet: {str(e).splitlines()[0][:300]}") from None
    columns = df.columns
    wanted = [c["name"] for c in contract["columns"]] + control_columns(contract)
    as_text = [F.col(f"`{c}`").cast("string").alias(c) for c in columns]
    frame = df.select(
        *[(F.col(f"`{n}`").cast("string") if n in columns else F.lit(None).cast("string")).alias(n) for n in wanted],
        F.lit(uri).alias("_source_file"),
        F.lit(None).cast("bigint").alias("line"),
        # Increasing within the file (partition index in the high bits, splits in offset order).
        F.monotonically_increasing_id().alias("_seq"),
        F.to_json(F.struct(*as_text)).alias("_record"),
        F.lit(False).alias("_malformed"),
    )
    return frame, columns
