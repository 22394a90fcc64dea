"""Reference pipeline: the lake's logical work in plain DuckDB (one process; no Spark, Dagster or dbt).

It reads the files the ingest assets landed and does the same logical work as the lake's pipeline (clean,
curated, the warehouse's monthly mart), so a benchmark can compare the real pipeline's wall time with it:

    .venv/bin/python bench/reference.py LAKE_ROOT OUT_DIR      # prints {"seconds": ..., "rows": {...}, ...}

Steps, each written to Parquet under OUT_DIR as the lake lays out its tables (`<zone>/<table>/`, daily tables
in Hive-style `flight_date=<day>/` folders), and each step reading what the step before it wrote:
  1. clean/*        spark_jobs/clean.py: type every dataset by its contract, quarantine what breaks it, merge
                    the versions of each key (the DMS CDC merge for flights)
  2. curated/flight_features           spark_jobs/curated_features.py
  3. curated/route_performance_daily   spark_jobs/route_performance.py
  4. warehouse/mart_carrier_ontime_monthly   dbt's mart_carrier_ontime_monthly (over fct_flights, dim_carriers)

Deliberately simpler than the lake (a baseline, not a second implementation): files are not validated whole
(a malformed file makes DuckDB fail instead of being quarantined), values are converted with DuckDB's
TRY_CAST (which, unlike the lake, reads "4.2" as the int 4), the quarantine holds the reason but not the
record, and the warehouse's other models (fct_flights, the dimensions, the daily fact) and dbt's tests are
not built: the mart is computed from the clean tables in one statement.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
import time
from pathlib import Path

import duckdb

from lake_platform import contracts

LATE_MINUTES = 15  # the US DOT's definition of a late arrival, as in the Spark jobs and fct_flights

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    # Spark's `timestamp` (UTC session): Parquet TIMESTAMP_MICROS adjusted to UTC, which is DuckDB's TIMESTAMPTZ.
    "timestamp": "TIMESTAMPTZ",
}
OP = "Op"  # DMS's change column (I/U/D)
WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]

# Step 1's outputs, in the order they are cleaned (airports is not used downstream; the lake cleans it too).
CLEAN_TABLES = ["flights", "weather", "planes", "airlines", "airports"]


# ---------------------------------------------------------------------------------------------------------
# Step 1: load + clean types


def landed_files(lake_root: Path, prefix: str) -> list[Path]:
    """The landed objects under a contract's landing prefix, in arrival order.

    As raw/copy.py's `arrival_order`: by landing time (the file's mtime), then by key. The clean job reads
    the raw copies of these objects in that order, and a later file's version of a key wins a tie.
    """
    root = lake_root.resolve()
    base = root / prefix.rstrip("/")
    search = base if base.is_dir() else base.parent
    files = [
        p for p in search.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix().startswith(prefix) and not p.name.startswith(".tmp-")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.relative_to(root).as_posix()))


def sql_list(values) -> str:
    return "[" + ", ".join(sql_string(str(v)) for v in values) + "]"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_check(spark_expr: str) -> str:
    """A contract check (Spark SQL) in DuckDB's dialect: only `x rlike 'p'` differs."""
    return re.sub(r"(\w+)\s+rlike\s+('(?:[^']|'')*')", r"regexp_matches(\1, \2)", spark_expr)


def csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def landed_sql(con, contract: dict, files: list[Path]) -> str:
    """The landed records as delivered, plus _file, _arrival (the file's position in arrival order) and _seq
    (the record's position within its file); `_op`, DMS's change column, NULL when the files have none.

    CSV files are read as text with the columns of their header (read here, as the clean job checks each
    file's header first): DuckDB's sniffer would cost ~50 ms a file. Files with different headers are read
    apart and matched by column name.
    """
    if contract["source"]["format"] == "parquet":
        reader = f"read_parquet({sql_list(files)}, union_by_name = true, filename = true, file_row_number = true)"
        available = {d[0] for d in con.execute(f"SELECT * FROM {reader} LIMIT 0").description}
        readers = [(reader, "file_row_number", available)]
    else:
        by_header: dict[tuple, list[Path]] = {}
        for path in files:
            by_header.setdefault(tuple(csv_header(path)), []).append(path)
        readers = []
        for header, group in by_header.items():
            columns = "{" + ", ".join(f"{sql_string(h)}: 'VARCHAR'" for h in header) + "}"
            reader = (
                f"read_csv({sql_list(group)}, header = true, auto_detect = false, delim = ',', quote = '\"',\n"
                f"                     escape = '\"', columns = {columns}, filename = true)"
            )
            # Rows come in the order of the files and of their records: increasing within each file.
            readers.append((reader, "row_number() OVER ()", set(header)))
    wanted = [c["name"] for c in contract["columns"]] + ([contract["order_by"]] if contract.get("order_by") else [])
    selects = []
    for reader, seq, available in readers:
        columns = [f'"{n}"' if n in available else f'NULL::VARCHAR AS "{n}"' for n in dict.fromkeys(wanted)]
        columns.append(f'"{OP}" AS _op' if OP in available else "NULL::VARCHAR AS _op")
        selects.append(
            f"SELECT {', '.join(columns)},\n"
            f"            filename AS _file, list_position({sql_list(files)}, filename) AS _arrival, {seq} AS _seq\n"
            f"        FROM {reader}"
        )
    return "\n        UNION ALL\n        ".join(selects)


