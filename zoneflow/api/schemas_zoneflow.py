"""What zoneflow's own endpoints answer (Designate has no such resources).

``/v2/zones/{id}/status``, ``/v2/pools/{id}/status``, ``/v2/jobs``, ``/v2/jobs/{id}``: the models
describe what the routes in :mod:`zoneflow.api.v2.jobs` and
:mod:`zoneflow.api.v2.zone_status` return, so
``/openapi.json`` matches what is served. Times are in Designate's format.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from zoneflow.api.schemas import ListLinks, ListMetadata

# --- a zone's targets -------------------------------------------------------------


class TargetServing(BaseModel):
    target_id: str
    target: str = Field(description="the target's description, else type@host:port")
    type: str = Field(description="backend type (bind9, knot, ...); empty if no longer in the pool")
    serial: int | None = Field(description="the zone serial last seen served; null: not yet")
    status: str = Field(
        description="PENDING, ACTIVE or ERROR, as the last job left it; BEHIND while the "
        "target is DOWN or in maintenance"
    )
    error: str | None = Field(description="why the last action on this target failed")
    updated_at: str | None = Field(description="when this target's state was last recorded")
    current: bool = Field(description="the target serves the zone's current serial (or later)")
    in_pool: bool = Field(description="false: the target has left the zone's pool")
    last_seen: str | None = Field(
        default=None, description="when zoneflow last had news of this target with the zone"
    )
    seen_by: str | None = Field(
        default=None,
        description="what that news was: recorded (a job, the audit, the inspector), or what "
        "mdns saw the target do: AXFR, IXFR, IXFR-AXFR (a transfer), IXFR-QUERY, SOA",
    )


class ZoneStatusLinks(BaseModel):
    self: str
    zone: str


class ZoneStatus(BaseModel):
    zone_id: str
    zone_name: str
    serial: int = Field(description="the zone's current serial")
    status: str
    action: str
    error: str | None = Field(description="why the zone is in ERROR")
    targets: list[TargetServing]
    links: ZoneStatusLinks


# --- a pool's targets -------------------------------------------------------------


class TargetSummary(BaseModel):
    target_id: str
    target: str = Field(description="the target's description, else type@host:port")
    type: str
    served: int = Field(description="zones it serves at their current serial (or later)")
    behind: int = Field(description="zones it serves at an older serial, or not yet verified")
    missing: int = Field(description="zones it does not serve at all")
    error: int = Field(description="zones whose last action on it failed")
    state: str | None = Field(description="the target's health (UP, DOWN, ...); null: unknown")
    last_seen: str | None = Field(description="when zoneflow last had news of this target")


class PoolStatusLinks(BaseModel):
    self: str
    pool: str


class PoolStatus(BaseModel):
    pool_id: str
    pool_name: str
    zones: int = Field(description="the pool's live zones")
    targets: list[TargetSummary]
    links: PoolStatusLinks


# --- jobs ------------------------------------------------------------------------


class Atom(BaseModel):
    name: str
    state: str = Field(description="TaskFlow's atom state: PENDING, RUNNING, SUCCESS, ...")
    intention: str = Field(description="what the engine meant to do with it: EXECUTE, REVERT")
    error: str | None = Field(description="why the atom (or the target it acted on) failed")


class JobLinks(BaseModel):
    self: str
    flow: str = Field(description="the job's flow as SVG, atoms coloured by state")
    zone: str


class JobZone(BaseModel):
    id: str
    name: str
    serial: int = Field(description="the serial the zone's change was posted at")


class Job(BaseModel):
    id: str
    kind: str = Field(
        description="the flow: create-zone, update-zone, delete-zone, recover-zone, "
        "create-zones, update-zones, delete-zones, recover-zones (several zones of one "
        "pool and project), retire-target"
    )
    zone_id: str = Field(description="the job's zone; of a job of several zones, its first")
    zone_name: str
    zones: list[JobZone] = Field(
        description="every zone the job carries: its one zone, or each of a job of several"
    )
    project_id: str | None
    serial: int = Field(description="the zone serial this job brings to the nameservers")
    state: str = Field(
        description="PENDING, RUNNING, then SUCCESS (the zone got what the job was for), "
        "REVERTED, FAILURE, CANCELLED, LOST (failed) or SUPERSEDED (a newer job carries the zone)"
    )
    failed: bool = Field(description="whether the job ended without the zone getting its change")
    attempts: int = Field(description="runs conductors started")
    failed_attempts: int = Field(
        description="runs whose flow raised ([conductor] max_job_attempts)"
    )
    lost_attempts: int = Field(
        description="runs lost with their conductor: it died or lost its ZooKeeper session"
    )
    error: str | None = Field(
        description="why it failed or ended so; while running, the last error"
    )
    created_at: str | None
    updated_at: str | None
    links: JobLinks


class JobRun(BaseModel):
    number: int
    conductor: str
    ended: str = Field(description="running, finished (the run that ended the job), failed, lost")
    step: str | None = Field(description="a lost run: the step its conductor was lost at")
    error: str | None = Field(description="a failed run: its error")


class JobDetail(Job):
    atoms: list[Atom]
    runs: list[JobRun]


class JobList(BaseModel):
    jobs: list[Job]
    links: ListLinks
    metadata: ListMetadata


# --- targets' health and maintenance (the inspector, issue 15) ----------------------------


class TargetState(BaseModel):
    target_id: str
    target: str = Field(description="the target's description, else type@host:port")
    pool_id: str
    health: str = Field(description="UP or DOWN, as the inspector last judged it")
    since: str | None = Field(description="when it went DOWN (or UP again); null: always UP")
    maintenance: str | None = Field(
        description="ON (left out of thresholds), CATCHING_UP (ended, being caught up), null"
    )
    maintenance_since: str | None
    counted: bool = Field(description="whether pool thresholds count this target")


class TargetStateList(BaseModel):
    targets: list[TargetState]


class MaintenanceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maintenance: StrictBool = Field(
        description="true: leave the target out of thresholds; false: count it again once "
        "it has caught up"
    )
