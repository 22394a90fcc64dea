"""Glue cleaning job: raw objects of one dataset -> typed, merged Parquet + quarantine.

Runs unchanged on AWS Glue (launched through Dagster Pipes) and on local Spark. Nothing is lost:

Files. Each input file is checked whole first (clean_files.py): an empty file, one that is not the declared
format, not UTF-8, truncated, compressed junk, lacking a declared column, or with a declared column none of
whose values fits the declared type (a retyped column), is rejected whole and listed in `quarantined_files`
with the reason and gets one quarantine row (`line` and `record` NULL, reason prefixed `whole file: `); its raw
copy stays in the raw zone. Its records are not counted below. The other files go on:
  input_files = files_read + len(quarantined_files)

Records of the files read. Every record ends in exactly one place:
  rows_in = rows_clean + rows_quarantined + duplicates_dropped
where rows_quarantined are records that broke the contract (written to the quarantine with the file, the CSV
line number, the rules broken and the record as delivered), and duplicates_dropped are the valid records
that are not the final state of their key: versions superseded by a later one (by the contract's `order_by`,
DMS's commit timestamp), the DMS delete markers (`Op` = D) themselves, and the versions a delete removed.
`deletes_applied` counts keys removed by a delete; `deletes_for_unknown_keys` counts deletes for a key with
no earlier insert/update in the batch (not an error). `columns_added` lists input columns the contract does
not declare; they are ignored.

params:
  contract     the dataset's contract (lake_platform/contracts/<name>.yml) as a dict
  inputs       list of object URIs to read (local paths or s3:// URIs), all in contract.source.format
  output       the clean table: an Iceberg table (lake_tables.py: {"iceberg": identifier, "partition_column",
               "replace": {"first", "last"}}), or a fresh folder (the job's own tests)
  quarantine   the quarantine table, the same way
  expected_schema  optional [[name, type], ...]: the contract's columns. With an Iceberg output the clean rows
               are committed only when the records balance, the schema is this one, and not every input file
               was rejected whole while the table exists (that would empty it); otherwise `committed` is false
               and `held_because` says why. The quarantine is always committed: it says what went wrong.
  raw_index    optional: the dataset's raw index table (raw_index.py). A daily run then reads only the files
               not indexed yet, those of its days, and those with undated or rejected records (the others are
               counted in `files_skipped`, not in `input_files`), and updates the index after its commit.
  rebuild      optional bool: read every input file whatever the index says, and rewrite their entries.
  partition    optional {"column", "first", "last"}: the dataset is daily-partitioned by `column` (a date) and
               this run is responsible for the days first..last. Only records of those days, plus records
               whose day cannot be told (bad date parts), are processed and counted; the clean table and the
               quarantine are written Hive-style, `<column>=<day>/`, undated records under Spark's NULL
               partition. Every version of a key carries the same day (a flight's date never changes), so the
               CDC merge of a range is the merge of those keys.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from typing import Any

import raw_index

from clean_merge import is_delete, is_final, merge_counts, rank_versions
from clean_read import META, OP, WHOLE_FILE, control_columns, read_inputs, whole_file_quarantine
from lake_tables import TABLE_PROPERTIES, day_filter, is_iceberg, read_back, write_table

SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "bigint": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
DEFAULT_NULL_VALUES = [""]
# The literals each type accepts (after surrounding spaces are trimmed); anything else is quarantined, never
# coerced: Spark's own cast would read "4.2" as the int 4, "2013" as the date 2013-01-01 and "1e400" as Infinity.
INT_LITERAL = r"^[+-]?[0-9]+$"
DECIMAL_LITERAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
NONFINITE = ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")
BOOLEAN_LITERALS = ("true", "false")
DATE_LITERAL = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIMESTAMP_LITERAL = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$"
# date and timestamp: (the literal's pattern, why a text of another shape fails, why one off the calendar
# fails: 2013-02-30, year 0000)
CALENDAR_LITERALS = {
    "date": (DATE_LITERAL, "YYYY-MM-DD is required", "not a date of the calendar"),
    "timestamp": (TIMESTAMP_LITERAL, "YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH:MM] is required", "not a time of the calendar"),
}


def null_markers(contract: dict, column: dict) -> list[str]:
    """The texts that mean NULL in a column of a text (CSV) source: the column's, else the dataset's, else ""."""
    if contract["source"].get("format") != "csv":
        return []  # Parquet carries real nulls; its strings are data
    return column.get("null_values", contract.get("null_values", DEFAULT_NULL_VALUES))


def is_literal(value, kind: str):
    """Whether a trimmed text has the shape of a literal of the type (its pattern; for a boolean, true/false)."""
    from pyspark.sql import functions as F

    if kind in ("int", "bigint"):
        return value.rlike(INT_LITERAL)
    if kind == "double":
        return value.rlike(DECIMAL_LITERAL)
    if kind == "boolean":
        return F.lower(value).isin(*BOOLEAN_LITERALS)
    if kind in CALENDAR_LITERALS:
        return value.rlike(CALENDAR_LITERALS[kind][0])
    raise ValueError(f"no conversion for type {kind!r}")


def converted(value, kind: str, allow_nonfinite: bool, literal):
    """(the exact typed value or NULL, [(condition, why the value does not convert)]) of a trimmed text.

    A value converts only when the result is the value delivered: integer literals within the type's range,
    decimal numbers that neither overflow to Infinity nor underflow to 0, ISO dates and timestamps of the
    calendar, true/false. The conditions are NULL-safe: a NULL value breaks no conversion rule. `literal` is
    `is_literal(value, kind)`, computed once by the caller (typed_with_violations).
    """
    from pyspark.sql import functions as F

    if kind in ("int", "bigint"):
        cast = F.when(literal, value.cast(kind))
        return cast, [(~literal, "an integer literal is required"), (literal & cast.isNull(), f"out of range for {kind}")]
    if kind == "double":
        word = F.lower(value)
        special = word.isin(*NONFINITE)
        parsed = value.cast("double")
        mantissa = F.regexp_extract(value, "^[^eE]*", 0)
        overflow = literal & (F.isnan(parsed) | (F.abs(parsed) == float("inf")))
        underflow = literal & (parsed == 0) & mantissa.rlike("[1-9]")
        fails = [
            (~literal & ~special, "a decimal number is required"),
            (overflow, "out of range: overflows to Infinity"),
            (underflow, "underflows to 0"),
        ]
        exact = F.when(literal & ~overflow & ~underflow, parsed)
        if allow_nonfinite:
            nonfinite = F.when(word == "nan", F.lit(float("nan"))).when(word.startswith("-"), F.lit(float("-inf")))
            cast = exact.when(special, nonfinite.otherwise(F.lit(float("inf"))))
        else:
            cast = exact
            fails.append((special, "NaN and Infinity need allow_nonfinite: true"))
        return cast, fails
    if kind == "boolean":
        return F.when(literal, F.lower(value) == "true"), [(~literal, "true or false is required")]
    if kind in CALENDAR_LITERALS:
        _, shape, off_calendar = CALENDAR_LITERALS[kind]
        cast = F.when(literal & (F.substring(value, 1, 4) != "0000"), value.cast(kind))
        return cast, [(~literal, shape), (literal & cast.isNull(), off_calendar)]
    raise ValueError(f"no conversion for type {kind!r}")


def text_of(contract: dict, column: dict):
    """The text a declared column's value is checked and converted from: trimmed of surrounding spaces (but a
    string's), NULL for the column's null markers."""
    from pyspark.sql import functions as F

    value = F.col(f"`{column['name']}`")
    if column["type"] != "string":
        value = F.trim(value)  # surrounding spaces only
    markers = null_markers(contract, column)
    if markers:
        value = F.when(value.isin(*markers), F.lit(None).cast("string")).otherwise(value)
    return value


def typed_column(column: dict, value, literal):
    """(the typed value, the type and nullability violations) of one declared column of strings: `value` is its
    `text_of`, `literal` `is_literal(value, type)` (None for a string), both computed once by the caller."""
    from pyspark.sql import functions as F

    name, kind = column["name"], SPARK_TYPES[column["type"]]
    checks = []
    if kind == "string":
        cast = value
    else:
        cast, fails = converted(value, kind, column.get("allow_nonfinite", False), literal)
        checks = [F.when(value.isNotNull() & broken, F.lit(f"{name}: not a valid {kind} ({why})")) for broken, why in fails]
    if not column.get("nullable", True):
        checks.append(F.when(value.isNull(), F.lit(f"{name}: required value is missing")))
    return cast.alias(name), checks


def typed_with_violations(df, contract: dict):
    """Type every declared column; collect the broken rules of each record in `_violations`.

    A delete marker (Op = D) carries only its key for sure, so only the key's columns are checked on it.
    """
    from pyspark.sql import functions as F

    keys = set(contract["primary_key"])
    none = F.lit(None).cast("string")
    # In stages, so that each column's text and the test of its literal's shape (a regular expression) are
    # computed once per record, not once per rule that uses them (Spark does not merge projections that would
    # repeat an expression): the full year's typing took 32 s on 2 cores in one projection, measured.
    columns = contract["columns"]
    df = df.select("*", *[text_of(contract, c).alias(f"_text{i}") for i, c in enumerate(columns)])
    df = df.select("*", *[is_literal(F.col(f"_text{i}"), SPARK_TYPES[c["type"]]).alias(f"_literal{i}")
                          for i, c in enumerate(columns) if c["type"] != "string"])
    typed, key_checks, other_checks = [], [none], [none]
    for i, column in enumerate(columns):
        literal = F.col(f"_literal{i}") if column["type"] != "string" else None
        cast, checks = typed_column(column, F.col(f"_text{i}"), literal)
        typed.append(cast)
        (key_checks if column["name"] in keys else other_checks).extend(checks)
    key_checks.append(F.when(~F.coalesce(F.col(OP), F.lit("I")).isin("I", "U", "D"), F.lit(f"{OP}: not one of I, U, D")))
    out = df.select(
        *typed, *[F.col(f"`{c}`") for c in control_columns(contract)], *META,
        F.array(*key_checks).alias("_key_v"), F.array(*other_checks).alias("_other_v"),
    )
    # Rule checks run on the typed values; a failed cast already has its own violation.
    rules = {True: [none], False: [none]}
    for c in contract["columns"]:
        if "check" in c:
            rule = F.when(~F.coalesce(F.expr(c["check"]), F.lit(True)), F.lit(f"{c['name']}: violates {c['check']}"))
            rules[c["name"] in keys].append(rule)
    on_key = F.concat("_key_v", F.array(*rules[True]))
    on_rest = F.when(is_delete(), F.array(none)).otherwise(F.concat("_other_v", F.array(*rules[False])))
    violations = F.when(F.col("_malformed").isNotNull(), F.array(F.col("_malformed"))).otherwise(
        F.filter(F.concat(on_key, on_rest), lambda x: x.isNotNull())
    )
    return out.withColumn("_violations", violations).drop("_key_v", "_other_v")


def retyped_files(checked, contract: dict) -> tuple[list[dict], dict[str, int]]:
    """Files with a declared column none of whose values fits its type, and the record count of each file."""
    from pyspark.sql import functions as F

    typed = [(c["name"], SPARK_TYPES[c["type"]]) for c in contract["columns"] if c["type"] != "string"]
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, (name, kind) in enumerate(typed):
        prefix = f"{name}: not a valid {kind} ("
        failed = F.col("_malformed").isNull() & F.exists("_violations", lambda v: v.startswith(prefix))
        aggs += [F.count(F.when(failed, 1)).alias(f"bad{i}"), F.count(f"`{name}`").alias(f"good{i}")]
    rejected, rows = [], {}
    for stat in checked.groupBy("_source_file").agg(*aggs).collect():
        rows[stat["_source_file"]] = stat["_rows"]
        retyped = [f"{n} ({k})" for i, (n, k) in enumerate(typed) if stat[f"bad{i}"] and not stat[f"good{i}"]]
        if retyped:
            reason = f"no value of column(s) {', '.join(retyped)} fits the declared type: retyped upstream?"
            rejected.append({"file": stat["_source_file"], "reason": reason})
    return rejected, rows


def run(spark, params: dict[str, Any]) -> dict[str, Any]:
    from pyspark.sql import functions as F

    # Dates and times are written as they are (proleptic Gregorian, as DuckDB, Athena and Iceberg read them):
    # Spark's default refuses to write a day before 1582-10-15 rather than choose a calendar.
    for mode in ("datetimeRebaseModeInWrite", "int96RebaseModeInWrite", "datetimeRebaseModeInRead"):
        spark.conf.set(f"spark.sql.parquet.{mode}", "CORRECTED")

    contract = params["contract"]
    part = params.get("partition")
    inputs, index = params["inputs"], load_index(spark, params)
    read_all = index is None or params.get("rebuild")
    chosen = list(range(len(inputs))) if read_all else raw_index.choose(inputs, index, range_days(part))
    while True:
        checked, rejected, extras, rows_per_file, dropped, records = read_checked(spark, contract, inputs, chosen, part)
        wider = moved_files(spark, params, index, records, chosen)
        if not wider:
            break
        print(f"clean/{contract['name']}: keys of this run sit on other days in the clean table: "
              f"reading {len(wider)} more raw file(s)", file=sys.stderr)
        checked.unpersist()
        chosen = sorted(set(chosen) | set(wider))
    # Every valid version of every key read is ranked, whatever its day: a key's final version decides its day,
    # so a record superseded by a version dated on another day is dropped here, not kept as this day's state.
    # Only what the ranking and the clean rows need: the record's text and the checks stay behind (the sort by
    # key would otherwise carry every record's text; the full year's ranking took 31 s that way, measured).
    valid = records.filter(F.size("_violations") == 0).select(
        *[F.col(f"`{c['name']}`") for c in contract["columns"]], *[F.col(f"`{c}`") for c in control_columns(contract)],
        "_arrival", "_seq", *(["_partition"] if part else []),
    )
    kept = records.filter(in_partition_range(part)) if part else records
    for r in rejected:  # in the Glue driver log too, not only in the metadata
        print(f"clean/{contract['name']}: quarantined file {r['file']}: {r['reason']}", file=sys.stderr)

    # A file rejected whole gets one row too, so the quarantine lists every rejected input; its records were
    # never read, so it counts in files_quarantined, not in rows_quarantined (the record accounting).
    quarantine = kept.filter(F.size("_violations") > 0).select(
        "_source_file", "line", F.array_join("_violations", "; ").alias("reason"), F.col("_record").alias("record"),
        *([F.col("_partition").alias(part["column"])] if part else []),
    ).withColumnRenamed("_source_file", "source_file")
    whole_files = whole_file_quarantine(spark, rejected)
    if part:
        whole_files = whole_files.withColumn(part["column"], F.lit(None).cast("date"))
    quarantine = quarantine.unionByName(whole_files)
    quarantine_snapshot = write_table(quarantine, params["quarantine"], part and part["column"])
    written_quarantine = read_back(spark, params["quarantine"], quarantine, quarantine_snapshot)
    quarantined_records = written_quarantine.filter(~F.col("reason").startswith(WHOLE_FILE))

    ranked = rank_versions(valid, contract)
    # The run accounts for the records of its days (and the undated ones), each ranked against all versions.
    ranked = (ranked.filter(in_partition_range(part)) if part else ranked).cache()
    clean = ranked.filter(is_final()).select(
        *[F.col(c["name"]) for c in contract["columns"]],
        *[F.expr(d["expr"]).cast(SPARK_TYPES[d["type"]]).alias(d["name"]) for d in contract.get("derived", [])],
    )
    counts = merge_counts(ranked)
    reasons = {r["reason"]: r["count"] for r in quarantined_records.groupBy("reason").count().limit(20).collect()}
    meta = {
        "rows_in": kept.count() if part else sum(n for f, n in rows_per_file.items() if f not in dropped),
        "rows_quarantined": quarantined_records.count(),
        **counts,
        "quarantine_reasons": reasons,
        "input_files": len(chosen),
        "files_skipped": len(inputs) - len(chosen),
        "files_read": len([f for f in extras if f not in dropped]),
        "quarantined_files": rejected,
        "files_quarantined": len(rejected),
        "columns_added": sorted({c for f, cols in extras.items() if f not in dropped for c in cols}),
        "quarantine_snapshot_id": quarantine_snapshot,
    }
    output = params["output"]
    held = held_because(spark, params, meta, clean) if is_iceberg(output) else None
    if held:
        print(f"clean/{contract['name']}: the clean rows are not committed: {held}", file=sys.stderr)
        written, snapshot = clean, None
    else:
        snapshot = write_table(clean, output, part and part["column"])
        written = read_back(spark, output, clean, snapshot)
    meta.update({
        "rows_clean": written.count(),
        "schema": [[f.name, f.dataType.simpleString()] for f in written.schema.fields],
        "committed": not held,
        "held_because": held,
        "snapshot_id": snapshot,
    })
    if index is not None:
        entries = raw_index.changed(raw_index.entries(records, rejected, contract), index)
        meta["raw_index_updated"] = raw_index.save(spark, params["raw_index"], entries, TABLE_PROPERTIES, index)
    ranked.unpersist()
    checked.unpersist()
    return meta


def range_days(part: dict | None) -> set[str]:
    """The ISO days first..last of the run's partition range."""
    if not part:
        return set()
    first, last = date.fromisoformat(part["first"]), date.fromisoformat(part["last"])
    return {(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)}