def text_value(contract: dict, column: dict) -> str:
    """A CSV field as the clean job reads it: trimmed unless a string, the null markers as NULL."""
    name = f'"{column["name"]}"'
    if contract["source"]["format"] != "csv":
        return name  # Parquet carries real types and nulls
    value = name if column["type"] == "string" else f"trim({name})"
    markers = column.get("null_values", contract.get("null_values", [""]))
    return f"CASE WHEN {value} IN ({', '.join(sql_string(m) for m in markers)}) THEN NULL ELSE {value} END"


def checked_sql(con, contract: dict, files: list[Path]) -> str:
    """Every landed record typed by the contract, with `_violations`: the rules it breaks (NULL when none).

    As clean.py's typed_with_violations: a value that does not convert, a missing required value, a failed
    `check` (NULL passes), an Op other than I/U/D. A delete marker (Op = D) is checked on its key only.
    """
    keys = set(contract["primary_key"])
    typed, type_rules, check_rules = [], [], []
    not_delete = "coalesce(_op, 'I') <> 'D'"
    for column in contract["columns"]:
        name, kind = column["name"], column["type"]
        value = text_value(contract, column)
        cast = value if kind == "string" else f"TRY_CAST({value} AS {DUCKDB_TYPES[kind]})"
        typed.append(f'{cast} AS "{name}"')
        guard = "" if name in keys else f" AND {not_delete}"
        if kind != "string":
            bad = f"{value} IS NOT NULL AND {cast} IS NULL"
            if kind == "double" and not column.get("allow_nonfinite", False):
                bad = f"(({bad}) OR NOT isfinite({cast}))"
            type_rules.append(f"CASE WHEN {bad}{guard} THEN '{name}: not a valid {kind}' END")
        if not column.get("nullable", True):
            type_rules.append(f"CASE WHEN {value} IS NULL{guard} THEN '{name}: required value is missing' END")
        if "check" in column:
            why = sql_string(f"{name}: violates {column['check']}")
            check_rules.append(f"CASE WHEN NOT coalesce({duckdb_check(column['check'])}, true){guard} THEN {why} END")
    type_rules.append(f"CASE WHEN coalesce(_op, 'I') NOT IN ('I', 'U', 'D') THEN '{OP}: not one of I, U, D' END")
    order = contract.get("order_by")
    commit = f'TRY_CAST("{order}" AS TIMESTAMP)' if order else "NULL::TIMESTAMP"
    names = ", ".join(f'"{c["name"]}"' for c in contract["columns"])
    typed_sql = ",\n            ".join(typed)
    type_rules_sql = ",\n                ".join(type_rules)
    check_rules_sql = ",\n            ".join(["nullif(_type_violations, '')", *check_rules])
    return f"""
    WITH landed AS (
        {landed_sql(con, contract, files)}
    ),
    typed AS (
        SELECT
            {typed_sql},
            _op, {commit} AS _commit, _file, _arrival, _seq,
            concat_ws('; ',
                {type_rules_sql}
            ) AS _type_violations
        FROM landed
    )
    SELECT
        {names}, _op, _commit, _file, _arrival, _seq,
        -- the checks run on the typed values; a value that did not convert has its own violation already
        nullif(concat_ws('; ',
            {check_rules_sql}
        ), '') AS _violations
    FROM typed
    """


def final_state_sql(contract: dict, checked: str) -> str:
    """The clean table: of each key's valid versions, the latest; a key whose latest version is a delete is gone.

    As clean_merge.rank_versions: newest first by the contract's order_by (DMS's commit timestamp, NULLs
    last), then by arrival (the later file), then by position in the file (the later record).
    """
    keys = ", ".join(f'"{k}"' for k in contract["primary_key"])
    derived = ", ".join(
        # Spark's make_date gives NULL for a date that does not exist; DuckDB's raises: TRY.
        f'TRY(CAST({d["expr"]} AS {DUCKDB_TYPES[d["type"]]})) AS "{d["name"]}"' for d in contract.get("derived", [])
    )
    names = ", ".join(f'"{c["name"]}"' for c in contract["columns"])
    return f"""
    SELECT {names}{', ' + derived if derived else ''}
    FROM {checked}
    WHERE _violations IS NULL
    QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _commit DESC NULLS LAST, _arrival DESC, _seq DESC) = 1
        AND _op IS DISTINCT FROM 'D'
    """


