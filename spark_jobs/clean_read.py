"""Reading a dataset's raw objects file by file, so a bad file is rejected alone and CSV lines keep their number.

Every accepted file becomes rows of one frame of strings: the declared columns, the DMS control columns
(`Op`, the commit timestamp) when present, and
  _source_file  the input URI as given
  line          the physical line number in a CSV file (1 is the header); null for Parquet
  _seq          the record's position within its file (the tie-break between equal commit times)
  _record       the record as delivered: the CSV line, or the Parquet row as JSON
  _malformed    the CSV line's fields do not match its header
Ships to Glue beside clean.py: pyspark and the standard library only.
"""

from __future__ import annotations

import clean_files

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
        reason = clean_files.check_parquet(uri)
        if reason:
            raise BadFile(reason)
        return read_parquet_file(spark, contract, uri)
    raise ValueError(f"contract {contract['name']}: unsupported source format {fmt!r}")


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


def read_parquet_file(spark, contract: dict, uri: str):
    from pyspark.sql import functions as F

    try:
        df = spark.read.parquet(clean_files.hadoop_path(uri))
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
