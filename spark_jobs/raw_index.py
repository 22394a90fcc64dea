"""Which days each raw file holds, so that a daily clean run reads the raw files of its days and no others.

The clean job of a daily dataset replaces the days of its run with the final version of every key of those
days (clean.py). Today's CDC file holds today's flights (and the odd change to a recent one); the full load
holds the year it was taken. A run for one new day therefore needs the files holding a record of that day,
not every file the lake ever received: the raw zone grows with the age of the lake, a day's files do not.

The index is one Iceberg table per dataset (`<catalog>.<prefix>_raw_index.<dataset>`), one row per raw file:

  file       the raw object's URI (raw copies are immutable: a landing object delivered again with new content
             is a new raw object, so what a URI holds never changes)
  contract   a fingerprint of what decides a record's day (the contract's columns, checks and partition): an
             entry written under another contract is not trusted, the file is read again
  days       the days of the file's records, and the days of every other version of their keys that the
             indexing run saw (a flight whose date changed belongs to the runs of both days)
  undated    the file has records whose day cannot be told (quarantined by every run: the file is always read)
  rejected   the file was rejected whole (listed in every run's quarantine: the file is always read)

A run reads: every file not in the index (and indexes it), every file marked undated or rejected, and every
file one of whose days is in the run's range. What it reads gives the same clean rows and the same
accounting as reading every file, because every version of a key of the range lives in a file of the range's
days (the index's `days` carries moved keys to both days) -- with one exception the job widens for: a key
read in this run whose current clean row sits on a day outside the range was moved by a change this run may
not hold; the files of that day are read too. The index is a cache: it is written after the clean commit, a
lost or failed write (a crash, a concurrent run) only makes a later run read more files, never different
rows; `rebuild` reads every file whatever the index says. Only entries that change are written: a new day's
files are appended (no rewrite of the index's data files), a changed entry is upserted, a rerun writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import sys

import lake_tables

INDEX_COLUMNS = "file string, contract string, days array<date>, undated boolean, rejected boolean"


def fingerprint(contract: dict) -> str:
    """What decides the day of a file's records, and whether the file is rejected whole, as a short digest."""
    relevant = {k: contract.get(k) for k in ("columns", "derived", "partition", "source", "null_values", "primary_key")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def load(spark, identifier: str, contract: dict) -> dict[str, dict]:
    """{file: {"days": set of ISO days, "undated": bool, "rejected": bool, "trusted": bool}} of every entry; an
    entry written under another contract is not trusted (its file is read again and its entry rewritten). Two
    rows of one file (two runs appended it at once) are merged: their days joined, a flag set if either sets
    it -- a superset of days only makes a run read more."""
    if not spark.catalog.tableExists(identifier):
        return {}
    mine = fingerprint(contract)
    try:
        rows = spark.table(identifier).collect()
    except Exception as error:  # noqa: BLE001 -- an unreadable index means reading every file, not failing
        print(f"raw index {identifier}: not read ({type(error).__name__}: {error}); every file is read",
              file=sys.stderr)
        return {}
    entries: dict[str, dict] = {}
    for row in rows:
        entry = entries.setdefault(row["file"], {"days": set(), "undated": False, "rejected": False, "trusted": True})
        entry["days"] |= {d.isoformat() for d in row["days"] or []}
        entry["undated"] |= bool(row["undated"])
        entry["rejected"] |= bool(row["rejected"])
        entry["trusted"] &= row["contract"] == mine
    return entries


def needed(entry: dict | None, days: set[str]) -> bool:
    """Whether a run for `days` must read the file of this index entry (None: not indexed)."""
    return entry is None or not entry["trusted"] or entry["undated"] or entry["rejected"] or bool(entry["days"] & days)


def choose(inputs: list[str], index: dict[str, dict], days: set[str]) -> list[int]:
    """The positions in `inputs` (arrival order) of the files a run for `days` reads."""
    return [i for i, uri in enumerate(inputs) if needed(index.get(uri), days)]


def files_of_days(inputs: list[str], index: dict[str, dict], days: set[str]) -> list[int]:
    """The positions of the indexed files holding a record of one of `days`."""
    return [i for i, uri in enumerate(inputs) if uri in index and index[uri]["trusted"] and index[uri]["days"] & days]


def entries(read, rejected: list[dict], contract: dict) -> list[tuple]:
    """The index rows of the files a run read, from its typed records (`_source_file`, `_partition`, the key).

    A file's days are its records' days plus the days of the other versions of their keys among the records
    read, so that a key whose day changed is read by the runs of every day it was on.
    """
    from pyspark.sql import functions as F

    keys = contract["primary_key"]
    valid = read.filter(F.size("_violations") == 0).filter(F.col("_partition").isNotNull())
    key_days = valid.groupBy(*keys).agg(F.collect_set("_partition").alias("_key_days"))
    moved = valid.select("_source_file", *keys).join(key_days.filter(F.size("_key_days") > 1), keys)
    per_file = (
        read.groupBy("_source_file")
        .agg(
            F.collect_set("_partition").alias("days"),
            F.max(F.col("_partition").isNull().cast("int")).alias("undated"),
        )
    )
    moved_days = moved.groupBy("_source_file").agg(F.flatten(F.collect_set("_key_days")).alias("moved"))
    rows = (
        per_file.join(moved_days, "_source_file", "left")
        .select(
            "_source_file",
            F.array_distinct(F.concat("days", F.coalesce("moved", F.array().cast("array<date>")))).alias("days"),
            (F.col("undated") == 1).alias("undated"),
        )
        .collect()
    )
    mine = fingerprint(contract)
    out = [(r["_source_file"], mine, sorted(r["days"]), r["undated"], False) for r in rows]
    seen = {r[0] for r in out}
    out += [(r["file"], mine, [], False, True) for r in rejected if r["file"] not in seen]
    return out


def changed(rows: list[tuple], index: dict[str, dict]) -> list[tuple]:
    """The rows of `entries` that the index does not hold already, as they are (a rerun of a day rewrites nothing)."""
    def same(row, entry) -> bool:
        return (entry is not None and entry["trusted"] and entry["days"] == {d.isoformat() for d in row[2]}
                and (entry["undated"], entry["rejected"]) == (row[3], row[4]))

    return [row for row in rows if not same(row, index.get(row[0]))]


def save(spark, identifier: str, rows: list[tuple], properties: dict, index: dict[str, dict]) -> bool:
    """Write the rows in one commit: appended when none of their files has an entry in `index` (what `load`
    returned: a new day's files), else upserted by file (MERGE INTO). An empty `index` (a first run, or an
    index that could not be read) always upserts. False (and a line on stderr) when the commit failed: the
    index is a cache, and the files it misses are read by the next run."""
    if not rows:
        return True
    try:
        lake_tables.create_namespace(spark, identifier.rsplit(".", 1)[0])
        if not spark.catalog.tableExists(identifier):
            # Not `write.spark.accept-any-schema`: Spark 3.5 cannot resolve MERGE's `*` against a table that
            # accepts any schema (UNRESOLVED_COLUMN on the merge condition), and the index's schema is fixed.
            kept = {k: v for k, v in properties.items() if k != "write.spark.accept-any-schema"}
            props = ", ".join(f"'{k}' = '{v}'" for k, v in kept.items())
            spark.sql(f"create table if not exists {identifier} ({INDEX_COLUMNS}) using iceberg tblproperties ({props})")
        frame = spark.createDataFrame(rows, INDEX_COLUMNS)
        if index and not any(row[0] in index for row in rows):
            frame.coalesce(1).writeTo(identifier).append()
            return True
        view = f"raw_index_rows_{abs(hash(identifier))}"
        frame.createOrReplaceTempView(view)
        spark.sql(
            f"merge into {identifier} t using {view} s on t.file = s.file "
            "when matched then update set * when not matched then insert *"
        )
        return True
    except Exception as error:  # noqa: BLE001 -- any failure leaves the previous index, which is still true
        print(f"raw index {identifier}: not updated ({type(error).__name__}: {error}); "
              "the next run reads the files it misses", file=sys.stderr)
        return False
