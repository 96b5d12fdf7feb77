"""The error contract, request ids, HTTP metrics, structured logs and /metrics + docs exposure,
on the real app factory in-process (no lifespan: no detector, no server), plus one real server for
the session thread's log lines."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import structlog
from fastapi.testclient import TestClient
from live_api_server import KEYS, LiveApiServer, auth, free_port, live_store  # noqa: F401

from apps.live_api.app import create_app
from apps.live_api.auth import AuthConfig, Role
from apps.live_api.errors import ErrorBody
from apps.live_api.health import LiveMetrics
from apps.live_api.logs import configure_logging
from apps.live_api.observe import TimedDetector
from apps.live_api.settings import Settings
from spoton.artifacts import cache_dir_from
from spoton.records import Detections

ADMIN, VIEWER = auth("admin"), auth("viewer")


def make_app(store_root, **overrides):
    settings = Settings(store_root=store_root, auth=AuthConfig(api_keys={k: Role[r] for r, k in KEYS.items()}),
                        build_sample_environment=False, cache_dir=cache_dir_from(os.environ), **overrides)
    return create_app(settings)


@pytest.fixture(scope="module")
def app(live_store):
    app = make_app(live_store)

    @app.get("/boom", include_in_schema=False)
    def boom():  # a bug: what every unexpected exception looks like to a client
        raise RuntimeError("kaboom at /secret/server/path")

    return app


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, raise_server_exceptions=False)


@contextmanager
def captured_logs(fmt: str):
    """The root logger reconfigured to write ``fmt`` into a string, then restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(fmt, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


@pytest.fixture
def json_logs():
    """The JSON log lines written during the test."""
    with captured_logs("json") as stream:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def metric_lines(client, name: str) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.startswith(name)]


