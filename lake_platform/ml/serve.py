"""The approved delay model behind SageMaker's inference container contract, on a local HTTP server.

    lake model serve [--host 127.0.0.1] [--port 8080]

A SageMaker endpoint's container answers two requests, and so does this server:

    GET  /ping          200 once the model is loaded (503 while it loads): the endpoint's health check
    POST /invocations   a body of flights (Content-Type) -> their predictions (Accept)

The model is loaded once, the way the local batch transform loads it (`LocalScriptMode.batch_predict`): the
training code the approved job shipped (`sourcedir.tar.gz`) is imported as a fresh module and its `model_fn`
reads the extracted `model.tar.gz`; each request then goes through that code's `input_fn`, `predict_fn` and
`output_fn`, so a flight gets the same probability here, from a batch transform and from the endpoint.

The handlers were written for SageMaker, which trusts its caller; a server on a port does not. What they
would accept silently or fail on (a missing column, `abc` in a numeric field, a CSV line with a field too
few, bytes that are not UTF-8) is checked here first and answered with a 4xx naming the problem; a 500
means a fault of the server, never of the request. `X-Model-Version` (the approved training job's name) is on
every response, so a client knows which model answered.

Standard library only (`http.server.ThreadingHTTPServer`): one thread per connection is plenty for one
model on a laptop, and the lock has no ASGI server. HTTP/1.1 with keep-alive, as the endpoint's front end
keeps its connections to the container open. This module imports no Dagster, pandas or scikit-learn at
import time; loading a model imports what the store and the handlers need.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"  # loopback: the model is not published to the network unless asked
DEFAULT_PORT = 8080  # the port SageMaker sends /ping and /invocations to in the container
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's payload limit (6 MB)
READ_TIMEOUT_SECONDS = 30  # a connection idle (or a body slower) than this is closed
DRAIN_SECONDS = 10  # on SIGINT/SIGTERM: how long requests being answered get to finish

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
PARQUET = "application/x-parquet"
# What train.py's input_fn and output_fn read and write (tests/test_model_serve.py checks both lists against
# the handlers, so neither drifts). Text bodies are UTF-8.
INPUT_TYPES = (CSV, JSON, JSONLINES, "application/x-jsonlines", PARQUET, "application/parquet")
OUTPUT_TYPES = (JSON, JSONLINES, "application/x-jsonlines", CSV, PARQUET, "application/parquet")
TEXT_TYPES = (CSV, JSON, JSONLINES, "application/x-jsonlines")
# The SageMaker containers answer a request without an Accept header (or with */*) in the type of
# SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, application/json unless set.
DEFAULT_ACCEPT = JSON
ROUTES = {"/ping": "GET", "/invocations": "POST"}


class RequestError(Exception):
    """A request the server will not answer with predictions: its HTTP status and what is wrong with it."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class ModelLoadError(RuntimeError):
    """The approved model's artifacts could not be read or loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """The approved model in memory: its version (the training job's name), its handlers and the model."""

    version: str
    handlers: Any  # the training script, imported from the job's sourcedir.tar.gz
    model: Any


def load_model(store, approved) -> LoadedModel:
    """The training job's code and model from the lake, loaded as the local batch transform loads them."""
    from lake_platform.adapters.sagemaker import load_job_model

    with tempfile.TemporaryDirectory(prefix=f"{approved.job_name}-serve-") as tmp:
        # Both are read into memory here (the module's source, the joblib model), so the folder can go.
        handlers, model = load_job_model(store, approved, Path(tmp))
    return LoadedModel(approved.job_name, handlers, model)


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """`text/csv; charset=utf-8` -> ("text/csv", {"charset": "utf-8"})."""
    kind, *params = (header or "").split(";")
    pairs = (p.partition("=") for p in params)
    return kind.strip().lower(), {k.strip().lower(): v.strip().strip('"').lower() for k, _, v in pairs if k.strip()}


def response_type(accept: str | None, default: str = DEFAULT_ACCEPT) -> str:
    """The type to answer in: the most preferred (q) of the Accept header's types that output_fn writes."""
    choices = []
    for position, item in enumerate(filter(None, (part.strip() for part in (accept or "").split(",")))):
        kind, params = media_type(item)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            choices.append((-q, position, kind))
    if not choices:
        return default
    for _, _, kind in sorted(choices):
        if kind in ("*/*", "application/*"):
            return default
        if kind in OUTPUT_TYPES:
            return kind
        if kind == "text/*":
            return CSV
    raise RequestError(
        HTTPStatus.NOT_ACCEPTABLE, f"cannot answer in {accept!r}; accepted types: {', '.join(OUTPUT_TYPES)}"
    )


def _check_text(body: bytes, kind: str) -> None:
    """Text bodies: UTF-8, and each CSV line with as many fields as the header (pandas would pad a short
    line with missing values, and take an extra field of the first line as the index)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f"the body is not UTF-8: byte {body[error.start]:#04x} at offset {error.start}"
        ) from None
    if not text.strip():
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body holds no flights (only whitespace)")
    if kind != CSV:
        return
    try:
        rows = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(rows)
        for row in rows:
            if row and len(row) != len(header):
                raise RequestError(
                    HTTPStatus.BAD_REQUEST,
                    f"CSV line {rows.line_num} has {len(row)} fields, the header line has {len(header)} "
                    "(one flight per line, with the header's columns)",
                )
    except csv.Error as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"malformed CSV at line {rows.line_num}: {error}") from None


def _offenders(frame, bad, column: str, what: str) -> str:
    rows = [i for i, flag in enumerate(bad.to_numpy()) if flag]
    values = (frame[column].iloc[i] for i in rows[:3])
    shown = ", ".join(f"flight {i + 1}: {v.item() if hasattr(v, 'item') else v!r}" for i, v in zip(rows, values))
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return f"{column!r} must be {what} ({shown}{more})"


def checked(frame, handlers, kind: str):
    """The parsed flights, checked against the model's features: every feature column present, the numeric
    ones numbers (or empty, which the model treats as missing), the categorical ones text; the categories are
    made strings (a CSV reads `123` as a number)."""
    import numpy as np
    import pandas as pd

    def absent(value) -> bool:
        return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)

    if not isinstance(frame, pd.DataFrame) or not len(frame.columns):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body holds no flights")
    missing = [c for c in handlers.FEATURES if c not in frame.columns]
    if missing:
        hint = " (a CSV body starts with a header line naming the columns)" if kind == CSV else ""
        raise RequestError(HTTPStatus.BAD_REQUEST, f"missing feature columns {missing}{hint}")
    if frame.empty:
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body holds no flights, only column names")
    frame = frame.reset_index(drop=True)
    problems = []
    numeric = frame[handlers.NUMERIC]
    plain = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in numeric.dtypes)
    if plain:  # the usual case (CSV, Parquet, JSON numbers): one vectorized test of every numeric column
        values = numeric.to_numpy(dtype="float64", na_value=np.nan)
        suspects = [c for c, bad in zip(handlers.NUMERIC, np.isinf(values).any(axis=0)) if bad]
    else:
        suspects = handlers.NUMERIC
    for column in suspects:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            bad = values.notna()
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            bad = values.notna() & (numbers.isna() | np.isinf(numbers.fillna(0.0)))
            if values.dtype == object:
                bad |= values.map(lambda v: isinstance(v, bool))
        if bad.any():
            problems.append(_offenders(frame, bad, column, "a finite number or empty"))
    for column in handlers.CATEGORICAL:
        values = frame[column]
        if values.dtype == object and all(isinstance(v, str) or absent(v) for v in values):
            continue  # text and missing values (None, NaN): as the handlers expect them
        bad = values.map(lambda v: isinstance(v, (list, dict, bool)))
        if bad.any():
            problems.append(_offenders(frame, bad, column, "text or empty"))
            continue
        frame[column] = pd.Series([v if absent(v) else str(v) for v in values], index=frame.index, dtype=object)
    if problems:
        raise RequestError(HTTPStatus.BAD_REQUEST, "; ".join(problems))
    return frame


class Predictor:
    """One request's way through the handlers: check and parse the body, score, write the answer."""

    def __init__(self, loaded: LoadedModel, default_accept: str = DEFAULT_ACCEPT):
        self.loaded, self.default_accept = loaded, default_accept

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes, str]:
        """(response body, its content type) or a RequestError saying what is wrong with the request."""
        kind, params = media_type(content_type)
        if not kind:
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"no Content-Type header; send one of {', '.join(INPUT_TYPES)}"
            )
        if kind not in INPUT_TYPES:
            raise RequestError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Type {kind!r}; send one of {', '.join(INPUT_TYPES)}",
            )
        if kind in TEXT_TYPES and params.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"charset {params['charset']!r}: send UTF-8")
        out_type = response_type(accept, self.default_accept)
        if not body:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"empty body: send flights as {kind}")
        if kind in TEXT_TYPES:
            _check_text(body, kind)
        handlers = self.loaded.handlers
        try:
            frame = handlers.input_fn(body, kind)
        except Exception as error:  # input_fn only parses the client's bytes: whatever breaks it is the body's
            raise RequestError(HTTPStatus.BAD_REQUEST, f"cannot read the body as {kind}: {error}") from None
        frame = checked(frame, handlers, kind)
        # From here on the input is valid: an exception is the server's fault (a 500).
        return handlers.output_fn(handlers.predict_fn(frame, self.loaded.model), out_type)


