"""What the inspector concludes from one target's health checks: a small state machine.

UP ──(``misses`` consecutive misses)──► DOWN ──(``answers`` consecutive answers)──► UP

A target is DOWN since its first miss of the run that made it DOWN (the
failure happened before that check, after the last answer). Pure logic with
the time passed in, so that it is tested without servers or clocks.
"""

from __future__ import annotations

import dataclasses
import datetime

from zoneflow import objects


@dataclasses.dataclass(frozen=True)
class Went:
    """A target's change of health: to ``health``, since ``since``, because ``reason``."""

    health: objects.TargetHealth
    since: datetime.datetime
    reason: str | None = None


class Watch:
    """One target's health as its checks say: call :meth:`observe` with each result."""

    def __init__(
        self, *, misses: int, answers: int, health: objects.TargetHealth = objects.TargetHealth.UP
    ) -> None:
        self.misses_to_down = misses
        self.answers_to_up = answers
        self.health = health
        self._run = 0
        self._run_began: datetime.datetime | None = None

    def observe(self, failure: str | None, at: datetime.datetime) -> Went | None:
        """Take one check's result (None: it answered; else why not) made at ``at``;
        return the change of health it completes, if it completes one."""
        against = failure is not None if self.health == objects.TargetHealth.UP else failure is None
        if not against:
            self._run, self._run_began = 0, None
            return None
        if self._run == 0:
            self._run_began = at
        self._run += 1
        if self.health == objects.TargetHealth.UP and self._run >= self.misses_to_down:
            return self._go(objects.TargetHealth.DOWN, failure)
        if self.health == objects.TargetHealth.DOWN and self._run >= self.answers_to_up:
            return self._go(objects.TargetHealth.UP, None)
        return None

    def follow(self, health: objects.TargetHealth) -> None:
        """Take ``health`` as recorded elsewhere (another inspector); start counting again."""
        if health != self.health:
            self.health, self._run, self._run_began = health, 0, None

    def _go(self, health: objects.TargetHealth, reason: str | None) -> Went:
        assert self._run_began is not None
        went = Went(health, self._run_began, reason)
        self.health, self._run, self._run_began = health, 0, None
        return went
