"""Nameserver backends, chosen by a pool target's ``type`` through stevedore."""

from __future__ import annotations

from collections.abc import Callable

from stevedore import driver

from zoneflow import exceptions, objects
from zoneflow.backends.base import Backend

NAMESPACE = "zoneflow.backends"

__all__ = ["Backend", "get_backend"]


def get_backend(target: objects.PoolTarget) -> Backend:
    """The backend for ``target``, loaded from the ``zoneflow.backends`` entry points."""
    made = _backend_class(target)
    try:
        backend = made(target)
    except Exception as exc:  # the backend refused the target's options
        raise _unloadable(target, exc) from exc
    if not isinstance(backend, Backend):
        raise exceptions.InvalidPoolConfig(
            f"target {target.label}: {target.type!r} is registered as a backend but is not one"
        )
    return backend


# Backend classes by type, once found: every task on a target asks for its backend,
# and stevedore's search of the entry points cost a conductor 1 % of its CPU.
_CLASSES: dict[str, Callable[[objects.PoolTarget], object]] = {}


def _backend_class(target: objects.PoolTarget) -> Callable[[objects.PoolTarget], object]:
    found = _CLASSES.get(target.type)
    if found is not None:
        return found
    try:
        manager: driver.DriverManager = driver.DriverManager(NAMESPACE, target.type)
    except Exception as exc:  # stevedore raises NoMatches or the plugin's import error
        raise _unloadable(target, exc) from exc
    found = _CLASSES[target.type] = manager.driver
    return found


def _unloadable(target: objects.PoolTarget, why: Exception) -> exceptions.InvalidPoolConfig:
    return exceptions.InvalidPoolConfig(
        f"target {target.label}: no backend of type {target.type!r} can be loaded ({why}); "
        "check the target's type in pools.yaml"
    )
