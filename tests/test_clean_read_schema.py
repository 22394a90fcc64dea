"""Parquet input schemas are read from the footer by pyarrow (spark_jobs/clean_read.py), not by a Spark job per file.

The schema handed to Spark must be exactly the one Spark would infer, or every value cast to text (and the
record kept as JSON) would change; types the mapping does not cover are left to Spark's own inference.
"""

import datetime

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_platform.adapters.spark import load_job

REGION = "us-east-1"
BUCKET = "lake-test"

FLAT = pa.table({
    "Op": pa.array(["I", "U"]),
    "flight_id": pa.array([1, 2], pa.int64()),
    "dep_time": pa.array([517, None], pa.int32()),
    "small": pa.array([1, 2], pa.int8()),
    "medium": pa.array([1, 2], pa.int16()),
    "ratio": pa.array([0.5, 1.5], pa.float32()),
    "arr_delay": pa.array([11.0, None], pa.float64()),
    "cancelled": pa.array([False, True]),
    "flight_date": pa.array([datetime.date(2013, 1, 1)] * 2),
    "time_hour": pa.array([datetime.datetime(2013, 1, 1, 5)] * 2, pa.timestamp("us", tz="UTC")),
    "local_time": pa.array([datetime.datetime(2013, 1, 1, 5)] * 2, pa.timestamp("ms")),
})


def footer_of(uri):
    reason, footer = load_job("clean_read").clean_files.check_parquet(uri)
    assert reason is None
    return footer


@pytest.mark.parametrize("infer_ntz", ["true", "false"])
def test_the_schema_read_from_the_footer_is_the_one_spark_infers(spark, tmp_path, infer_ntz):
    path = tmp_path / "LOAD00000001.parquet"
    pq.write_table(FLAT, path)
    key = "spark.sql.parquet.inferTimestampNTZ.enabled"  # how a timestamp without time zone is read
    previous = spark.conf.get(key)
    spark.conf.set(key, infer_ntz)
    try:
        schema = load_job("clean_read").footer_schema(spark, footer_of(str(path)))
        assert schema == spark.read.parquet(str(path)).schema
    finally:
        spark.conf.set(key, previous)


def test_a_large_footer_is_read_whole(spark, tmp_path):
    wide = pa.table({f"column_{i:05d}_{'x' * 40}": [i] for i in range(2_000)})  # a footer well over 64 KiB
    path = tmp_path / "wide.parquet"
    pq.write_table(wide, path)
    footer = footer_of(str(path))
    assert len(footer) > load_job("clean_files").FOOTER_READ
    assert load_job("clean_read").footer_schema(spark, footer).fieldNames() == wide.column_names


@pytest.mark.parametrize("column", [
    pa.array([[1], [2]]),  # repeated
    pa.array([{"a": 1}, {"a": 2}]),  # nested
    pa.array([1, 2], pa.uint32()),  # unsigned
    pa.array([1, 2], pa.decimal128(5, 2)),
])
def test_a_type_outside_the_mapping_is_left_to_spark(spark, tmp_path, column):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"id": [1, 2], "odd": column}), path)
    assert load_job("clean_read").footer_schema(spark, footer_of(str(path))) is None


def test_reading_a_parquet_input_runs_no_spark_job_to_infer_its_schema(spark, tmp_path):
    clean_read = load_job("clean_read")
    path = str(tmp_path / "LOAD00000001.parquet")
    pq.write_table(FLAT, path)
    contract = {"name": "t", "columns": [{"name": "flight_id", "type": "bigint"}], "source": {"format": "parquet"}}
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("footer-by-pyarrow", "read with the footer's schema")
    clean_read.read_file(spark, contract, path)
    spark.sparkContext.setJobGroup("footer-by-spark", "read with Spark's schema inference")
    clean_read.read_parquet_file(spark, contract, path)
    spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert tracker.getJobIdsForGroup("footer-by-pyarrow") == []
    assert tracker.getJobIdsForGroup("footer-by-spark") != []  # the job the footer read saves


def test_the_footer_of_an_s3_object_is_read_with_ranged_gets(aws, spark, tmp_path):
    path = tmp_path / "LOAD00000001.parquet"
    pq.write_table(FLAT, path)
    boto3.client("s3").upload_file(str(path), BUCKET, "raw/flights/LOAD00000001.parquet")
    assert footer_of(f"s3://{BUCKET}/raw/flights/LOAD00000001.parquet") == footer_of(str(path))
