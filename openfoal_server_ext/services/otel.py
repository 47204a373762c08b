"""OpenTelemetry spans: one trace per request, with its run, model calls, tool calls and audit.

Shipped code uses only the OpenTelemetry API: with no SDK configured every call here is a
no-op. :func:`configure` sets up an SDK ``TracerProvider`` exporting over OTLP/HTTP when
the SDK is installed and the standard ``OTEL_*`` variables (or the server's ``otel``
setting) ask for it. Spans are made in the gateway from the kernel's events, so the kernel
exports nothing; their trace id is the ``traceId`` the gateway stores (docs/observability.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_tracer = trace.get_tracer("openfoal")
_propagator = TraceContextTextMapPropagator()
#: The trace id the next root span must carry (the one the gateway stores), as an int.
_pinned: ContextVar[int] = ContextVar("openfoal_otel_trace_id", default=0)


@dataclass
class _RunSpans:
    run: Span
    model_name: str = ""
    model: Span | None = None
    last_model: Span | None = None
    pending_results: int = 0
    tools: dict[str, Span] = field(default_factory=dict)


_runs: dict[str, _RunSpans] = {}


# -- configuration -------------------------------------------------------------------------


def wanted_by_env(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Whether the standard ``OTEL_*`` variables ask for trace export."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


class _Quiet(logging.Filter):
    """Keeps the exporter's own per-batch warnings out of the log (we warn once instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


#: The exporter's loggers (its retries and failures are reported by :class:`_OnceExporter`).
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
)


_configured: Any = None


def configure(enabled: bool | None = None) -> bool:
    """Set up trace export if asked (``enabled``, else the ``OTEL_*`` variables).

    Returns whether spans are exported. Never raises: a missing SDK or a bad setting logs a
    warning and leaves the API's no-op in place; a collector that is down drops spans.
    """
    global _configured
    if not (wanted_by_env() if enabled is None else enabled):
        return False
    if _configured is not None:
        return True
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _configured = trace.get_tracer_provider()  # the process set up its own: use it
        return True
    try:
        _configured = _sdk_provider()
    except ImportError:
        log.warning(
            "OpenFoal: OpenTelemetry export asked for, but the SDK is not installed "
            "(install the 'otel' extra); no spans are exported"
        )
        return False
    except Exception:
        log.warning("OpenFoal: cannot set up OpenTelemetry export", exc_info=True)
        return False
    trace.set_tracer_provider(_configured)
    return True


def _sdk_provider() -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class GatewayIds(RandomIdGenerator):
        """Root spans get the trace id the gateway already recorded for the request."""

        def generate_trace_id(self) -> int:
            return _pinned.get() or super().generate_trace_id()

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "openfoal"}
    provider = TracerProvider(resource=Resource.create(attrs), id_generator=GatewayIds())
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for name in (n.strip() for n in names.split(",")):
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = _once_exporter(SpanExporter, OTLPSpanExporter())
        else:
            log.warning("OpenFoal: unknown OTEL_TRACES_EXPORTER %r ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _once_exporter(base: Any, inner: Any) -> Any:
    """An exporter that drops what it cannot send, warning once (a collector may be down)."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).addFilter(_Quiet())

    class OnceExporter(base):  # type: ignore[misc,valid-type]
        warned = False

        def export(self, spans: Any) -> Any:
            try:
                result = inner.export(spans)
            except Exception:
                result = SpanExportResult.FAILURE
            if result != SpanExportResult.SUCCESS and not self.warned:
                self.warned = True
                log.warning(
                    "OpenFoal: OpenTelemetry spans could not be exported to %s; spans are "
                    "dropped while the collector cannot be reached (logged once)",
                    getattr(inner, "_endpoint", "the collector"),
                )
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return OnceExporter()


def shutdown() -> None:
    """Export what is buffered (at server stop)."""
    stop = getattr(_configured, "shutdown", None)
    if stop is not None:
        try:
            stop()
        except Exception:
            log.warning("OpenFoal: OpenTelemetry shutdown failed", exc_info=True)


# -- spans ---------------------------------------------------------------------------------


def _parent(trace_id: str, traceparent: Any) -> otel_context.Context:
    """The client's span when its ``traceparent`` names our trace, else a new root."""
    if isinstance(traceparent, str) and trace_id in traceparent.lower():
        return _propagator.extract({"traceparent": traceparent.strip().lower()})
    return otel_context.Context()


def _int_id(trace_id: str) -> int:
    try:
        return int(trace_id, 16)
    except ValueError:
        return 0


@contextmanager
def request_span(
    method: str, *, user: str, request_id: str, trace_id: str, traceparent: Any = None
) -> Iterator[Span]:
    """``openfoal.request``: one protocol request, current while it is answered."""
    token = _pinned.set(_int_id(trace_id))
    try:
        span = _tracer.start_span(
            "openfoal.request",
            context=_parent(trace_id, traceparent),
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "openfoal",
                "rpc.method": method,
                "enduser.id": user,
                "openfoal.request.id": request_id,
            },
        )
    finally:
        _pinned.reset(token)
    with trace.use_span(span, end_on_exit=True, record_exception=False):
        yield span


def request_failed(code: str) -> None:
    """Mark the current request span with the error code it answered."""
    span = trace.get_current_span()
    span.set_attribute("openfoal.error.code", code)
    span.set_status(Status(StatusCode.ERROR, code))


def _start_child(name: str, parent: Span, attributes: dict[str, Any]) -> Span:
    return _tracer.start_span(
        name, context=trace.set_span_in_context(parent), attributes=attributes
    )


