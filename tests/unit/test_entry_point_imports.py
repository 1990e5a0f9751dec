"""The entry points read through central: the CLI's modules and the API's
routes import no storage, job records, engine nor TaskFlow adapter of their
own (until import-linter's contracts say so for every layer)."""

from __future__ import annotations

import ast
import pathlib

import zoneflow

PACKAGE = pathlib.Path(zoneflow.__file__).parent

# Below central, and read only through it by an entry point.
BELOW_CENTRAL = (
    "zoneflow.storage",
    "zoneflow.jobs",
    "zoneflow.engine",
    "zoneflow.taskflow_adapter",
    "zoneflow.flows",
)
# The CLI's commands that run a service start it, and may import its server.
SERVICES = {
    "daemons.py": ("zoneflow.conductor", "zoneflow.mdns", "zoneflow.api", "zoneflow.allinone")
}


def _imports(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, names imported from a package included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _reaching_below(path: pathlib.Path, allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        name
        for name in _imports(path)
        if name.startswith(BELOW_CENTRAL + ("zoneflow.conductor", "zoneflow.mdns"))
        and not name.startswith(allowed)
    )


def test_cli_modules_reach_storage_and_jobs_only_through_central() -> None:
    offending = {
        path.name: found
        for path in sorted((PACKAGE / "cli").glob("*.py"))
        if (found := _reaching_below(path, SERVICES.get(path.name, ())))
    }
    assert offending == {}, f"read these through zoneflow.central instead: {offending}"


def test_api_routes_reach_storage_only_through_central() -> None:
    offending = {
        path.name: found
        for path in sorted((PACKAGE / "api" / "v2").glob("*.py"))
        if (found := _reaching_below(path))
    }
    assert offending == {}, f"read these through zoneflow.central instead: {offending}"