def copy_to(con, query: str, path: Path, partition: str | None = None) -> int:
    """Write a query's rows as Parquet: one folder per table, Hive-style `<partition>=<value>/` folders if given."""
    path.mkdir(parents=True, exist_ok=True)
    if partition:
        target, options = path, f"FORMAT parquet, PARTITION_BY ({partition})"
    else:
        target, options = path / "part-0.parquet", "FORMAT parquet"
    return con.execute(f"COPY ({query}) TO {sql_string(str(target))} ({options})").fetchone()[0]


def clean(con, lake_root: Path, out_dir: Path, name: str) -> dict:
    """Step 1 (spark_jobs/clean.py, the clean/<name> asset): landed files -> typed, merged table + quarantine."""
    contract = contracts.load(name)
    files = landed_files(lake_root, contract["source"]["landing_prefix"])
    if not files:
        raise FileNotFoundError(f"nothing landed under {lake_root / contract['source']['landing_prefix']}*")
    checked = f"checked_{name}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {checked_sql(con, contract, files)}")
    quarantined = copy_to(
        con,
        f"SELECT _file AS source_file, _seq AS record_number, _violations AS reason FROM {checked} "
        "WHERE _violations IS NOT NULL",
        out_dir / "quarantine" / name,
    )
    part = contract.get("partition", {}).get("column")
    rows = copy_to(con, final_state_sql(contract, checked), out_dir / "clean" / name, part)
    rows_in = con.execute(f"SELECT count(*) FROM {checked}").fetchone()[0]
    con.execute(f"DROP TABLE {checked}")
    return {
        "rows_in": rows_in,
        "rows_clean": rows,
        "rows_quarantined": quarantined,
        "duplicates_dropped": rows_in - rows - quarantined,  # superseded versions, delete markers, deleted rows
        "files": len(files),
    }


def read_table(out_dir: Path, zone: str, name: str, partition: str | None = None) -> str:
    """A table written by an earlier step, as the next step reads it (a daily table's day from its folders)."""
    folder = out_dir / zone / name
    if partition:
        return (
            f"read_parquet({sql_string(str(folder / '*' / '*.parquet'))}, "
            f"hive_partitioning = true, hive_types = {{'{partition}': DATE}})"
        )
    return f"read_parquet({sql_string(str(folder / '*.parquet'))})"


# ---------------------------------------------------------------------------------------------------------
# Step 2: feature join


def flight_features_sql(flights: str, weather: str, planes: str) -> str:
    """spark_jobs/curated_features.py: one row per flight with the weather at its origin and scheduled hour
    (time_hour) and its plane's attributes; same columns in the same order (flight_date last, as the
    partitioned table reads back)."""
    weather_cols = ", ".join(f"w.{c}" for c in WEATHER_COLUMNS)
    return f"""
    SELECT
        f.flight_id, f.flight_date, f.time_hour, f.year, f.month, f.day,
        f.hour AS sched_dep_hour, f.sched_dep_time, f.carrier, f.flight, f.tailnum, f.origin, f.dest,
        f.distance, f.dep_delay, f.arr_delay,
        f.dep_time IS NULL AS cancelled,
        CASE WHEN f.arr_delay IS NOT NULL THEN (f.arr_delay > {LATE_MINUTES})::INTEGER END AS arrived_late,
        {weather_cols},
        p.year AS plane_year, p.seats AS plane_seats, p.engines AS plane_engines,
        p.manufacturer AS plane_manufacturer, p.type AS plane_type,
        isodow(f.flight_date)::INTEGER AS day_of_week  -- ISO: 1 = Monday .. 7 = Sunday
    FROM {flights} AS f
    LEFT JOIN {weather} AS w ON w.origin = f.origin AND w.time_hour = f.time_hour
    LEFT JOIN {planes} AS p ON p.tailnum = f.tailnum
    """


# ---------------------------------------------------------------------------------------------------------
# Step 3: daily route aggregate