def load_index(spark, params: dict) -> dict | None:
    """The dataset's raw index (raw_index.py) of a daily dataset with an index table named ({} when it is empty);
    None: no index, every file is read. With `rebuild` every file is read all the same, and the entries that
    differ are rewritten."""
    if not params.get("partition") or not params.get("raw_index"):
        return None
    return raw_index.load(spark, params["raw_index"], params["contract"])


def read_checked(spark, contract: dict, inputs: list[str], chosen: list[int], part: dict | None):
    """Read and check the chosen inputs: (checked records (cached), rejected files, extra columns per file,
    records per file, files rejected for a retyped column, the records of the files kept, with `_partition`
    for a daily dataset)."""
    from pyspark.sql import functions as F

    frame, rejected, extras = read_inputs(spark, contract, [inputs[i] for i in chosen], chosen)
    checked = typed_with_violations(frame, contract).cache()
    retyped, rows_per_file = retyped_files(checked, contract)
    rejected += retyped
    dropped = [r["file"] for r in retyped]
    kept = checked.filter(~F.col("_source_file").isin(dropped)) if dropped else checked
    return checked, rejected, extras, rows_per_file, dropped, with_partition(kept, contract, part) if part else kept


def moved_files(spark, params: dict, index: dict | None, kept, chosen: list[int]) -> list[int]:
    """Positions of unread indexed files of the days on which the clean table holds a key this run read on one
    of its days: the key moved (a flight's date changed), and the change that moved it may be in a file of the
    other day, which the ranking needs. Empty when nothing moved (always when every file is read)."""
    from pyspark.sql import functions as F

    if index is None or len(chosen) == len(params["inputs"]):
        return []
    if not spark.catalog.tableExists(params["output"]["iceberg"]):
        return []
    part, keys = params["partition"], params["contract"]["primary_key"]
    ours = kept.filter((F.size("_violations") == 0) & in_partition_range(part) & F.col("_partition").isNotNull())
    ours = ours.select(*keys).distinct()
    column = part["column"]
    table = spark.table(params["output"]["iceberg"]).filter(~day_filter(column, part["first"], part["last"]))
    if len(keys) == 1:  # the key range of the run prunes the table's files by their column statistics
        bounds = ours.agg(F.min(keys[0]).alias("lo"), F.max(keys[0]).alias("hi")).collect()[0]
        if bounds["lo"] is None:
            return []
        table = table.filter(F.col(keys[0]).between(bounds["lo"], bounds["hi"]))
    days = {r[0].isoformat() for r in table.join(F.broadcast(ours), keys, "left_semi").select(column).distinct().collect()}
    read = set(chosen)
    return [i for i in raw_index.files_of_days(params["inputs"], index, days) if i not in read]


