"""The dashboard's pages: overview, zones, a zone, jobs, a job, a target.

Every read goes through central with the caller's scope, as the API's
routes do, so a page shows exactly what the same caller would get from
``/v2``. Pools, targets and daemons are an operator's (admin) as in the API.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from zoneflow import exceptions, objects
from zoneflow.api import auth
from zoneflow.central import events as central_events
from zoneflow.central import health as central_health
from zoneflow.central import jobs as central_jobs
from zoneflow.central import pools as central_pools
from zoneflow.central import recordsets as central_recordsets
from zoneflow.central import services as central_services
from zoneflow.central import status as central_status
from zoneflow.central import zones as central_zones
from zoneflow.dashboard import identity, render

router = APIRouter(prefix=render.ROOT, include_in_schema=False)

ZONES_PER_PAGE = 25
JOBS_PER_PAGE = 50
# Jobs per second are counted over this window of recent job ends.
RATE_WINDOW = datetime.timedelta(seconds=60)
# Recent jobs read for the overview's figures.
RECENT_JOBS = 500
RECORD_TYPES = (
    "A",
    "AAAA",
    "CNAME",
    "MX",
    "TXT",
    "SRV",
    "NS",
    "PTR",
    "CAA",
    "SSHFP",
    "SPF",
    "NAPTR",
)
# What a run of events held for a page may reach back to (events are kept for
# [events] retention; a page shows what is still kept).
_EVENT_READS = 50
# A job's states while it is not over (TaskFlow's flow states).
_UNDER_WAY = frozenset({"PENDING", "RUNNING", "RESUMING", "REVERTING", "SUSPENDED"})


def _begin(request: Request) -> tuple[auth.Context, int]:
    """The caller, and the newest event before the page is read: the page's stream
    starts after it, so no change between reading and following is missed."""
    ctx = identity.context(request)
    newest = central_events.follow(central_events.event_filter(scope=ctx.scope), after=None)
    return ctx, newest.last_id


def _base(request: Request, ctx: auth.Context, after: int, active: str) -> dict[str, Any]:
    return {
        "request": request,
        "ctx": ctx,
        "active": active,
        "noauth": identity.noauth(request),
        "after": after,
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _naive(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def drawn(request: Request, part: str) -> bool:
    """Whether this request draws ``part``: the whole page does, a live refresh only the
    part it names (what the others need is then not read at all)."""
    asked = request.query_params.get("part")
    return asked is None or asked == part


def kept_events(wanted: objects.EventFilter) -> list[objects.Event]:
    """The events still kept that ``wanted`` matches, oldest first."""
    subscription = central_events.follow(wanted, after=0)
    found: list[objects.Event] = []
    for _ in range(_EVENT_READS):
        more = subscription.next(0.0)
        if not more:
            break
        found += more
    return found


# --- overview --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetRow:
    target: objects.PoolTarget
    health: str
    since: datetime.datetime | None
    maintenance: str | None
    summary: Any


@router.get("")
@render.guarded
def overview(request: Request) -> Response:
    ctx, after = _begin(request)
    recent = central_jobs.find_jobs(
        {},
        objects.Paging(RECENT_JOBS, sort_key="updated_at", sort_dir=objects.DESC),
        project_id=ctx.scope,
    ).items
    since = _now() - RATE_WINDOW
    ended = [j for j in recent if (_naive(j.info.updated_at) or datetime.datetime.min) >= since]
    values = _base(request, ctx, after, "overview")
    values.update(
        jobs_per_second=len(ended) / RATE_WINDOW.total_seconds(),
        failures=[j for j in recent if j.info.failed][:10],
        failed_recently=sum(1 for j in ended if j.info.failed),
        running=[j for j in recent if j.info.state in _UNDER_WAY],
        pools=[],
        services=[],
        alarms=[],
    )
    if ctx.is_admin:
        values.update(_operators_view())
    return render.page(request, "overview.html", **values)


def _operators_view() -> dict[str, Any]:
    states = central_health.states()
    pools = []
    for pool in central_pools.list_pools():
        serving = central_status.pool_serving(pool.id)
        rows = [
            TargetRow(
                target,
                states[target.id].health if target.id in states else objects.TargetHealth.UP,
                states[target.id].since if target.id in states else None,
                states[target.id].maintenance if target.id in states else None,
                summary,
            )
            for target, summary in serving.targets
        ]
        pools.append((pool, serving.zones, rows))
    services = central_services.find_service_statuses(
        {}, objects.Paging(200, sort_key="service_name")
    ).items
    down = [row for _, _, rows in pools for row in rows if row.health == objects.TargetHealth.DOWN]
    alarms = kept_events(central_events.event_filter(scope=None, types=["alarm"]))
    return {
        "pools": pools,
        "services": services,
        "open_alarms": down,
        "alarms": list(reversed(alarms))[:10],
    }


# --- zones -----------------------------------------------------------------------------


@router.get("/zones")
@render.guarded
def zones(request: Request) -> Response:
    ctx, after = _begin(request)
    query = request.query_params.get("q", "").strip()
    status = request.query_params.get("status", "").strip()
    marker = request.query_params.get("marker") or None
    criteria = {}
    if query:
        criteria["name"] = f"*{query.lower()}*"
    if status:
        criteria["status"] = status
    found = central_zones.find_zones(
        criteria, objects.Paging(ZONES_PER_PAGE, marker, "name"), project_id=ctx.scope
    )
    values = _base(request, ctx, after, "zones")
    values.update(
        found=found,
        query=query,
        status=status,
        marker=marker,
        next_marker=found.items[-1].id if found.more and found.items else None,
        statuses=("ACTIVE", "PENDING", "ERROR"),
    )
    return render.page(request, "zones.html", **values)


@router.get("/zones/{zone_id}")
@render.guarded
def zone(request: Request, zone_id: str) -> Response:
    ctx, after = _begin(request)
    # Read whatever is drawn: it also refuses a zone of another project.
    serving = central_status.zone_serving(zone_id, project_id=ctx.scope)
    found = serving.zone
    history = (
        central_jobs.find_jobs(
            {"zone_id": found.id},
            objects.Paging(20, sort_key="created_at", sort_dir=objects.DESC),
            project_id=ctx.scope,
        )
        if drawn(request, "live_history")
        else None
    )
    values = _base(request, ctx, after, "zones")
    values.update(
        zone=found,
        serving=serving,
        recordsets=(
            central_recordsets.list_recordsets(found.id, project_id=ctx.scope)
            if drawn(request, "live_recordsets")
            else []
        ),
        history=history,
        record_types=RECORD_TYPES,
    )
    return render.page(request, "zone.html", **values)


# --- jobs ------------------------------------------------------------------------------


@router.get("/jobs")
@render.guarded
def jobs(request: Request) -> Response:
    ctx, after = _begin(request)
    state = request.query_params.get("state", "").strip()
    marker = request.query_params.get("marker") or None
    found = central_jobs.find_jobs(
        {"state": state} if state else {},
        objects.Paging(JOBS_PER_PAGE, marker, "created_at", objects.DESC),
        project_id=ctx.scope,
    )
    values = _base(request, ctx, after, "jobs")
    values.update(
        found=found,
        state=state,
        next_marker=found.items[-1].info.id if found.more and found.items else None,
    )
    return render.page(request, "jobs.html", **values)


@dataclasses.dataclass(frozen=True)
class Timing:
    """When a task started and ended (as its events say), and how long it took."""

    started: datetime.datetime | None
    ended: datetime.datetime | None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


# Task states that end a task's run (or its revert).
_ENDS = frozenset({"SUCCESS", "FAILURE", "REVERTED", "REVERT_FAILURE"})


def timings(job_id: str, events: Iterable[objects.Event]) -> dict[str, Timing]:
    """Each task's start (when it last began RUNNING) and its last end, from the job's
    task events: when the engine changed the state, else when the event was written."""
    started: dict[str, datetime.datetime] = {}
    ended: dict[str, datetime.datetime] = {}
    for event in events:
        if event.key != job_id:
            continue
        for task, seen in event.value.get("tasks", {}).items():
            if seen.get("started_at") is not None:
                started[task] = _stamped(seen["started_at"], event)
            if seen.get("state") in _ENDS:
                ended[task] = _stamped(seen.get("changed_at"), event)
    return {t: Timing(started.get(t), ended.get(t)) for t in set(started) | set(ended)}


def _stamped(at: object, event: objects.Event) -> datetime.datetime:
    """A time the conductor stamped (ISO 8601), as naive UTC like the stored timestamps;
    when the event was written if it has none."""
    try:
        changed = datetime.datetime.fromisoformat(str(at))
    except ValueError:
        return event.created_at
    return changed.astimezone(datetime.UTC).replace(tzinfo=None)


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def inline_svg(image: bytes) -> str:
    """Graphviz's SVG without its XML prologue and doctype, to sit in the page."""
    return _SVG_HEAD.sub("", image.decode("utf-8"), count=1)