class ModelServer(ThreadingHTTPServer):
    """The HTTP server; `predictor` is None until the model is loaded (then /ping answers 200)."""

    daemon_threads = True  # idle keep-alive connections do not hold up the exit; `drain` waits for requests

    def __init__(self, address: tuple[str, int], version: str, max_body_bytes: int = MAX_BODY_BYTES):
        super().__init__(address, Handler)
        self.version, self.max_body_bytes = version, max_body_bytes
        self.predictor: Predictor | None = None
        self.load_error: str | None = None
        self._busy, self._idle = 0, threading.Condition()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def load(self, load) -> None:
        """Call `load()` (-> LoadedModel); /ping answers 200 once it returns, 503 with its error if it raises."""
        started = time.perf_counter()
        try:
            loaded = load()
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            raise
        self.version = loaded.version
        self.predictor = Predictor(loaded)
        log.info("model %s loaded in %.1f s", loaded.version, time.perf_counter() - started)

    @contextmanager
    def busy(self):
        """Counts the requests being answered, for `drain`."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Wait until no request is being answered (True), or `timeout` seconds (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's connection serves request after request
    default_request_version = "HTTP/1.0"  # a request line too broken to name a version gets a status line
    server_version = "lake-model-server"
    timeout = READ_TIMEOUT_SECONDS
    # A response is two writes (headers, body): with Nagle's algorithm the second waits for the client's
    # delayed ACK of the first, up to 40 ms per request on Linux.
    disable_nagle_algorithm = True
    server: ModelServer

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def __getattr__(self, name: str):
        # Every other method (PUT, DELETE, HEAD, ...) is the wrong one for both paths: 405, or 404 off them.
        if name.startswith("do_"):
            return lambda: self._route(name[3:])
        raise AttributeError(name)

    def _route(self, method: str) -> None:
        self._unread, self._client_closes = True, self.close_connection  # as parse_request set it
        with self.server.busy():
            try:
                path = self.path.split("?", 1)[0]
                if path not in ROUTES:
                    raise RequestError(HTTPStatus.NOT_FOUND, f"no {path!r} here: GET /ping or POST /invocations")
                if method != ROUTES[path]:
                    raise RequestError(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        f"{method} {path}: use {ROUTES[path]} {path}",
                        {"Allow": ROUTES[path]},
                    )
                if path == "/ping":
                    self._ping()
                else:
                    self._invocations()
            except RequestError as error:
                log.info("%s %s -> %d %s", method, self.path, error.status, error.message)
                self._error(error.status, error.message, error.headers)
            except TimeoutError:
                self.close_connection = True  # the client stopped sending its body: nobody to answer
            except Exception as error:  # the server's fault: still answered, and logged with its traceback
                log.exception("%s %s failed", method, self.path)
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}: {error}")

    def _ping(self) -> None:
        server = self.server
        if server.predictor is None:
            why = f"the model failed to load: {server.load_error}" if server.load_error else "the model is loading"
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, _json({"status": "unavailable", "error": why}), JSON)
        else:
            self._send(HTTPStatus.OK, _json({"status": "ok", "model_version": server.version}), JSON)

    def _invocations(self) -> None:
        length = self._content_length()
        body = self.rfile.read(length) if length else b""
        self._unread = False
        if len(body) < length:
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes")
        predictor = self.server.predictor
        if predictor is None:
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "the model is not loaded yet; retry when /ping is 200")
        answer, content_type = predictor.invoke(body, self.headers.get("Content-Type"), self.headers.get("Accept"))
        self._send(HTTPStatus.OK, answer, content_type)

    def _content_length(self) -> int:
        """The body's declared length. A body the server will not read (or cannot delimit) closes the connection
        after the answer: its bytes would otherwise be read as the next request."""
        self.close_connection = True  # until the length is known good
        if "Transfer-Encoding" in self.headers:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not read: send Content-Length")
        text = self.headers.get("Content-Length")
        if text is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "no Content-Length header")
        if not text.strip().isdigit():
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {text!r} is not a byte count")
        length = int(text)
        if length > self.server.max_body_bytes:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {length:,} bytes; at most {self.server.max_body_bytes:,} per request",
            )
        self.close_connection = self._client_closes
        return length

    def _error(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        declared = self.headers.get("Content-Length", "0").strip() != "0" or "Transfer-Encoding" in self.headers
        if self._unread and declared:
            self.close_connection = True  # the body left unread would be read as the next request
        self._send(status, _json({"error": message, "status": int(status)}), JSON, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors found before routing (a malformed request line, headers too long): JSON too."""
        self.close_connection = True
        status = HTTPStatus(code)
        self._send(status, _json({"error": message or status.phrase, "status": code}), JSON)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", self.server.version)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _json(document: dict) -> bytes:
    return json.dumps(document).encode("utf-8")


