"""How the propagation model judges one target of one zone from its row and what mdns
saw: never served unless a row or a fetch says so, at a serial as new as wanted."""

from __future__ import annotations

import datetime

import pytest

from zoneflow import objects
from zoneflow.model.picture import Propagation, judge

T0 = datetime.datetime(2026, 12, 4, 12, 0, 0)
LATER = T0 + datetime.timedelta(seconds=5)
EARLIER = T0 - datetime.timedelta(seconds=5)


def _row(serial: int, status: str, at: datetime.datetime = T0) -> objects.TargetStatus:
    return objects.TargetStatus("z", "t", serial, status, None, at)


def _seen(
    kind: str, serial: int, at: datetime.datetime, *, completed: bool = True
) -> objects.ZoneTransfer:
    return objects.ZoneTransfer("127.0.0.1", serial, kind, at, at, 1, completed)


@pytest.mark.parametrize(
    ("row", "wanted", "expected"),
    [
        (None, 10, Propagation.MISSING),
        (_row(10, "ACTIVE"), 10, Propagation.SERVED),
        (_row(11, "ACTIVE"), 10, Propagation.SERVED),
        (_row(9, "ACTIVE"), 10, Propagation.BEHIND),
        (_row(9, "PENDING"), 10, Propagation.BEHIND),
        (_row(10, "BEHIND"), 10, Propagation.BEHIND),
        # The served serial never goes back in a row: its status says the zone is gone.
        (_row(10, "MISSING"), 10, Propagation.MISSING),
        (_row(10, "DELETED"), 10, Propagation.MISSING),
        (_row(10, "ERROR"), 10, Propagation.ERROR),
        # A word the model does not know yet is never shown as served.
        (_row(10, "SOMETHING-NEW"), 10, Propagation.BEHIND),
    ],
)
def test_a_row_alone(row: objects.TargetStatus | None, wanted: int, expected: Propagation) -> None:
    assert judge("t", "z", wanted, row).propagation == expected


def test_a_transfer_after_the_row_is_served_at_its_serial() -> None:
    served = judge("t", "z", 12, _row(10, "ACTIVE"), [_seen("IXFR", 12, LATER), None])
    assert (served.propagation, served.serial, served.seen_by) == (Propagation.SERVED, 12, "IXFR")
    assert served.last_seen == LATER and served.updated_at == T0


def test_a_transfer_before_the_row_does_not_overrule_it() -> None:
    served = judge("t", "z", 10, _row(10, "MISSING"), [_seen("AXFR", 10, EARLIER), None])
    assert (served.propagation, served.seen_by, served.last_seen) == (
        Propagation.MISSING,
        "recorded",
        T0,
    )


def test_a_transfer_cut_short_or_an_soa_query_says_only_when_it_was_seen() -> None:
    for seen in (_seen("AXFR", 10, LATER, completed=False), _seen("SOA", 0, LATER)):
        served = judge("t", "z", 10, None, [seen])
        assert (served.propagation, served.last_seen) == (Propagation.MISSING, LATER)


def test_an_ixfr_query_tells_the_serial_the_target_serves() -> None:
    served = judge("t", "z", 12, None, [None, _seen("IXFR-QUERY", 11, LATER)])
    assert (served.propagation, served.serial, served.status) == (Propagation.BEHIND, 11, "ACTIVE")
