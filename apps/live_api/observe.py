"""Per-request observation (request id, HTTP metrics, the last-resort error answer) and timed inference.

``RequestObservation`` is a plain ASGI middleware (it does not buffer streamed media):

- a request id: the client's ``X-Request-ID`` when it is sane (1-64 of ``[A-Za-z0-9._:-]``),
  else a new one; bound to the log context for every line of the request and echoed in the
  response's ``X-Request-ID``;
- ``spoton_live_http_requests_total`` and ``..._request_duration_seconds`` by method, route
  template (``/api/v1/sessions/{session_id}``: never the raw path, which may hold ids) and status;
- an exception no handler took: logged with its traceback inside the request's context and
  answered by ``errors.handle_error`` (500, the common error body), not by Starlette's bare page.

``TimedDetector`` wraps the live sessions' shared detector to time each inference.
"""
from __future__ import annotations

import re
import time
import uuid

import numpy as np
import structlog
from starlette.requests import Request

from spoton.models.base import Detector
from spoton.records import Detections

from apps.live_api.errors import handle_error, route_template
from apps.live_api.health import LiveMetrics

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id when it is safe to log and echo, else a fresh one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


class RequestObservation:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app, metrics: LiveMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, request_id)

    async def _http(self, scope, receive, send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:  # too late for an error body: the client sees a cut response
                raise
            response = await handle_error(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            route = route_template(scope)
            self.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.http_latency.labels(scope["method"], route).observe(time.perf_counter() - started)


class TimedDetector:
    """A Detector that records each ``detect`` in ``spoton_live_inference_duration_seconds{model="detector"}``."""

    def __init__(self, detector: Detector, metrics: LiveMetrics):
        self.detector = detector
        self._histogram = metrics.inference.labels("detector")

    def detect(self, frame: np.ndarray) -> Detections:
        with self._histogram.time():
            return self.detector.detect(frame)
