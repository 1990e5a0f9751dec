"""Nameserver backends, chosen by a pool target's ``type`` through stevedore."""

from __future__ import annotations

from stevedore import driver

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend

NAMESPACE = "zoneflow.backends"

__all__ = ["Backend", "get_backend"]


def get_backend(target: objects.PoolTarget) -> Backend:
    """The backend for ``target``, loaded from the ``zoneflow.backends`` entry points."""
    try:
        manager: driver.DriverManager = driver.DriverManager(
            NAMESPACE, target.type, invoke_on_load=True, invoke_args=(target,)
        )
    except Exception as exc:  # stevedore raises NoMatches or the plugin's import error
        raise exceptions.InvalidPoolConfig(
            f"target {target.label}: no backend of type {target.type!r} can be loaded ({exc}); "
            "check the target's type in pools.yaml"
        ) from exc
    backend = manager.driver
    if not isinstance(backend, Backend):
        raise exceptions.InvalidPoolConfig(
            f"target {target.label}: {target.type!r} is registered as a backend but is not one"
        )
    return backend