def serve(store, approved, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, announce=print) -> None:
    """Serve `approved` (a TrainingResult) until SIGINT or SIGTERM: bind, announce, load the model (/ping is
    503 meanwhile), answer; on a signal stop accepting, let the requests being answered finish, return.
    Raises OSError when the address cannot be bound, ModelLoadError when the model cannot be loaded."""
    # One OpenMP thread for the model unless told otherwise (set before the handlers import scikit-learn): a
    # request of a few flights gains nothing from a team of threads, and on a busy machine the team's
    # spinning workers took the p95 of one flight from 84 ms to 1.3 s (bench/model_serve.py).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    server = ModelServer((host, port), approved.job_name)
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("%s: stopping", signal.Signals(signum).name)
            threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() waits for serve_forever

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    failure: list[BaseException] = []

    def load() -> None:
        try:
            server.load(lambda: load_model(store, approved))
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which re-raises it
            failure.append(error)
            threading.Thread(target=server.shutdown, daemon=True).start()
        else:
            announce(f"ready: model {approved.job_name} loaded")

    try:
        announce(f"serving model {approved.job_name} at {server.url} (GET /ping, POST /invocations); Ctrl-C stops")
        threading.Thread(target=load, name="load-model", daemon=True).start()
        server.serve_forever(poll_interval=0.2)
        if not server.drain():
            log.warning("requests still being answered after %s s; exiting anyway", DRAIN_SECONDS)
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failure:
        error = failure[0]
        raise ModelLoadError(f"cannot load model {approved.job_name}: {type(error).__name__}: {error}") from error
