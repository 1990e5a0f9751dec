"""Ports for local servers: any free one, or one of $ZONEFLOW_PORT_RANGE."""

from __future__ import annotations

import socket

import pytest

from zoneflow import exceptions
from zoneflow.local import ports


def test_ports_come_from_the_range_once_each_and_never_a_busy_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((ports.HOST, 0))
        taken = busy.getsockname()[1]
        monkeypatch.setenv(ports.PORT_RANGE_ENV, f"{taken}-{taken + 2}")
        monkeypatch.setattr(ports, "_handed_out", {})
        with pytest.raises(exceptions.LocalServerError, match="no port free"):
            for _ in range(4):
                handed.append(ports.free_port())
    assert set(handed) <= {taken + 1, taken + 2}
    assert len(handed) == len(set(handed))


@pytest.mark.parametrize("text", ["20000", "b-c", "30000-20000", "0-10", "65000-70000"])
def test_a_port_range_that_is_not_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(ports.PORT_RANGE_ENV, text)
    with pytest.raises(exceptions.InvalidConfig, match="FIRST-LAST"):
        ports.free_port()


def test_without_a_range_the_kernel_offers_ports_each_handed_out_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ports.PORT_RANGE_ENV, raising=False)
    handed = [ports.free_port() for _ in range(5)]
    assert len(set(handed)) == 5
    for port in handed:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((ports.HOST, port))
