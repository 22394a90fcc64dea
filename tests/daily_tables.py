"""Test helper: publish a DataFrame as a daily-partitioned lake table, laid out as Spark and the ML asset write it."""

import io

import pandas as pd

from lake_platform.adapters.catalog import version_key


def publish_days(store, catalog, zone: str, table: str, version: str, frame: pd.DataFrame, replaced: list[str],
                 part: str = "part-00000.parquet") -> None:
    """One `flight_date=YYYY-MM-DD/<part>` folder per day (the date not inside the files), `_SUCCESS`, then a
    partitioned publish responsible for the days `replaced`."""
    folder = version_key(zone, table, version)
    for day, rows in frame.groupby("flight_date"):
        buffer = io.BytesIO()
        rows.drop(columns=["flight_date"]).to_parquet(buffer, index=False)
        store.put_bytes(f"{folder}/flight_date={day.isoformat()}/{part}", buffer.getvalue())
    store.put_bytes(f"{folder}/_SUCCESS", b"")
    columns = [("flight_id", "bigint"), ("flight_date", "date")]
    catalog.publish(zone, table, version, columns, "", "flight_date", replaced)