# --- one error body ------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, headers, status, code, words", [
    ("GET", "/api/v1/environments", {}, 401, "unauthorized", "missing bearer token"),
    ("GET", "/api/v1/environments", {"Authorization": "Bearer nope"}, 401, "unauthorized", "unknown API key"),
    ("POST", "/api/v1/sessions", VIEWER, 403, "forbidden", "admin"),
    ("GET", "/api/v1/environments/nowhere/cameras", VIEWER, 404, "not_found", "unknown environment"),
    ("GET", "/api/v1/sessions/s-nothere", VIEWER, 404, "not_found", "no session s-nothere"),
    ("GET", "/no/such/route", {}, 404, "not_found", "Not Found"),
    ("PUT", "/api/v1/sessions", ADMIN, 405, "method_not_allowed", "Method Not Allowed"),
])
def test_every_error_has_one_shape(client, method, path, headers, status, code, words):
    response = client.request(method, path, headers=headers, json={"environment": "pets_s2l1"})
    assert response.status_code == status, response.text
    body = ErrorBody.model_validate(response.json())
    assert body.code == code and words in body.detail
    assert body.request_id == response.headers["x-request-id"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_unsatisfiable_range_is_416_in_the_same_shape(client):
    response = client.get("/api/v1/media/pets_s2l1/environment/current.json", headers={**VIEWER, "Range": "bytes=abc"})
    assert response.status_code == 416 and response.headers["content-range"].startswith("bytes */")
    body = ErrorBody.model_validate(response.json())
    assert body.code == "range_not_satisfiable" and "malformed Range" in body.detail


def test_validation_errors_are_a_string_detail_plus_the_fields(client):
    response = client.post("/api/v1/sessions", headers=ADMIN, json={"environment": 3, "tick_rate_hz": "fast"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert "body.environment" in body["detail"] and "body.tick_rate_hz" in body["detail"]
    assert [e["loc"] for e in body["errors"]] == [["body", "environment"], ["body", "tick_rate_hz"]]


def test_405_allows_every_method_of_the_path(client):
    """Starlette names only the first matching route's methods; /api/v1/sessions has GET and POST."""
    response = client.put("/api/v1/sessions", headers=ADMIN)
    assert response.headers["allow"] == "GET, POST"
    # routes of an included router are found too (FastAPI keeps the router whole in app.router.routes)
    for path, allow in [("/api/v1/sites/lobby", "DELETE, GET"), ("/api/v1/me", "GET"),
                        ("/api/v1/videos", "GET, POST"), ("/api/v1/environments", "GET"),
                        ("/api/v1/sites/lobby/cameras/test", "POST")]:  # not .../cameras/{camera}'s DELETE
        response = client.put(path, headers=ADMIN)
        assert (response.status_code, response.headers["allow"]) == (405, allow), path


def test_create_app_only_wires_every_route_lives_in_a_router_module(app):
    from apps.live_api.errors import _flat_routes

    modules = {route.endpoint.__module__ for route in _flat_routes(app.router.routes)
               if getattr(route, "endpoint", None) is not None}
    assert "apps.live_api.app" not in modules
    assert {"apps.live_api.environments", "apps.live_api.session_routes", "apps.live_api.sites"} <= modules


def test_an_unexpected_exception_is_500_in_the_same_shape_and_logged_with_its_request_id(client, json_logs):
    response = client.get("/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error: the server log has the details (search it for "
                                         "this request_id)", "code": "internal", "request_id": "req-boom-1"}
    assert "kaboom" not in response.text and "/secret" not in response.text
    [line] = [line for line in json_logs() if line["level"] == "error"]
    assert line["request_id"] == "req-boom-1" and "RuntimeError: kaboom" in line["exception"]
    assert 'code="internal"' in " ".join(metric_lines(client, "spoton_live_errors_total"))


LONG = "a" * 300


@pytest.mark.parametrize("path, words", [
    ("/api/v1/environments/pets_s2l1%00/cameras", "unknown environment"),
    (f"/api/v1/environments/{LONG}/cameras", "unknown environment"),
    ("/api/v1/media/pets_s2l1/environment.json%00.mp4", "no media"),
    (f"/api/v1/media/pets_s2l1/{LONG}.mp4", "no media"),
])
def test_a_name_no_file_system_can_hold_is_404_not_500(client, path, words):
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert words in response.json()["detail"]


@pytest.mark.parametrize("environment", ["pets_s2l1\u0000", LONG, "\ud800"])
def test_an_unnameable_environment_in_a_session_body_is_404_not_500(client, environment):
    response = client.post("/api/v1/sessions", headers={**ADMIN, "Content-Type": "application/json"},
                           content=json.dumps({"environment": environment}))  # escapes NUL and the lone surrogate
    assert response.status_code == 404 and "unknown environment" in response.json()["detail"]


def test_openapi_documents_the_error_body_for_every_422(client):
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    cameras = schema["paths"]["/api/v1/environments/{environment}/cameras"]["get"]["responses"]
    assert set(cameras) >= {"200", "401", "403", "404", "422"}
    for status in ("404", "422"):
        assert cameras[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert cameras["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Cameras"}


# --- request ids and HTTP metrics ----------------------------------------------------------

@pytest.mark.parametrize("sent, echoed", [("abc-123.X:9", True), ("has space", False), ("x" * 65, False),
                                          ("evil\u00e9", False)])
def test_request_id_is_echoed_when_sane_else_generated(client, sent, echoed):
    got = client.get("/healthz", headers={"X-Request-ID": sent.encode("utf-8")}).headers["x-request-id"]
    assert (got == sent) is echoed
    if not echoed:
        assert re.fullmatch(r"[0-9a-f]{32}", got)


def test_http_metrics_use_the_route_template_never_the_raw_path(client):
    client.get("/api/v1/sessions/s-raw-id-4711", headers=VIEWER)
    client.get("/api/v1/media/pets_s2l1/cam1/secret-name.mp4", headers=VIEWER)
    client.get("/not/a/route/token-abc")
    text = client.get("/metrics").text
    assert ('spoton_live_http_requests_total{method="GET",route="/api/v1/sessions/{session_id}",status="404"}'
            in text)
    assert 'route="/api/v1/media/{key:path}"' in text and 'route="unmatched",status="404"' in text
    assert "s-raw-id-4711" not in text and "secret-name" not in text and "token-abc" not in text
    assert 'spoton_live_http_request_duration_seconds_count{method="GET",route="/healthz"}' in text


def test_timed_detector_observes_each_inference():
    class Nobody:  # a detector that finds nobody (the real one needs the weights)
        def detect(self, frame):
            return Detections.empty()

    metrics = LiveMetrics()
    detector = TimedDetector(Nobody(), metrics)
    for _ in range(3):
        assert len(detector.detect(np.zeros((8, 8, 3), np.uint8))) == 0
    assert metrics.registry.get_sample_value("spoton_live_inference_duration_seconds_count",
                                             {"model": "detector"}) == 3


def test_forget_session_drops_every_series_of_the_session():
    metrics = LiveMetrics()
    for session in ("s-gone", "s-stays"):
        metrics.fps.labels(session).set(9.5)
        metrics.frames_processed.labels(session).inc()
        metrics.ticks.labels(session).inc()
        metrics.dropped_frames.labels(session, "cam1").inc(3)
    metrics.forget_session("s-gone")
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert "s-gone" not in text
    assert 'spoton_live_dropped_frames_total{camera="cam1",session="s-stays"} 3.0' in text


def test_readyz_is_503_naming_the_lake_when_the_lake_cannot_be_reached(tmp_path):
    app = make_app(tmp_path / "store", lake_s3="s3://lake-bucket/lake", s3_endpoint="http://127.0.0.1:9")
    app.state.readiness.ready = True  # models warmed up: only storage decides
    ready = TestClient(app).get("/readyz")
    body = ready.json()
    assert ready.status_code == 503 and body["checks"]["store"] == "store reachable"
    assert body["checks"]["lake"].startswith("lake (S3) not reachable") and "lake (S3)" in body["detail"]
    assert "127.0.0.1" not in ready.text and str(tmp_path) not in ready.text

    app = make_app(tmp_path / "store")  # a local lake beside the store
    app.state.readiness.ready = True
    ready = TestClient(app).get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["lake"] == "lake reachable"


# --- exposure --------------------------------------------------------------------------------

@pytest.mark.parametrize("expose, anonymous, viewer", [("public", 200, 200), ("auth", 401, 200),
                                                       ("off", 404, 404)])
def test_metrics_and_docs_exposure(live_store, expose, anonymous, viewer):
    client = TestClient(make_app(live_store, expose_metrics=expose, expose_docs=expose))
    for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == anonymous, path
        assert client.get(path, headers=VIEWER).status_code == viewer, path
    if expose == "auth":  # a browser opens /docs?token=...; the page fetches the document with it
        page = client.get(f"/docs?token={KEYS['viewer']}")
        assert page.status_code == 200 and f"/openapi.json?token={KEYS['viewer']}" in page.text
        assert client.get(f"/openapi.json?token={KEYS['viewer']}").json()["info"]["title"] == "SpotOn live API"


def test_exposure_defaults_follow_the_deployment(tmp_path):
    env = {"SPOTON_STORE": str(tmp_path), "SPOTON_API_KEYS": "an-admin-key-of-24-chars:admin"}
    dev = Settings.from_env(env).check()
    assert (dev.expose_metrics, dev.expose_docs) == ("public", "public")
    prod = Settings.from_env({**env, "SPOTON_DEPLOYMENT": "prod"}).check()
    assert (prod.expose_metrics, prod.expose_docs) == ("auth", "off")
    public = Settings.from_env({**env, "SPOTON_DEPLOYMENT": "prod", "SPOTON_EXPOSE_METRICS": "public"}).check()
    assert public.expose_metrics == "public"
    with pytest.raises(ValueError, match="SPOTON_EXPOSE_DOCS='private': use one of public, auth, off"):
        Settings.from_env({**env, "SPOTON_EXPOSE_DOCS": "private"}).check()
    with pytest.raises(ValueError, match="SPOTON_DEPLOYMENT='staging'"):
        Settings.from_env({**env, "SPOTON_DEPLOYMENT": "staging"})


# --- structured logs -------------------------------------------------------------------------

def test_json_lines_carry_the_request_id_for_stdlib_and_structlog_records(app, client, json_logs):
    @app.get("/log-twice", include_in_schema=False)
    def log_twice():
        logging.getLogger("spoton.example").warning("stdlib line %d", 1)
        structlog.get_logger("apps.example").info("structlog line", n=2)
        return {}

    client.get("/log-twice", headers={"X-Request-ID": "req-logs-7"})
    lines = [line for line in json_logs() if line.get("logger") in ("spoton.example", "apps.example")]
    assert [(line["event"], line["request_id"], line["level"]) for line in lines] == [
        ("stdlib line 1", "req-logs-7", "warning"), ("structlog line", "req-logs-7", "info")]
    assert lines[1]["n"] == 2 and all("timestamp" in line for line in lines)


def test_console_tracebacks_show_no_local_variables():
    """Rich's traceback (structlog's console default when Rich is installed) prints locals: a token
    in a local variable would reach the log."""
    with captured_logs("console") as stream:
        token = "secret-token-in-a-local"  # noqa: F841 (what the traceback must not show)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("spoton.example").exception("failed")
    assert "ValueError: boom" in stream.getvalue() and "secret-token-in-a-local" not in stream.getvalue()


def test_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="SPOTON_LOG_FORMAT='xml': use one of console, json"):
        configure_logging("xml")


@pytest.mark.integration
def test_a_real_server_logs_json_with_ids_and_measures_sessions(live_store):
    """A running session and a failing one (its camera's port is closed) on a real server: JSON log
    lines with request and session ids, inference timed, the failure counted, series dropped."""
    server = LiveApiServer(live_store, extra_env={"SPOTON_LOG_FORMAT": "json"}).wait_ready()
    try:
        good = server.create_session(tick_rate_hz=4)["session_id"]
        bad = server.create_session(cameras={"cam1": {"kind": "http", "uri": f"http://127.0.0.1:{free_port()}/x"}})
        with server.client() as client:
            deadline = time.monotonic() + 60
            while (client.get(f"/api/v1/sessions/{good}").json()["state"] != "running"
                   or client.get(f"/api/v1/sessions/{bad['session_id']}").json()["state"] != "failed"):
                assert time.monotonic() < deadline, "the sessions never reached running and failed"
                time.sleep(0.2)
            client.get(f"/api/v1/sessions/{good}", headers={"X-Request-ID": "req-real-1"})
            running = client.get("/metrics").text
            server.delete_session(good)
            deleted = client.get("/metrics").text
        server.log.flush()
        server.log.seek(0)
        lines = [json.loads(line) for line in server.log.read().splitlines() if line.startswith("{")]
    finally:
        server.stop()
    access = [line for line in lines if line["logger"] == "uvicorn.access" and line.get("request_id") == "req-real-1"]
    assert len(access) == 1 and f"/api/v1/sessions/{good}" in access[0]["event"]
    assert any("running" in line["event"] for line in lines if line.get("session_id") == good)
    bad_lines = [line for line in lines if line.get("session_id") == bad["session_id"]]
    assert any(line["level"] == "error" for line in bad_lines)
    assert any(line["logger"] == "spoton.live.sources" for line in bad_lines)  # its source's reader thread
    count = re.search(r'spoton_live_inference_duration_seconds_count\{model="detector"\} (\S+)', running)
    assert count and float(count[1]) > 0
    assert "spoton_live_session_failures_total 1.0" in running
    assert 'spoton_live_sessions{state="failed"} 1.0' in running
    assert f'session="{good}"' in running and f'session="{good}"' not in deleted


def test_upload_jobs_by_state(tmp_path):
    from apps.live_api.uploads import UploadRecord, UploadService, record_key

    app = make_app(tmp_path / "store")
    for n, state in enumerate(("done", "failed", "failed")):
        record = UploadRecord(id=f"{n:032x}", state=state, filename="v.mp4", size_bytes=1,
                              video_key=f"uploads/{n:032x}/video.mp4", created_unix=0.0, frame_interval_s=1.0)
        app.state.store.write_bytes(record_key(record.id), json.dumps(record.to_json()).encode())
    UploadService.for_app(app)  # reads the records the store holds
    text = TestClient(app).get("/metrics").text
    assert 'spoton_live_uploads{state="failed"} 2.0' in text and 'spoton_live_uploads{state="done"} 1.0' in text
