"""The producer's settings, read and checked once at start.

oslo.config checks an option's value only when it is read: a bad
``[producer]`` value would otherwise surface as a traceback in the middle of
a pass. Reading them all here turns it into one clear error at start.
"""

from __future__ import annotations

import dataclasses
import datetime

from oslo_config import cfg

from zoneflow import exceptions
from zoneflow.producer import options

CONF = options.CONF


@dataclasses.dataclass(frozen=True)
class Settings:
    shards: int
    shard_path: str
    rebalance_wait: float
    recovery_interval: float
    pending_age: float
    recovery_batch: int
    audit_interval: float
    audit_batch: int
    audit_in_flight: int
    audit_timeout: float
    audit_retries: int
    purge_interval: float
    deleted_zone_retention: float
    # From [conductor] and [jobboard], read here with the rest.
    job_retention: float
    session_timeout: float

    @property
    def audit_wait(self) -> float:
        """The longest an audit waits on a silent target for one zone."""
        return self.audit_timeout * (self.audit_retries + 1)


def read() -> Settings:
    """The settings, or InvalidConfig naming the option that is wrong and why."""
    values = {}
    for field in dataclasses.fields(Settings):
        group = {"job_retention": "conductor", "session_timeout": "jobboard"}.get(
            field.name, "producer"
        )
        try:
            values[field.name] = getattr(getattr(CONF, group), field.name)
        except (cfg.Error, ValueError) as exc:
            raise exceptions.InvalidConfig(
                f"[{group}] {field.name} in zoneflow.conf is invalid: {_why(exc)}"
            ) from exc
    settings = Settings(**values)
    _check(settings)
    return settings


def _why(exc: Exception) -> str:
    # oslo's message leads with where the value came from; its reason is last.
    return str(exc).rpartition("is not valid: ")[2] or str(exc)


def _check(settings: Settings) -> None:
    if not settings.shard_path.startswith("/") or settings.shard_path.endswith("/"):
        raise exceptions.InvalidConfig(
            f"[producer] shard_path {settings.shard_path!r} is not a ZooKeeper path: give an "
            "absolute path without a trailing slash, e.g. /zoneflow/producer/shards"
        )
    if settings.audit_interval and settings.audit_wait >= settings.audit_interval:
        raise exceptions.InvalidConfig(
            f"[producer] audit_timeout × (audit_retries + 1) = {settings.audit_wait:g} s is not "
            f"below audit_interval ({settings.audit_interval:g} s): an audit could not finish "
            "before the next is due; shorten the timeout or lengthen the interval"
        )


def utcnow() -> datetime.datetime:
    """Now, as the database's timestamps are written (UTC, naive)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
