"""Reading a dataset's raw objects file by file, so a bad file is rejected alone and CSV lines keep their number.

Every accepted file becomes rows of one frame of strings: the declared columns, the DMS control columns
(`Op`, the commit timestamp) when present, and
  _source_file  the input URI as given
  line          the physical line a CSV record starts on (1 is the header); null for Parquet
  _arrival      the file's position in the job's `inputs`, which are in arrival order
  _seq          the record's position within its file
  _record       the record as delivered: the CSV record's text, or the Parquet row as JSON
  _malformed    why the CSV record cannot be read (bad quoting, a field count unlike the header's); null if fine
A CSV file is parsed in one Spark task per file by `clean_files.csv_records` (RFC 4180: quoted fields may span
lines; lines end with \n, \r\n or \r), so records, not lines, are counted.
Ships to Glue beside clean.py: pyspark and the standard library; pyarrow, when importable, reads Parquet
schemas without a Spark job per file (Glue 4.0 provides pyarrow 10.0.0, aws/aws-sdk-pandas#1849; without
pyarrow, Spark infers each schema as before).
"""

from __future__ import annotations

import json

import clean_files

WHOLE_FILE = "whole file: "  # the reason prefix of the quarantine row that stands for a file rejected whole
OP = "Op"  # DMS's change column (I/U/D); absent from full-load files written without IncludeOpForFullLoad
META = ["_source_file", "line", "_arrival", "_seq", "_record", "_malformed"]


def control_columns(contract: dict) -> list[str]:
    """Columns read besides the declared ones: DMS's `Op`, and `order_by` unless it is declared itself."""
    declared = {c["name"] for c in contract["columns"]}
    order = contract.get("order_by")
    return [OP] + ([order] if order and order not in declared else [])


def frame_schema(contract: dict) -> str:
    names = [c["name"] for c in contract["columns"]] + control_columns(contract)
    return ", ".join(
        [f"`{n}` string" for n in names]
        + ["_source_file string", "line bigint", "_arrival int", "_seq bigint", "_record string", "_malformed string"]
    )


def read_inputs(spark, contract: dict, inputs: list[str], arrivals: list[int] | None = None):
    """(frame of all accepted files, [{file, reason}] of rejected files, {file: [columns not in the contract]}).

    `arrivals` is each input's position among all of the dataset's files in arrival order, when only some are
    read (default: the inputs' own positions)."""
    frames, rejected, extras, csv_files = [], [], {}, []
    declared = [c["name"] for c in contract["columns"]]
    known = set(declared) | set(control_columns(contract))
    is_csv = contract["source"]["format"] == "csv"
    for arrival, uri in zip(arrivals if arrivals is not None else range(len(inputs)), inputs):
        try:
            # CSV files are checked here and parsed together below; a Parquet file is read as itself.
            frame, columns = (None, checked_csv_header(uri)) if is_csv else read_file(spark, contract, uri, arrival)
        except BadFile as e:
            rejected.append({"file": uri, "reason": str(e)})
            continue
        missing = [c for c in declared if c not in columns]
        if missing:
            rejected.append({"file": uri, "reason": lacks_columns(missing, columns)})
            continue
        extras[uri] = sorted(c for c in columns if c not in known)
        if is_csv:
            csv_files.append((uri, columns, arrival))
        else:
            frames.append(frame)
    if csv_files:
        frames.append(read_csv_files(spark, contract, csv_files))
    if not frames:
        return spark.createDataFrame([], frame_schema(contract)), rejected, extras
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out, rejected, extras


def lacks_columns(missing: list[str], columns: list[str]) -> str:
    """Why a file lacks declared columns, naming a header column that differs only by spaces or case."""
    reason = f"lacks declared column(s) {', '.join(missing)}"
    near = []
    for name in missing:
        for c in columns:
            if c.strip() == name:
                near.append(f"{c!r} has surrounding spaces")
            elif c.strip().lower() == name.lower():
                near.append(f"{c!r} differs from {name!r} in case")
    if near:
        reason += f" (the header's {'; '.join(near)}: column names are matched exactly)"
    return reason


