"""EMR Serverless job: one row per flight with the weather at its origin and hour and its plane.

Feeds the delay model, so it holds only what is known before departure besides the outcomes
(dep_delay, arr_delay, cancelled, arrived_late) that the model learns from.

params: flights, weather, planes (the clean tables: see lake_tables.read_table; flights and weather for the
run's days), output (the Iceberg table, partitioned by flight_date: the run's days are replaced in one commit,
see lake_tables.write_iceberg)
"""

from __future__ import annotations

from typing import Any

LATE_MINUTES = 15  # the US DOT's definition of a late arrival


def build(flights, weather, planes):
    from pyspark.sql import functions as F

    weather_cols = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
    w = weather.select("origin", "time_hour", *weather_cols)
    p = planes.select(
        "tailnum",
        F.col("year").alias("plane_year"),
        F.col("seats").alias("plane_seats"),
        F.col("engines").alias("plane_engines"),
        F.col("manufacturer").alias("plane_manufacturer"),
        F.col("type").alias("plane_type"),
    )
    late = F.when(F.col("arr_delay").isNull(), F.lit(None)).otherwise(
        (F.col("arr_delay") > LATE_MINUTES).cast("int")
    )
    return (
        flights.join(w, ["origin", "time_hour"], "left")
        .join(p, "tailnum", "left")
        .select(
            "flight_id",
            "flight_date",
            "time_hour",
            "year",
            "month",
            "day",
            F.dayofweek("flight_date").alias("_dow"),
            F.col("hour").alias("sched_dep_hour"),
            "sched_dep_time",
            "carrier",
            "flight",
            "tailnum",
            "origin",
            "dest",
            "distance",
            "dep_delay",
            "arr_delay",
            F.col("dep_time").isNull().alias("cancelled"),
            late.alias("arrived_late"),
            *weather_cols,
            "plane_year",
            "plane_seats",
            "plane_engines",
            "plane_manufacturer",
            "plane_type",
        )
        # Spark's dayofweek is 1=Sunday..7=Saturday; the lake uses ISO 1=Monday..7=Sunday.
        .withColumn("day_of_week", ((F.col("_dow") + 5) % 7 + 1).cast("int"))
        .drop("_dow")
    )


def run(spark, params: dict[str, Any]) -> dict[str, Any]:
    from lake_tables import read_back, read_table, write_table
    from pyspark.sql import functions as F

    flights = read_table(spark, params["flights"])
    weather, planes = read_table(spark, params["weather"]), read_table(spark, params["planes"])
    features = build(flights, weather, planes)
    snapshot = write_table(features, params["output"], "flight_date")
    written = read_back(spark, params["output"], features, snapshot)

    stats = written.agg(
        F.count("*").alias("rows"),
        F.count("temp").alias("with_weather"),
        F.count("plane_year").alias("with_plane_year"),
        F.count("plane_seats").alias("with_plane"),
    ).first()
    return {
        "rows": stats["rows"],
        "rows_flights_in": flights.count(),
        "rows_with_weather": stats["with_weather"],
        "rows_with_plane": stats["with_plane"],
        "schema": [[f.name, f.dataType.simpleString()] for f in written.schema.fields],
        "snapshot_id": snapshot,
    }


if __name__ == "__main__":
    from _pipes_entry import main

    main(run)