def route_performance_sql(flights: str) -> str:
    """spark_jobs/route_performance.py: flights, cancellations, arrivals, late arrivals and mean delays per
    day and route (origin, dest). Counts are BIGINT (Spark's long; DuckDB would sum into HUGEINT)."""
    return f"""
    SELECT
        flight_date, origin, dest,
        count(*) AS flights,
        count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
        count(arr_delay) AS arrived,
        count(*) FILTER (WHERE arr_delay > {LATE_MINUTES}) AS arrived_late,
        CASE WHEN count(arr_delay) > 0
            THEN 1 - count(*) FILTER (WHERE arr_delay > {LATE_MINUTES}) / count(arr_delay)
        END AS on_time_rate,
        avg(dep_delay) AS mean_dep_delay,
        avg(arr_delay) AS mean_arr_delay
    FROM {flights}
    GROUP BY flight_date, origin, dest
    """


# ---------------------------------------------------------------------------------------------------------
# Step 4: monthly mart


def carrier_ontime_monthly_sql(flights: str, airlines: str) -> str:
    """dbt's mart_carrier_ontime_monthly over fct_flights (arrived_late: 1 if arr_delay > 15, 0 if not, NULL
    if the flight did not arrive; is_cancelled: no dep_time) and dim_carriers (the clean airlines)."""
    return f"""
    WITH fct_flights AS (
        SELECT
            carrier, year, month, dep_delay, arr_delay,
            dep_time IS NULL AS is_cancelled,
            CASE WHEN arr_delay > {LATE_MINUTES} THEN 1 WHEN arr_delay IS NOT NULL THEN 0 END AS arrived_late
        FROM {flights}
    ),
    dim_carriers AS (
        SELECT carrier, name AS carrier_name FROM {airlines}
    ),
    monthly AS (
        SELECT
            carrier, year, month,
            count(*)::BIGINT AS flights,
            sum(CASE WHEN is_cancelled THEN 1 ELSE 0 END)::BIGINT AS cancelled,
            count(arr_delay)::BIGINT AS arrived,
            coalesce(sum(arrived_late), 0)::BIGINT AS arrived_late,
            avg(arr_delay) AS mean_arr_delay,
            avg(dep_delay) AS mean_dep_delay
        FROM fct_flights
        GROUP BY carrier, year, month
    )
    SELECT
        monthly.carrier, dim_carriers.carrier_name, monthly.year, monthly.month,
        monthly.flights, monthly.cancelled, monthly.arrived, monthly.arrived_late,
        1 - monthly.arrived_late::DOUBLE / nullif(monthly.arrived, 0) AS on_time_rate,
        monthly.mean_arr_delay, monthly.mean_dep_delay
    FROM monthly
    LEFT JOIN dim_carriers ON monthly.carrier = dim_carriers.carrier
    """


# ---------------------------------------------------------------------------------------------------------


def run(lake_root: Path, out_dir: Path) -> dict:
    """Run the four steps on the lake's landed files.

    Returns {"seconds": wall time of the whole reference, "rows": {table: rows written}, "step_seconds":
    {step: wall time}, "clean": {dataset: record accounting}}. The time runs from opening DuckDB to the last
    file written: removing OUT_DIR's previous output comes before it, and importing DuckDB is not counted.
    """
    lake_root, out_dir = Path(lake_root), Path(out_dir)
    for zone in ("quarantine", "clean", "curated", "warehouse"):
        shutil.rmtree(out_dir / zone, ignore_errors=True)

    started = time.perf_counter()
    lap = started
    rows, accounting, steps = {}, {}, {}

    def step_done(step: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        steps[step] = round(now - lap, 3)
        lap = now

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as the Spark jobs' session time zone

    for name in CLEAN_TABLES:
        accounting[name] = clean(con, lake_root, out_dir, name)
        rows[f"clean/{name}"] = accounting[name]["rows_clean"]
    step_done("1_clean")

    flights = read_table(out_dir, "clean", "flights", "flight_date")
    weather, planes = read_table(out_dir, "clean", "weather", "obs_date"), read_table(out_dir, "clean", "planes")
    rows["curated/flight_features"] = copy_to(
        con, flight_features_sql(flights, weather, planes), out_dir / "curated" / "flight_features", "flight_date"
    )
    step_done("2_flight_features")

    rows["curated/route_performance_daily"] = copy_to(
        con, route_performance_sql(flights), out_dir / "curated" / "route_performance_daily", "flight_date"
    )
    step_done("3_route_performance_daily")

    rows["warehouse/mart_carrier_ontime_monthly"] = copy_to(
        con,
        carrier_ontime_monthly_sql(flights, read_table(out_dir, "clean", "airlines")),
        out_dir / "warehouse" / "mart_carrier_ontime_monthly",
    )
    con.close()
    step_done("4_mart_carrier_ontime_monthly")
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "rows": rows,
        "step_seconds": steps,
        "clean": accounting,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} LAKE_ROOT OUT_DIR")
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
