"""Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, each job is one trace across the web and the worker,
sent over OTLP/HTTP to a collector this test runs; unset, nothing of the SDK is installed and nothing is sent.

A stack of its own (Redis database 13) with notifications on, so the trace has every step of a job's life, and
with the instrumentations asked to capture the headers that authenticate (an operator may ask for them; they must
still never leave).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
import requests

from conftest import API, API_TOKEN, SECRET_KEY, service_env
from devtools.processes import ROOT, free_port, wait_until
from devtools.stack import SIMULATOR_KEY
from helpers import stack_on_db
from notify_helpers import SECRET, receiving
from trace_helpers import collecting, leaks

# A job's steps, each a span with fluxhook.job_id, in the one trace of the job.
STEPS = {"fluxhook.create", "fluxhook.send", "fluxhook.callback", "fluxhook.download", "fluxhook.store",
         "fluxhook.thumbnail", "fluxhook.notify"}


# The SDK's own settings for capturing headers as span attributes, naming those that authenticate a caller, BFL's
# key, a callback and a notification.
_CAPTURED_HEADERS = {
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "authorization,cookie,x-webhook-secret,user-agent",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "x-key,authorization,webhook-signature,user-agent",
}


@pytest.fixture(scope="module")
def collector():
    with collecting() as made:
        yield made


@pytest.fixture(scope="module")
def hooks():
    with receiving(1) as [made]:
        yield made


@pytest.fixture(scope="module")
def traced_stack(redis_server, simulator, _spies, collector, hooks, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("traced-stack")), 13,
                     OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="100",
                     NOTIFY_URL=hooks.url(), NOTIFY_SECRET=SECRET, NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{hooks.port}",
                     WEB_CONCURRENCY="1", **_CAPTURED_HEADERS) as running:
        yield running


def _log_lines(path: Path, job_id: str) -> list[dict]:
    lines = []
    for raw in path.read_text().splitlines():
        if job_id in raw and raw.startswith("{"):
            line = json.loads(raw)
            if line.get("job_id") == job_id:
                lines.append(line)
    return lines


def test_a_job_is_one_trace_across_web_and_worker(traced_stack, collector, hooks, sim):
    api = API(traced_stack.base_url)
    job = api.submit("a traced fox")
    job_id = job["id"]
    stored = api.wait_for(job_id)
    assert stored["status"] == "stored"
    hooks.wait_for(job_id)

    spans = wait_until(lambda: (lambda found: found if STEPS <= {s.name for s in found} else None)(
        collector.of_job(job_id)), timeout=20, interval=0.1, message=f"spans of every step of {job_id}")
    assert len({s.trace_id for s in spans}) == 1, [(s.name, s.trace_id) for s in spans]
    trace_id = spans[0].trace_id
    trace = collector.of_trace(trace_id)
    by_name = {s.name: s for s in trace}
    # The creating request is the trace's root, in the web; the steps in their processes.
    root = by_name["POST /v1/jobs"]
    assert root.parent_id == "" and root.service == "fluxhook-web"
    assert by_name["fluxhook.create"].parent_id == root.span_id
    assert by_name["fluxhook.callback"].service == "fluxhook-web"
    for step in ("fluxhook.download", "fluxhook.store", "fluxhook.thumbnail", "fluxhook.notify"):
        assert by_name[step].service == "fluxhook-worker", step
    assert {s.service for s in trace} == {"fluxhook-web", "fluxhook-worker"}
    # The requests and Redis instrumentations: BFL's call, the download and the notification; Redis commands.
    assert any(s.attributes.get("db.system") == "redis" for s in trace)
    client_calls = [s for s in trace if s.name in ("POST", "GET")]
    assert len(client_calls) >= 3, sorted(s.name for s in trace)
    # No span holds the job's webhook token or an image signature.
    token = sim.task(stored["bfl_id"])["webhook_url"].rsplit("/", 1)[1]  # as fluxhook sent it
    for span in trace:
        for value in span.attributes.values():
            assert token not in str(value) and "sig=" not in str(value).replace("sig=[redacted]", ""), span

    # Log lines carry the trace: the creating request's and the callback's in the web, every one in the worker.
    web = _log_lines(traced_stack.var_dir / "web.log", job_id)
    created = [line for line in web if line.get("route") == "/v1/jobs" and line.get("method") == "POST"]
    callbacks = [line for line in web if line.get("route") == "/webhooks/bfl/<token>"]
    assert created and callbacks, web
    assert {line.get("trace_id") for line in created + callbacks} == {trace_id}
    worker = _log_lines(traced_stack.var_dir / "worker.log", job_id)
    assert any(line["event"] == "image stored" for line in worker), worker
    assert {line.get("trace_id") for line in worker} == {trace_id}, worker


_URLS = ("http.target", "http.url", "url.full", "url.path")
# The captured headers of _CAPTURED_HEADERS that authenticate, as the instrumentations name them ("-" as "_").
_AUTHENTICATING = ("authorization", "cookie", "x_webhook_secret", "x_key", "webhook_signature")


def test_no_span_of_a_jobs_whole_life_carries_a_secret_or_a_tenants_words(traced_stack, collector, hooks, sim):
    """Create (with a notify_url whose path and query hold the app's tokens), callback, download, the image read
    with its signed link, a search, the notification: the collector receives no query string, no token of a path,
    no authenticating header, no prompt and no search text; the job id and the route template stay."""
    api = API(traced_stack.base_url)
    prompt = "an ultramarine heron zqvfeather"
    notify_url = hooks.url("/hooks/app-path-secret-7f3a9c?app_key=app-query-secret-2b8d")
    job_id = api.submit(prompt, notify_url=notify_url)["id"]
    stored = api.wait_for(job_id)
    assert stored["status"] == "stored"
    assert hooks.wait_for(job_id)[0].path == "/hooks/app-path-secret-7f3a9c?app_key=app-query-secret-2b8d"
    link = stored["image"]["url"]
    image_token = link.split("token=", 1)[1].split("&", 1)[0]
    assert requests.get(link, timeout=10).status_code == 200  # the signed link alone opens it
    found = api.get("/v1/jobs", params={"q": "heron zqvfeather"})
    assert found.status_code == 200 and [j["id"] for j in found.json()["jobs"]] == [job_id], found.text

    def exported():
        with collector.lock:
            spans = list(collector.spans)
        names = {s.name for s in spans if s.attributes.get("fluxhook.job_id") == job_id}
        read = [s for s in spans if s.attributes.get("http.route") == "/v1/jobs/<job_id>/image"
                and job_id in str(s.attributes.get("http.target", s.attributes.get("url.path")))]
        searched = [s for s in spans if s.name == "GET /v1/jobs"]
        return spans if STEPS <= names and read and searched else None

    spans = wait_until(exported, timeout=20, interval=0.1, message=f"the spans of {job_id}'s life, its read and search")
    webhook_token = sim.task(stored["bfl_id"])["webhook_url"].rsplit("/", 1)[1]  # as fluxhook sent it
    secrets = {"webhook token": webhook_token, "image token": image_token, "app key": API_TOKEN,
               "BFL key": SIMULATOR_KEY, "secret key": SECRET_KEY, "notify path token": "app-path-secret-7f3a9c",
               "notify query token": "app-query-secret-2b8d", "prompt": "ultramarine heron",
               "search text": "zqvfeather"}
    leaked = leaks(spans, secrets)
    # Attributes no span may have, whatever their value: a query (of its own or in a URL), a header that
    # authenticates.
    forbidden = sorted({f"{s.name}/{key}" for s in spans for key, value in s.attributes.items()
                        if key == "url.query" or key in _URLS and "?" in str(value)
                        or key.startswith("http.request.header.") and key.rsplit(".", 1)[1] in _AUTHENTICATING})
    assert not leaked and not forbidden, {"leaked": {k: sorted(v) for k, v in leaked.items()}, "forbidden": forbidden}
    # What a trace is searched by stays: the job id, the route template, the path of ids.
    read = [s for s in spans if s.attributes.get("http.route") == "/v1/jobs/<job_id>/image"]
    assert {s.attributes.get("http.target") for s in read} == {f"/v1/jobs/{job_id}/image"}
    assert STEPS <= {s.name for s in collector.of_job(job_id)}
    assert any(s.attributes.get("http.request.header.user_agent") for s in read)  # the capture is on; harmless ones stay


def test_a_job_polled_for_its_lost_callback_has_its_polls_in_its_trace(traced_stack, collector, sim):
    api = API(traced_stack.base_url)
    job = api.submit("[drop] nobody calls back, traced")
    assert api.wait_for(job["id"], timeout=20)["source"] == "poll"
    wanted = {"fluxhook.check", "fluxhook.poll", "fluxhook.store"}
    spans = wait_until(lambda: (lambda found: found if wanted <= {s.name for s in found} else None)(
        collector.of_job(job["id"])), timeout=20, interval=0.1, message="the job's check, poll and store spans")
    assert len({s.trace_id for s in spans}) == 1
    checks = {s.span_id for s in spans if s.name == "fluxhook.check"}
    polls = [s for s in spans if s.name == "fluxhook.poll"]
    # Each poll is the sweep's check of the job, in the worker.
    assert polls and all(s.service == "fluxhook-worker" and s.parent_id in checks for s in polls)
    assert "fluxhook.callback" not in {s.name for s in spans}
    polled = [line for line in _log_lines(traced_stack.var_dir / "worker.log", job["id"]) if line["event"] == "job polled"]
    assert polled and {line.get("trace_id") for line in polled} == {spans[0].trace_id}


def test_a_status_read_is_a_trace_of_its_own(traced_stack, collector, sim):
    api = API(traced_stack.base_url)
    job = api.submit("a read fox")
    api.wait_for(job["id"])
    created = wait_until(lambda: [s for s in collector.of_job(job["id"]) if s.name == "fluxhook.create"],
                         timeout=10, interval=0.1, message="the job's creation span")
    read = wait_until(lambda: [s for s in collector.spans if s.name == "GET /v1/jobs/<job_id>"], timeout=10,
                      interval=0.1, message="a span of GET /v1/jobs/{id}")
    assert created[0].trace_id not in {s.trace_id for s in read}


def test_with_no_endpoint_nothing_of_the_sdk_is_installed(redis_server, simulator, _spies):
    """A web app and a worker's setup with OTEL_* settings that do not name an exporter: the SDK's traces
    are not even imported (so there is no exporter to send anything), no instrumentation, no log filter, and a job created
    keeps no traceparent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port()),
               OTEL_SERVICE_NAME="fluxhook-untraced", OTEL_EXPORTER_OTLP_ENDPOINT="")
    # Its own database: the traced stack's worker must not take this job.
    env["REDIS_URL"] = redis_server.url.replace("/0", "/14")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    script = textwrap.dedent("""
        import json, logging, sys
        import redis, requests
        from fluxhook.core import tracing
        from fluxhook.core.config import Config
        from fluxhook.core.logs import configure_logging
        from fluxhook.store.keys import KEYS
        from receiver import create_app
        configure_logging()
        app = create_app(Config.from_env())
        assert tracing.setup("fluxhook-worker") is False
        answer = app.test_client().post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "untraced"}},
                                        headers={"Authorization": "Bearer test-token-0123456789"})
        assert answer.status_code == 202, answer.get_data(as_text=True)
        job_id = answer.get_json()["id"]
        record = redis.Redis.from_url(Config.from_env().redis_url).hgetall(KEYS.job(job_id))
        from opentelemetry import trace
        print(json.dumps({
            "record_fields": sorted(k.decode() for k in record),
            "provider": type(trace.get_tracer_provider()).__name__,
            # redis-py imports the SDK's metrics part itself when it is installed; its traces and exporters, never.
            "sdk_traces_loaded": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace",
                                                                                "opentelemetry.exporter"))),
            "instrumentations_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.instrumentation")),
            "requests_wrapped": hasattr(requests.Session.send, "__wrapped__"),
            "redis_wrapped": hasattr(redis.Redis.execute_command, "__wrapped__"),
            "flask_instrumented": getattr(app, "_is_instrumented_by_opentelemetry", False),
            "log_filters": [type(f).__name__ for h in logging.getLogger().handlers for f in h.filters],
            "span_is_noop": tracing.job_span("fluxhook.send", job_id) is tracing.job_span("fluxhook.poll", job_id),
        }))
    """)
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["record_fields"] and "traceparent" not in seen["record_fields"]
    assert seen["provider"] == "ProxyTracerProvider"
    assert seen["sdk_traces_loaded"] == [] and seen["instrumentations_loaded"] == []
    assert seen["requests_wrapped"] is False and seen["redis_wrapped"] is False
    assert seen["flask_instrumented"] is False
    assert "TraceIds" not in seen["log_filters"]
    assert seen["span_is_noop"] is True
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