@router.get("/jobs/{job_id}")
@render.guarded
def job(request: Request, job_id: str) -> Response:
    ctx, after = _begin(request)
    found = central_jobs.get_job(job_id, project_id=ctx.scope)
    info = found.info
    # The graph is drawn once, with the whole page: the script re-colours it after.
    graph, graph_error = "", None
    if drawn(request, "graph"):
        try:
            graph = inline_svg(central_jobs.job_graph(info.id, "svg", project_id=ctx.scope))
        except exceptions.ZoneflowError as exc:
            graph_error = exc.message
    task_events = (
        kept_events(
            central_events.event_filter(scope=ctx.scope, zone_id=info.zone_id, types=["task"])
        )
        if info.zone_id and drawn(request, "live_tasks")
        else []
    )
    values = _base(request, ctx, after, "jobs")
    values.update(
        job=found,
        info=info,
        graph=graph,
        graph_error=graph_error,
        timings=timings(info.id, task_events),
        states={atom.name: atom.state for atom in info.atoms},
        colours=central_jobs.state_colours(),
    )
    return render.page(request, "job.html", **values)


# --- a target --------------------------------------------------------------------------


@router.get("/targets/{target_id}")
@render.guarded
def target(request: Request, target_id: str) -> Response:
    ctx, after = _begin(request)
    if not ctx.is_admin:
        raise exceptions.Forbidden(
            f"GET {request.url.path} needs the admin role, as /v2/targets does; ask an operator"
        )
    found = central_health.find_target(target_id)
    state = central_health.states().get(found.id)
    alarms = [
        event
        for event in kept_events(central_events.event_filter(scope=None, types=["alarm"]))
        if event.key == found.id
    ]
    values = _base(request, ctx, after, "overview")
    values.update(
        target=found,
        state=state,
        health=state.health if state else objects.TargetHealth.UP,
        lagging=central_status.target_lagging(found),
        alarms=list(reversed(alarms))[:20],
    )
    return render.page(request, "target.html", **values)


# --- signing in ------------------------------------------------------------------------


@router.get("/login")
def login(request: Request) -> Response:
    values: dict[str, Any] = {
        "request": request,
        "ctx": None,
        "active": "login",
        "noauth": identity.noauth(request),
        "next": _next(request.query_params.get("next")),
        "roles": identity.ROLE_CHOICES,
        "error": None,
        "chosen": {},
    }
    return render.page(request, "login.html", **values)


def _next(value: str | None) -> str:
    """Where to go after signing in: a dashboard page only (never another site)."""
    if value and value.startswith(render.ROOT) and "//" not in value:
        return value
    return render.ROOT + "/"
