"""The control-program runner every command-line backend (rndc, knotc, nsd-control) uses."""

from __future__ import annotations

import pytest

from zoneflow import exceptions, objects
from zoneflow.backends.impl_fake import FakeBackend

TARGET = objects.PoolTarget(
    id="t", pool_id="p", type="fake", description="fake-under-test", masters=(), options={}
)


def _no_answer() -> exceptions.BackendError:
    return exceptions.BackendUnreachable(TARGET.label, "no answer: is it running?")


def test_output_and_status_come_back() -> None:
    status, output = FakeBackend(TARGET).run_control(
        "sh", "dash", ["-c", "echo out; echo err >&2; exit 3"], timeout=5, no_answer=_no_answer
    )
    assert (status, output) == (3, "out\nerr")


def test_a_missing_program_names_the_package_to_install() -> None:
    with pytest.raises(exceptions.BackendError, match="apt-get install no-such-pkg") as raised:
        FakeBackend(TARGET).run_control(
            "no-such-control-program", "no-such-pkg", [], timeout=5, no_answer=_no_answer
        )
    assert "fake-under-test" in str(raised.value)


def test_a_program_that_hangs_is_cut_off_with_the_callers_message() -> None:
    with pytest.raises(exceptions.BackendUnreachable, match="is it running"):
        FakeBackend(TARGET).run_control(
            "sleep", "coreutils", ["10"], timeout=0.2, no_answer=_no_answer
        )