class BadFile(ValueError):
    """The whole file is unusable; the message says why."""


def read_file(spark, contract: dict, uri: str, arrival: int = 0):
    """(frame, the file's column names) or BadFile."""
    reason = clean_files.unreadable_name(uri)
    if reason:
        raise BadFile(reason)
    fmt = contract["source"]["format"]
    if fmt == "csv":
        header = checked_csv_header(uri)
        return read_csv_files(spark, contract, [(uri, header, arrival)]), header
    if fmt == "parquet":
        reason, footer = clean_files.check_parquet(uri)
        if reason:
            raise BadFile(reason)
        return read_parquet_file(spark, contract, uri, footer_schema(spark, footer), arrival)
    raise ValueError(f"contract {contract['name']}: unsupported source format {fmt!r}")


def whole_file_quarantine(spark, rejected: list[dict]):
    """One quarantine row per file rejected whole: the file, no line, the reason after WHOLE_FILE, no record."""
    rows = [(r["file"], None, WHOLE_FILE + r["reason"], None) for r in rejected]
    schema = "source_file string, line bigint, reason string, record string"
    return spark.createDataFrame(rows, schema).coalesce(1)  # one small part file, not one per core


def checked_csv_header(uri: str) -> list[str]:
    """The header of a CSV file the driver has checked (UTF-8, not empty, a valid header), or BadFile."""
    reason = clean_files.unreadable_name(uri)
    if reason:
        raise BadFile(reason)
    reason, header = clean_files.check_csv(uri)
    if reason:
        raise BadFile(reason)
    if len(set(header)) != len(header):
        raise BadFile(f"header repeats a column name: {header}")
    return header


def read_csv_files(spark, contract: dict, files: list[tuple[str, list[str], int]]):
    """The records of the CSV files `(uri, header, arrival)`, each file parsed whole in one Spark task by
    clean_files.csv_records (the driver only checked it), all in one DataFrame.

    Spark's own CSV reader gives no line numbers, and splits a quoted value holding a line break into two
    lines; this parser keeps each record whole with the line it starts on. One DataFrame for all the files, not
    one per file joined by unions: Spark pushes the typing projection into every branch of a union, planning and
    compiling its generated code once per file (typing weather's 13 files took 2x as long that way, measured in
    one process). Each task reads its file itself (local path or S3 GET), as the driver's checks do.
    """
    from pyspark import cloudpickle

    # Shipped with the task (Glue and EMR executors import only what is installed or passed as py-files).
    cloudpickle.register_pickle_by_value(clean_files)
    wanted = [c["name"] for c in contract["columns"]] + control_columns(contract)
    tasks = []
    for uri, header, arrival in files:
        position = {name: i for i, name in enumerate(header)}
        tasks.append((uri, [position.get(n) for n in wanted], len(header), arrival))
    records = clean_files.csv_records
    text_of = clean_files.csv_text
    read_all = clean_files.read_all

    def rows(task):
        uri, picks, width, arrival = task
        first = True
        for line, record, fields, error in records(text_of(read_all(uri), uri)):
            if first:  # the header
                first = False
                continue
            if error is None and len(fields) != width:
                error = f"{len(fields)} field(s) where the header has {width}"
            values = [None] * len(picks) if error else [None if i is None else fields[i] for i in picks]
            malformed = f"malformed CSV record: {error}" if error else None
            yield (*values, uri, line, arrival, line, record, malformed)

    rdd = spark.sparkContext.parallelize(tasks, len(tasks)).flatMap(rows)  # one task per file
    return spark.createDataFrame(rdd, frame_schema(contract))


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


def read_parquet_file(spark, contract: dict, uri: str, schema=None, arrival: int = 0):
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
        F.lit(arrival).alias("_arrival"),
        # Increasing within the file (partition index in the high bits, splits in offset order).
        F.monotonically_increasing_id().alias("_seq"),
        F.to_json(F.struct(*as_text)).alias("_record"),
        F.lit(None).cast("string").alias("_malformed"),
    )
    return frame, columns