def held_because(spark, params: dict, meta: dict, clean) -> str | None:
    """Why the clean rows must not be committed to the Iceberg table, or None (see `expected_schema`)."""
    planned = clean.count()
    balance = planned + meta["rows_quarantined"] + meta["duplicates_dropped"]
    if meta["rows_in"] != balance or meta["input_files"] != meta["files_read"] + len(meta["quarantined_files"]):
        return f"the records do not balance: {meta['rows_in']} in, {balance} out"
    expected = params.get("expected_schema")
    actual = [[f.name, f.dataType.simpleString()] for f in clean.schema.fields]
    if expected is not None and actual != [list(c) for c in expected]:
        return f"the schema {actual} is not the contract's {expected}"
    if meta["input_files"] and not meta["files_read"] and spark.catalog.tableExists(params["output"]["iceberg"]):
        return "every input file was rejected whole: the table keeps its current snapshot"
    return None


def with_partition(records, contract: dict, part: dict):
    """The records with `_partition`, the day each one belongs to (null when it cannot be computed)."""
    from pyspark.sql import functions as F

    derived = {d["name"]: d["expr"] for d in contract.get("derived", [])}
    day = F.expr(derived[part["column"]]) if part["column"] in derived else F.col(part["column"])
    return records.withColumn("_partition", day.cast("date"))


def in_partition_range(part: dict):
    """Records of days first..last, and those whose day cannot be computed (quarantined in every run)."""
    from pyspark.sql import functions as F

    in_range = F.col("_partition").between(F.lit(part["first"]).cast("date"), F.lit(part["last"]).cast("date"))
    return in_range | F.col("_partition").isNull()


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
