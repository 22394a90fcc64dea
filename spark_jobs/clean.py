"""Glue cleaning job: raw objects of one dataset -> typed, de-duplicated Parquet + quarantine.

Runs unchanged on AWS Glue (launched through Dagster Pipes) and on local Spark. Every input record ends
in exactly one place: the clean output, the quarantine (with the file and the rules it broke), or the
duplicates dropped in favour of a later version of the same key; `run` returns that accounting.

params:
  contract     the dataset's contract (lake_platform/contracts/<name>.yml) as a dict
  inputs       list of object URIs to read (local paths or s3:// URIs), all in contract.source.format
  output       location to write the clean version to (a fresh, unpublished folder)
  quarantine   location to write rejected records to (a fresh folder)
"""

from __future__ import annotations

from typing import Any

SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "bigint": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def read_raw(spark, contract: dict, inputs: list[str]):
    """All inputs as strings (plus the source file), so parsing failures are caught per record."""
    from pyspark.sql import functions as F

    fmt = contract["source"]["format"]
    if fmt == "csv":
        df = spark.read.option("header", True).option("inferSchema", False).csv(inputs)
    elif fmt == "parquet":
        df = spark.read.parquet(*inputs)
    else:
        raise ValueError(f"contract {contract['name']}: unsupported source format {fmt!r}")
    return df.withColumn("_source_file", F.input_file_name())


def typed_with_violations(df, contract: dict):
    """Cast every contract column to its type; collect the broken rules of each record in `_violations`."""
    from pyspark.sql import functions as F

    present = set(df.columns)
    missing = [c["name"] for c in contract["columns"] if c["name"] not in present]
    if missing:
        raise ValueError(
            f"contract {contract['name']}: input lacks declared column(s) {', '.join(missing)}"
        )
    checks = []
    typed = []
    for column in contract["columns"]:
        name, kind = column["name"], SPARK_TYPES[column["type"]]
        raw = F.col(f"`{name}`")
        value = F.trim(raw.cast("string")) if kind != "string" else raw
        value = F.when(value.isin("", "NA"), None).otherwise(value) if kind != "string" else value
        cast = value.cast(kind)
        typed.append(cast.alias(name))
        checks.append(F.when(value.isNotNull() & cast.isNull(), F.lit(f"{name}: not a valid {kind}")))
        if not column.get("nullable", True):
            checks.append(F.when(cast.isNull(), F.lit(f"{name}: required value is missing")))
    extra = [c for c in df.columns if c not in {col["name"] for col in contract["columns"]}]
    # Type violations are computed from the raw strings, in the same projection that types them.
    type_violations = F.filter(F.array(*checks), lambda x: x.isNotNull()).alias("_type_violations")
    out = df.select(*typed, *[F.col(f"`{c}`") for c in extra], type_violations)
    rules = [
        F.when(~F.coalesce(F.expr(c["check"]), F.lit(True)), F.lit(f"{c['name']}: violates {c['check']}"))
        for c in contract["columns"]
        if "check" in c
    ]
    # Rule checks run on the typed values; a failed cast already has its own violation.
    rule_violations = F.filter(F.array(*rules), lambda x: x.isNotNull())
    out = out.withColumn("_violations", F.concat(F.col("_type_violations"), rule_violations))
    return out.drop("_type_violations")


def deduplicate(df, contract: dict):
    """Keep one record per primary key: the latest by the contract's order column, else the last file."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = contract.get("order_by")
    ordering = [F.col(order).desc_nulls_last()] if order and order in df.columns else []
    ordering.append(F.col("_source_file").desc())
    window = Window.partitionBy(*contract["primary_key"]).orderBy(*ordering)
    return df.withColumn("_rank", F.row_number().over(window))


def run(spark, params: dict[str, Any]) -> dict[str, Any]:
    from pyspark.sql import functions as F

    contract = params["contract"]
    raw = read_raw(spark, contract, params["inputs"])
    checked = typed_with_violations(raw, contract).cache()
    rows_in = checked.count()

    bad = checked.filter(F.size("_violations") > 0)
    quarantine = bad.select(
        F.col("_source_file").alias("source_file"),
        F.array_join("_violations", "; ").alias("reason"),
        F.to_json(F.struct(*[F.col(c["name"]).cast("string") for c in contract["columns"]])).alias("record"),
    )
    quarantine.write.mode("overwrite").parquet(params["quarantine"])
    quarantined = spark.read.parquet(params["quarantine"]).count()

    ranked = deduplicate(checked.filter(F.size("_violations") == 0), contract)
    clean = ranked.filter("_rank = 1").select(
        *[F.col(c["name"]) for c in contract["columns"]],
        *[F.expr(d["expr"]).cast(SPARK_TYPES[d["type"]]).alias(d["name"]) for d in contract.get("derived", [])],
    )
    clean.write.mode("overwrite").parquet(params["output"])
    written = spark.read.parquet(params["output"])
    rows_clean = written.count()
    duplicates = ranked.filter("_rank > 1").count()
    reasons = {
        r["reason"]: r["count"]
        for r in spark.read.parquet(params["quarantine"]).groupBy("reason").count().limit(20).collect()
    }
    checked.unpersist()
    return {
        "rows_in": rows_in,
        "rows_clean": rows_clean,
        "rows_quarantined": quarantined,
        "duplicates_dropped": duplicates,
        "quarantine_reasons": reasons,
        "input_files": len(params["inputs"]),
        "schema": [[f.name, f.dataType.simpleString()] for f in written.schema.fields],
    }


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
