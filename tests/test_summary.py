"""The `lake run` summary and the row-count metadata of ranged runs (partitions.row_count)."""

import dagster as dg

from lake_platform import partitions
from lake_platform.settings import Settings
from lake_platform.summary import _rows


@dg.asset(key=["toy", "daily"], partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN)
def toy_daily(context: dg.AssetExecutionContext):
    return dg.MaterializeResult(metadata={**partitions.row_count(context, 10 * len(context.partition_keys)),
                                          "location": "/lake/toy/daily"})


@dg.asset(key=["toy", "whole"])
def toy_whole(context: dg.AssetExecutionContext):
    return dg.MaterializeResult(metadata={**partitions.row_count(context, 7), "location": "/lake/toy/whole"})


def metadata(result, day=None) -> dict:
    (event,) = [e for e in result.asset_materializations_for_node("toy__daily") if e.partition == day]
    return {k: v.value for k, v in event.metadata.items()}


def test_a_range_reports_its_total_as_rows_in_run_not_as_each_days_row_count():
    result = dg.materialize([toy_daily], tags=partitions.range_tags("2013-01-01", "2013-01-03"))

    assert metadata(result, "2013-01-02") == {"rows_in_run": 30, "location": "/lake/toy/daily"}


def test_a_one_day_run_reports_the_days_row_count():
    result = dg.materialize([toy_daily], partition_key="2013-01-02")

    assert metadata(result, "2013-01-02")["dagster/row_count"] == 10


def test_the_summary_shows_a_ranged_assets_days_and_run_total(tmp_path):
    result = dg.materialize([toy_daily, toy_whole], tags=partitions.range_tags("2013-01-01", "2013-01-03"))
    settings = Settings(deployment="local", lake_root=tmp_path, dagster_home=tmp_path, automation=False)

    rows = sorted(_rows(result, settings))

    assert rows == [("toy/daily (3 days)", 30, "/lake/toy/daily"), ("toy/whole", 7, "/lake/toy/whole")]
