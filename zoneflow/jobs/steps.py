"""The names of a job's logbook and of its flow's steps, each built here from typed parts.

A name is what TaskFlow finds a step's persisted state by, so it never
changes for a step (a resumed job must find the atoms its last run wrote).
Nothing parses a name back: a reader that needs to know what a step is
about (its target, its nameserver) asks the flow, rebuilt from the job's
logbook, for the :class:`Step` each task carries (:func:`steps_of`).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterator
from typing import Any

from taskflow import engines
from taskflow import flow as tf_flow
from taskflow.persistence import models

LOG = logging.getLogger(__name__)


class StepKind(enum.StrEnum):
    """What a step of a job's flow does."""

    BEGIN = "begin"
    ON_TARGET = "on-target"  # create, update, delete or recover the zone on one target
    TAKE_BACK = "take-back-if-deleted"
    CONSENSUS = "consensus-check"
    NOTIFY = "send-notify"
    POLL = "poll"  # ask one nameserver for the serial, or the zone's removal
    STATUS = "update-status"
    DRAIN = "drain-target"
    DROP = "drop-target"


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a job's flow: its kind and what it is about; :attr:`name` is its atom's."""

    kind: StepKind
    # ON_TARGET: create, update, delete or recover; POLL: serial, removal or wanted-state.
    verb: str = ""
    target_id: str = ""
    host: str = ""
    port: int = 0

    @property
    def name(self) -> str:
        if self.kind == StepKind.ON_TARGET:
            return f"{self.verb}-zone-on-target-{self.target_id}"
        if self.kind == StepKind.NOTIFY:
            return f"send-notify-{self.nameserver}"
        if self.kind == StepKind.POLL:
            return f"poll-for-{self.verb}-{self.nameserver}"
        return self.kind.value

    @property
    def family(self) -> str:
        """What metrics count it under: its name without a target or a nameserver
        (a label per target would grow without bound)."""
        if self.kind == StepKind.ON_TARGET:
            return f"{self.verb}-zone"
        if self.kind == StepKind.POLL:
            return f"poll-for-{self.verb}"
        return self.kind.value

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"


def on_target(verb: str, target_id: str) -> Step:
    return Step(StepKind.ON_TARGET, verb=verb.lower(), target_id=target_id)


def notify(host: str, port: int) -> Step:
    return Step(StepKind.NOTIFY, host=host, port=port)


def poll(what: str, host: str, port: int) -> Step:
    return Step(StepKind.POLL, verb=what, host=host, port=port)


BEGIN = Step(StepKind.BEGIN)
TAKE_BACK = Step(StepKind.TAKE_BACK)
CONSENSUS = Step(StepKind.CONSENSUS)
STATUS = Step(StepKind.STATUS)
DRAIN = Step(StepKind.DRAIN)
DROP = Step(StepKind.DROP)


#: The serial a create, update or delete job brings its zone to: the zone's own
#: when the job begins (zoneflow.flows.begin), which the updates that rode on the
#: job while it waited have raised past the serial it was posted with.
ZONE_SERIAL = "zone_serial"


def target_result(target_id: str) -> str:
    """The name under which a target's outcome is stored in the flow."""
    return f"target:{target_id}"


def served_result(host: str, port: int) -> str:
    """The name under which what a nameserver serves is stored in the flow."""
    return f"served:{host}:{port}"


def zone_logbook(kind: str, zone_name: str, serial: int) -> str:
    """The name of a zone job's logbook (``job list``, and ``--progress`` finds it by it)."""
    return f"{kind} {zone_name} serial {serial}"


def batch_logbook(kind: str, zone_names: list[str]) -> str:
    """The name of the logbook of a job about several zones (create-zones, ...)."""
    return f"{kind} {zone_names[0]} and {len(zone_names) - 1} more"


def target_logbook(kind: str, label: str) -> str:
    """The name of a pool target job's logbook."""
    return f"{kind} {label}"


def steps_of(flow_detail: models.FlowDetail) -> dict[str, Step]:
    """Atom name -> the step it is, from the flow rebuilt from ``flow_detail``.

    Empty when the flow cannot be rebuilt (posted by another zoneflow
    version): a reader then says less, never something wrong.
    """
    try:
        flow = engines.flow_from_detail(flow_detail)
    except (ValueError, ImportError, TypeError, KeyError) as exc:
        LOG.debug("flow %s not rebuilt: %s", flow_detail.uuid, exc)
        return {}
    return {
        atom.name: atom.step
        for atom in atoms(flow)
        if isinstance(getattr(atom, "step", None), Step)
    }


def atoms(flow: Any) -> Iterator[Any]:
    """Every atom of ``flow``, in its subflows too."""
    for item in flow:
        if isinstance(item, tf_flow.Flow):
            yield from atoms(item)
        else:
            yield item
