"""The ``zoneflow`` command: parse, call :mod:`zoneflow.central`, render.

Every command reads and changes through central, as the REST API does; the
commands that run a daemon (conductor, mdns, api, all-in-one, targets up)
start it. Errors are one line on stderr and a non-zero exit status; a
traceback only with ``--debug``.

- :mod:`~zoneflow.cli.main`: the parser, and running the command it picked.
- :mod:`~zoneflow.cli.output`: tables, ``--json``, error messages and exit statuses.
- :mod:`~zoneflow.cli.changes`: making a change (its job posted at once),
  ``--wait`` and ``--progress``, and the project a command acts for.
- one module per command group: :mod:`~zoneflow.cli.db`, :mod:`~zoneflow.cli.pool`,
  :mod:`~zoneflow.cli.zone` (and :mod:`~zoneflow.cli.zone_reads`),
  :mod:`~zoneflow.cli.recordset` (and :mod:`~zoneflow.cli.recordset_reads`),
  :mod:`~zoneflow.cli.job`, :mod:`~zoneflow.cli.flow`,
  :mod:`~zoneflow.cli.targets`, :mod:`~zoneflow.cli.daemons`.

Start-up: the parser names each command as ``module:function`` and
:func:`main.main` imports only the chosen command's module, after
``config.setup``; so ``zoneflow --help`` imports neither oslo.config nor
SQLAlchemy nor TaskFlow, and the command modules import what they use at
their top. The two read commands (``zone list``, ``zone show``, in
zone_reads) import nothing heavy: on a local SQLite database they read with
the standard library alone (:func:`zoneflow.central.reads.fast`). The only
imports left inside functions keep that start-up fast: main's (the
configuration, read only by the commands that need it) and daemons' (each
service's server, loaded only by its own command).
"""

from zoneflow.cli.main import main
from zoneflow.cli.output import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERNAL

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_INTERNAL", "main"]