def run_started(
    run_id: str, *, trace_id: str, session_id: str, model: str | None, mode: str, task: str
) -> None:
    """``openfoal.run``: a child of the current request span (a root of the run's trace
    when it started elsewhere, e.g. a notebook cell), with its first model call."""
    current = trace.get_current_span().get_span_context()
    parent = None if current.trace_id == _int_id(trace_id) else otel_context.Context()
    token = _pinned.set(_int_id(trace_id))
    try:
        span = _tracer.start_span(
            "openfoal.run",
            context=parent,
            attributes={
                "openfoal.session.id": session_id,
                "openfoal.run.id": run_id,
                "openfoal.run.task": task,
                "openfoal.runtime_mode": mode,
                "gen_ai.request.model": model or "",
            },
        )
    finally:
        _pinned.reset(token)
    spans = _RunSpans(run=span, model_name=model or "")
    _runs[run_id] = spans
    _next_model(spans)


def _next_model(spans: _RunSpans) -> None:
    spans.model = _start_child(
        "openfoal.model_call",
        spans.run,
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": spans.model_name},
    )


def model_message(run_id: str, role: str, tool_calls: int) -> None:
    """The kernel stored a message: an assistant one ends the model call, the last tool
    result of its calls starts the next one."""
    spans = _runs.get(run_id)
    if spans is None:
        return
    if role == "assistant" and spans.model is not None:
        spans.model.set_attribute("openfoal.model.tool_calls", tool_calls)
        spans.model.end()
        spans.last_model, spans.model = spans.model, None
        spans.pending_results = tool_calls
    elif role == "tool" and spans.model is None and spans.pending_results > 0:
        spans.pending_results -= 1
        if spans.pending_results == 0:
            _next_model(spans)


def tool_started(run_id: str, payload: dict[str, Any]) -> None:
    """``openfoal.tool_call``: a child of the model call that asked for it."""
    spans = _runs.get(run_id)
    if spans is None:
        return
    call_id = str(payload.get("toolCallId"))
    spans.tools[call_id] = _start_child(
        "openfoal.tool_call",
        spans.last_model or spans.run,
        {
            "gen_ai.tool.name": str(payload.get("toolName")),
            "gen_ai.tool.call.id": call_id,
            "openfoal.runtime_mode": str(payload.get("runtimeMode") or ""),
            "openfoal.gate.decision": "allow",
        },
    )


def tool_gated(run_id: str, gate: dict[str, Any]) -> None:
    """A gate asked about (or decided) a tool call: its risk and the decision."""
    spans = _runs.get(run_id)
    span = spans.tools.get(str(gate.get("toolCallId"))) if spans else None
    if span is None:
        return
    span.set_attribute("openfoal.tool.risk", str(gate.get("risk") or ""))
    span.set_attribute("openfoal.gate.decision", "gate")
    span.set_attribute("openfoal.gate.id", str(gate.get("gateId") or ""))
    if gate.get("status") and gate.get("status") != "pending":
        span.set_attribute("openfoal.gate.outcome", str(gate.get("status")))


def tool_ended(run_id: str, payload: dict[str, Any]) -> None:
    """The tool call's result: its status ends the span."""
    spans = _runs.get(run_id)
    span = spans.tools.pop(str(payload.get("toolCallId")), None) if spans else None
    if span is None:
        return
    status = str(payload.get("status"))
    span.set_attribute("openfoal.tool.status", status)
    if status == "denied":
        span.set_attribute("openfoal.gate.decision", "deny")
    if status != "success":
        span.set_status(Status(StatusCode.ERROR, status))
    span.end()


def run_ended(run_id: str, status: str, usage: dict[str, Any], error: Any = None) -> None:
    """End the run's span (and whatever of it is still open) with its final status."""
    spans = _runs.pop(run_id, None)
    if spans is None:
        return
    failed = status != "completed"
    for span in [*spans.tools.values(), *([spans.model] if spans.model else [])]:
        if failed:
            span.set_status(Status(StatusCode.ERROR, status))
        span.end()
    run = spans.run
    run.set_attribute("openfoal.run.status", status)
    for key, attr in (("inputTokens", "input_tokens"), ("outputTokens", "output_tokens")):
        if isinstance(usage.get(key), int):
            run.set_attribute(f"gen_ai.usage.{attr}", usage[key])
    if failed:
        code = error.get("code") if isinstance(error, dict) else None
        if code:
            run.set_attribute("openfoal.error.code", str(code))
        run.set_status(Status(StatusCode.ERROR, str(code or status)))
    run.end()


def audit(
    entry_id: str, action: str, resource: str, trace_id: str, run_id: str | None, detail: Any
) -> None:
    """An ``openfoal.audit`` event on the span the entry belongs to (same trace)."""
    spans = _runs.get(run_id or "")
    span: Span | None = None
    if spans is not None:
        call_id = detail.get("toolCallId") if isinstance(detail, dict) else None
        span = spans.tools.get(str(call_id)) if call_id else None
        span = span or spans.run
    else:
        current = trace.get_current_span()
        if current.get_span_context().trace_id == _int_id(trace_id):
            span = current
    if span is None or not span.is_recording():
        return
    span.add_event(
        "openfoal.audit",
        {
            "openfoal.audit.id": entry_id,
            "openfoal.audit.action": action,
            "openfoal.audit.resource": resource,
            "openfoal.trace_id": trace_id,
        },
    )


def open_runs() -> Sequence[str]:
    """Runs whose spans are open (for tests and diagnostics)."""
    return list(_runs)
