"""Making a change: its job posted at once, and waiting for it (``--wait``,
``--progress``) until the nameservers serve it or it fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from zoneflow import exceptions, objects
from zoneflow.central import posting, waiting
from zoneflow.cli import output

# A wait on a terminal shows the job's steps once it has lasted this long.
PROGRESS_AFTER = 2.0


# --- posting jobs --------------------------------------------------------------


def change(make_change: Callable[[], Any]) -> Any:
    """Make one change and post its job (the board is checked first, see JobPoster)."""
    poster = posting.JobPoster(name="zoneflow-cli")
    try:
        result = make_change()
    except BaseException:
        poster.close()
        raise
    try:
        poster.post()
    except exceptions.ZoneflowError as exc:
        # The change and its job are saved together; only posting failed,
        # and any conductor's relay will post the job from the outbox.
        print(
            f"zoneflow: warning: the change is saved but its job could not be posted yet "
            f"({exc}); a running conductor will post it",
            file=sys.stderr,
        )
    return result


# --- waiting -------------------------------------------------------------------


def wait(args: argparse.Namespace, zone_id: str) -> objects.Zone:
    """Wait until the zone's job has finished (the zone leaves PENDING).

    With --progress, each step of the job is printed on stderr as it finishes;
    on a terminal, so are they once the wait has lasted PROGRESS_AFTER seconds,
    so that a slow change shows what it is waiting for.
    """
    started = time.monotonic()
    deadline = started + args.wait_timeout
    progress = _progress(zone_id, started) if args.progress else None
    on_terminal = _on_terminal()
    while True:
        zone = waiting.zone_by_id(zone_id)
        if zone is None:
            raise exceptions.ZoneNotFound(f"zone {zone_id} is gone")
        if progress is None and on_terminal and time.monotonic() - started >= PROGRESS_AFTER:
            progress = _progress(zone_id, started)
        if progress is not None:
            progress.follow(zone.name, zone.serial, output.say)
        if zone.status != objects.Status.PENDING:
            if progress is not None:
                _follow_to_the_end(progress, zone)
            return zone
        if time.monotonic() > deadline:
            raise exceptions.ZoneflowError(
                f"zone {zone.name} is still PENDING after {args.wait_timeout:g}s: is a conductor "
                "running? ('zoneflow conductor', or 'zoneflow all-in-one')"
            )
        time.sleep(0.05)


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _progress(zone_id: str, started: float) -> Any:
    """A follower of the zone's job, whose lines count the time from ``started``."""
    follower = waiting.follow(zone_id)
    follower.started = started
    return follower


def _follow_to_the_end(progress: Any, zone: objects.Zone, grace: float = 2.0) -> None:
    """The zone's status is the job's last step: print the steps still landing."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        state = progress.follow(zone.name, zone.serial, output.say)
        if state is None or waiting.is_over(state):
            return
        time.sleep(0.05)


def failed(zone: objects.Zone) -> int:
    """Say on stderr why the zone's job failed and how to see more; the exit status."""
    job_id, reason = waiting.failed_job(zone)
    more = (
        f"'zoneflow job show {job_id}' shows each step"
        if job_id is not None
        else f"'zoneflow zone status {zone.name}' shows each target"
    )
    print(
        f"zoneflow: error: zone {zone.name} is in ERROR: {reason or 'no reason recorded'}; {more}",
        file=sys.stderr,
    )
    return output.EXIT_ERROR


def finish_zone_change(args: argparse.Namespace, zone: objects.Zone) -> int:
    """Show the zone, once its change is served with --wait; the exit status."""
    if args.wait:
        zone = wait(args, zone.id)
    output.show(args, zone)
    if args.wait and zone.status == objects.Status.ERROR:
        return failed(zone)
    return 0
