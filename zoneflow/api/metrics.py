"""``/metrics``: Prometheus's text format, the API's requests beside the engines' jobs.

- ``zoneflow_api_requests_total{method, route, status}``: requests answered,
  by route template (``/v2/zones/{zone_id}``, never the raw path, which
  would make a series per zone) and status code;
- ``zoneflow_api_request_seconds{method, route}``: how long each took to
  answer, from the first byte in to the response's start;
- ``zoneflow_api_requests_in_progress``: requests being handled now;
- ``zoneflow_model_drift_total``: how many zones and per-target rows the
  propagation model's sweeps (zoneflow.model) found differing from storage;
  any says a write reached storage without its event;

and, in the same registry, the job and task metrics of
:mod:`zoneflow.engine.metrics` (they move in a process that runs a
conductor, such as ``zoneflow all-in-one``). ``/metrics`` needs no
credentials, as Prometheus scrapes expect: it shows counts and timings,
no project's data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import prometheus_client
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import metrics_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zoneflow import model
from zoneflow.engine import metrics as engine_metrics

REQUESTS = prometheus_client.Counter(
    "zoneflow_api_requests",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=engine_metrics.REGISTRY,
)
REQUEST_SECONDS = prometheus_client.Histogram(
    "zoneflow_api_request_seconds",
    "Time the API took to answer a request, by method and route template.",
    ["method", "route"],
    registry=engine_metrics.REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_PROGRESS = prometheus_client.Gauge(
    "zoneflow_api_requests_in_progress",
    "API requests being handled now.",
    registry=engine_metrics.REGISTRY,
)


class _ModelDrift:
    """``zoneflow_model_drift_total``, read from the model when scraped."""

    def collect(self) -> Iterator[metrics_core.Metric]:
        yield metrics_core.CounterMetricFamily(
            "zoneflow_model_drift",
            "Zones and per-target rows the propagation model's sweeps found to differ "
            "from storage: any means a write reached storage without its event.",
            value=model.drift_found(),
        )


engine_metrics.REGISTRY.register(_ModelDrift())

# A request no route matched (a 404 for an unknown URL): one series for all.
UNMATCHED = "unmatched"

router = APIRouter(tags=["zoneflow"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics of the API and of the jobs run in this process (zoneflow)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def show_metrics() -> Response:
    return Response(
        prometheus_client.generate_latest(engine_metrics.REGISTRY),
        media_type=prometheus_client.CONTENT_TYPE_LATEST,
    )


class _Measure:
    """Count and time every HTTP request by the route that answered it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                REQUEST_SECONDS.labels(scope["method"], _route(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            IN_PROGRESS.dec()
            REQUESTS.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", UNMATCHED))


def install(app: FastAPI) -> None:
    """Serve ``/metrics`` and measure every request (innermost: the route is known)."""
    app.include_router(router)
    app.add_middleware(_Measure)
