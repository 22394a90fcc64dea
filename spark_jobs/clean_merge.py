"""Merging the versions of each primary key: de-duplication, and the DMS CDC merge (I/U/D in commit order).

Ships to Glue beside clean.py: pyspark only.
"""

from __future__ import annotations

from clean_read import OP


def rank_versions(valid, contract: dict):
    """Number each key's valid records newest first (`_rank` 1 is the key's final state).

    Versions are in a total order that follows arrival: by the contract's `order_by` (DMS's commit
    timestamp) when it declares one, so late and out-of-order CDC files merge correctly whatever their
    arrival; then by arrival (`_arrival`, the file's position in the job's inputs, which the caller lists in
    landing order); then by position within the file. Never by a file's name or content hash.
    `_earlier_rows` counts the key's inserts/updates committed before the record (0 for a delete means the
    delete is for a key never seen).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = contract.get("order_by")
    commit = F.col(f"`{order}`").cast("timestamp") if order else F.lit(None).cast("timestamp")
    by_key = Window.partitionBy(*contract["primary_key"]).orderBy(
        F.col("_commit").desc_nulls_last(), F.col("_arrival").desc(), F.col("_seq").desc()
    )
    earlier = by_key.rowsBetween(1, Window.unboundedFollowing)
    return (
        valid.withColumn("_commit", commit)
        .withColumn("_rank", F.row_number().over(by_key))
        .withColumn("_earlier_rows", F.count(F.when(~is_delete(), 1)).over(earlier))
    )


def is_delete():
    from pyspark.sql import functions as F

    return F.coalesce(F.col(OP) == "D", F.lit(False))


def is_final():
    """The record that is the key's state in the clean table (a final delete removes the key)."""
    from pyspark.sql import functions as F

    return (F.col("_rank") == 1) & ~is_delete()


def merge_counts(ranked) -> dict:
    """One pass over the ranked records: what was dropped and why."""
    from pyspark.sql import functions as F

    row = ranked.agg(
        F.count(F.when(~is_final(), 1)).alias("duplicates_dropped"),
        F.count(F.when(is_delete() & (F.col("_rank") == 1) & (F.col("_earlier_rows") > 0), 1)).alias("deletes_applied"),
        F.count(F.when(is_delete() & (F.col("_earlier_rows") == 0), 1)).alias("deletes_for_unknown_keys"),
    ).collect()[0]
    return row.asDict()
