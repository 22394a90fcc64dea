"""EMR Serverless job: daily performance of every route (origin, destination) from the clean flights.

params: flights (the clean table's days to aggregate: see lake_tables.read_table), output (the Iceberg table,
partitioned by flight_date: the run's days are replaced in one commit, see lake_tables.write_iceberg)
"""

from __future__ import annotations

from typing import Any

LATE_MINUTES = 15  # the US DOT's definition of a late arrival


def build(flights):
    from pyspark.sql import functions as F

    arrived = F.col("arr_delay").isNotNull()
    return (
        flights.groupBy("flight_date", "origin", "dest")
        .agg(
            F.count("*").alias("flights"),
            F.sum(F.col("dep_time").isNull().cast("long")).alias("cancelled"),
            F.sum(arrived.cast("long")).alias("arrived"),
            F.sum((F.col("arr_delay") > LATE_MINUTES).cast("long")).alias("arrived_late"),
            F.avg("dep_delay").alias("mean_dep_delay"),
            F.avg("arr_delay").alias("mean_arr_delay"),
        )
        .withColumn("arrived_late", F.coalesce("arrived_late", F.lit(0)).cast("long"))
        .withColumn(
            "on_time_rate",
            F.when(F.col("arrived") > 0, 1 - F.col("arrived_late") / F.col("arrived")),
        )
        .select(
            "flight_date", "origin", "dest", "flights", "cancelled", "arrived", "arrived_late",
            "on_time_rate", "mean_dep_delay", "mean_arr_delay",
        )
    )


def run(spark, params: dict[str, Any]) -> dict[str, Any]:
    from lake_tables import read_back, read_table, write_table
    from pyspark.sql import functions as F

    flights = read_table(spark, params["flights"])
    daily = build(flights)
    snapshot = write_table(daily, params["output"], "flight_date")
    written = read_back(spark, params["output"], daily, snapshot)

    totals = written.agg(F.count("*").alias("rows"), F.sum("flights").alias("flights")).first()
    return {
        "rows": totals["rows"],
        "flights_counted": int(totals["flights"] or 0),
        "rows_flights_in": flights.count(),
        "schema": [[f.name, f.dataType.simpleString()] for f in written.schema.fields],
        "snapshot_id": snapshot,
    }


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
