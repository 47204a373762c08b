"""OpenTelemetry export: a real server sends its spans to an OTLP/HTTP collector on loopback."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from openfoal_kernel.client import GatewayClient
from openfoal_kernel.scripted import Reply, TextStep, ToolCallStep
from openfoal_testing.plugin import free_port

pytestmark = pytest.mark.asyncio

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Collector:
    """The edge double of an OpenTelemetry collector: accepts ``POST /v1/traces``."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                req = ExportTraceServiceRequest.FromString(body)
                collector.add(req)
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, req: ExportTraceServiceRequest) -> None:
        with self.lock:
            for rs in req.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                self.resources.append(resource)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex(),
                                "attrs": {a.key: _value(a.value) for a in s.attributes},
                                "events": [
                                    (e.name, {a.key: _value(a.value) for a in e.attributes})
                                    for e in s.events
                                ],
                                "status": s.status.code,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                            }
                        )

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.httpd.shutdown()
    c.httpd.server_close()


def _otel_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "openfoal-test",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
    }


async def _wait_for(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_one_trace_links_request_run_model_tool_and_audit(
    server_factory: Any, model: Any, collector: Collector
) -> None:
    server = server_factory(env=_otel_env(collector.url))
    (server.root / "data.csv").write_text("a,b\n1,2\n")
    model.enqueue(
        Reply(steps=[ToolCallStep(name="file.read", arguments={"path": "data.csv"})]),
        Reply(steps=[TextStep(text="Two columns.")]),
    )
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted, events = await c.run("what is in data.csv?", traceparent=traceparent)
        audit = await c.request("audit.query", {"runId": accepted["runId"]})
    trace_id = events[0]["payload"]["traceId"]
    assert trace_id == CLIENT_TRACE  # the gateway honoured the client's trace
    assert {e["traceId"] for e in audit["items"]} == {trace_id}

    def complete() -> bool:
        names = [s["name"] for s in collector.of_trace(trace_id)]
        return "openfoal.run" in names and names.count("openfoal.model_call") == 2

    await _wait_for(complete)
    spans = collector.of_trace(trace_id)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    request = next(
        s for s in by_name["openfoal.request"] if s["attrs"]["rpc.method"] == "agent.run"
    )
    (run,) = by_name["openfoal.run"]
    first, second = sorted(by_name["openfoal.model_call"], key=lambda s: s["start"])
    (tool,) = by_name["openfoal.tool_call"]

    # parent links: client span -> request -> run -> model call -> tool call
    assert request["parent"] == CLIENT_SPAN
    assert run["parent"] == request["span_id"]
    assert first["parent"] == run["span_id"] and second["parent"] == run["span_id"]
    assert tool["parent"] == first["span_id"]
    assert first["end"] <= tool["start"] <= tool["end"] <= second["start"]

    assert request["attrs"]["enduser.id"] == server_user(accepted, events, audit)
    assert request["attrs"]["openfoal.request.id"]
    assert run["attrs"]["openfoal.run.id"] == accepted["runId"]
    assert run["attrs"]["openfoal.session.id"] == accepted["sessionId"]
    assert run["attrs"]["openfoal.run.status"] == "completed"
    assert run["attrs"]["openfoal.runtime_mode"] == "local"
    assert run["attrs"]["gen_ai.request.model"]
    assert first["attrs"]["openfoal.model.tool_calls"] == 1
    assert tool["attrs"]["gen_ai.tool.name"] == "file.read"
    assert tool["attrs"]["openfoal.tool.status"] == "success"
    assert tool["attrs"]["openfoal.gate.decision"] == "allow"
    # every audit entry of the run is an event in the trace, with the same trace id
    audited = {
        attrs["openfoal.audit.id"]: (name, attrs) for s in spans for name, attrs in s["events"]
    }
    for entry in audit["items"]:
        name, attrs = audited[entry["id"]]
        assert name == "openfoal.audit"
        assert attrs["openfoal.audit.action"] == entry["action"]
        assert attrs["openfoal.trace_id"] == trace_id
    tool_events = {a["openfoal.audit.action"] for _, a in tool["events"]}
    assert tool_events == {"tool.call", "tool.result"}
    assert any(r.get("service.name") == "openfoal-test" for r in collector.resources)


def server_user(accepted: dict[str, Any], events: list[Any], audit: dict[str, Any]) -> str:
    """The user the server ran as (the actor of the run's audit entries)."""
    return str(next(e["actor"] for e in audit["items"] if e["action"] == "run.start"))


async def test_failed_request_carries_its_error_code(
    server_factory: Any, model: Any, collector: Collector
) -> None:
    server = server_factory(env=_otel_env(collector.url))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        frame = await c.request_frame("sessions.get", {"sessionId": "ses_nope"})
    trace_id = frame["error"]["traceId"]
    await _wait_for(lambda: bool(collector.of_trace(trace_id)))
    (span,) = collector.of_trace(trace_id)
    assert span["name"] == "openfoal.request"
    assert span["parent"] == ""  # no traceparent: a root with the gateway's trace id
    assert span["attrs"]["rpc.method"] == "sessions.get"
    assert span["attrs"]["openfoal.error.code"] == "NOT_FOUND"
    assert span["status"] == 2  # STATUS_CODE_ERROR
    # the REST surface: a span under the client's traceparent header
    res = server.api(
        "sessions.get",
        {"sessionId": "ses_nope"},
        headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )
    assert res.json()["error"]["traceId"] == CLIENT_TRACE
    await _wait_for(lambda: bool(collector.of_trace(CLIENT_TRACE)))
    (rest,) = collector.of_trace(CLIENT_TRACE)
    assert rest["parent"] == CLIENT_SPAN
    assert rest["attrs"]["rpc.method"] == "sessions.get"
    assert rest["attrs"]["openfoal.error.code"] == "NOT_FOUND"


async def test_runs_go_on_when_the_collector_is_down(server_factory: Any, model: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = server_factory(env=_otel_env(down))
    model.enqueue(Reply(steps=[TextStep(text="still here")]), Reply(steps=[TextStep(text="yes")]))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, events = await c.run("hello")
        _, again = await c.run("hello again", sessionId=events[0]["payload"]["sessionId"])
    assert events[-1]["event"] == "agent.completed"
    assert again[-1]["event"] == "agent.completed"
    assert "exporting OpenTelemetry traces" in server.log()
    await _wait_for(lambda: "spans could not be exported" in server.log(), 60)
    model.enqueue(Reply(steps=[TextStep(text="and again")]))
    async with GatewayClient(server.ws_url, token=server.token) as c:
        _, third = await c.run("third")
    assert third[-1]["event"] == "agent.completed"
    await asyncio.sleep(3)  # another export is tried and fails: it is not logged again
    assert server.log().count("spans could not be exported") == 1
    assert "Failed to export" not in server.log()


async def test_a_gated_call_carries_its_risk_and_decision(
    server_factory: Any, model: Any, collector: Collector
) -> None:
    server = server_factory(env=_otel_env(collector.url))
    model.enqueue(
        Reply(steps=[ToolCallStep(name="bash.exec", arguments={"command": "echo hi"})]),
        Reply(steps=[TextStep(text="done")]),
    )
    async with GatewayClient(server.ws_url, token=server.token) as c:
        accepted = await c.request("agent.run", {"input": "run it"})
        while True:
            e = await c.next_event(30)
            if e.get("event") == "policy-gate.requested":
                gate = e["payload"]["gate"]
                break
        await c.request("policy-gate.resolve", {"gateId": gate["gateId"], "decision": "approve"})
        events = [e async for e in c.run_events(accepted["runId"])]
    assert events[-1]["event"] == "agent.completed"
    trace_id = events[-1]["payload"]["traceId"]

    def tool_span() -> dict[str, Any] | None:
        spans = collector.of_trace(trace_id)
        return next((s for s in spans if s["name"] == "openfoal.tool_call"), None)

    await _wait_for(lambda: tool_span() is not None)
    tool = tool_span()
    assert tool is not None
    assert tool["attrs"]["gen_ai.tool.name"] == "bash.exec"
    assert tool["attrs"]["openfoal.gate.decision"] == "gate"
    assert tool["attrs"]["openfoal.gate.id"] == gate["gateId"]
    assert tool["attrs"]["openfoal.gate.outcome"] == "approved"
    assert tool["attrs"]["openfoal.tool.risk"] == gate["risk"]
    assert tool["attrs"]["openfoal.tool.status"] == "success"
    actions = [a["openfoal.audit.action"] for _, a in tool["events"]]
    assert actions == ["tool.call", "gate.requested", "tool.result"]
