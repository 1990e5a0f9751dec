"""Where zoneflow looks for its configuration and database when told nothing.

Apart from :mod:`zoneflow.config` and :mod:`zoneflow.storage.db`, which import
oslo.config, so that :mod:`zoneflow.storage.fastread` knows the same defaults
without importing it: each is written here only.
"""

from __future__ import annotations

import os

# Where zoneflow looks when no --config-file is given, first match wins.
DEFAULT_CONFIG_FILES = ("./zoneflow.conf", "/etc/zoneflow/zoneflow.conf")

# ``[database] connection``: SQLite in the current directory.
DEFAULT_CONNECTION = "sqlite:///zoneflow.sqlite"

# ``[database] busy_wait``, in seconds.
DEFAULT_BUSY_WAIT = 30.0
# ``[database] idle_in_transaction_timeout``, in seconds.
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = 30.0


def config_files() -> list[str]:
    """``$ZONEFLOW_CONFIG``, else the first of DEFAULT_CONFIG_FILES that exists, else none."""
    env = os.environ.get("ZONEFLOW_CONFIG")
    if env:
        return [env]
    return [path for path in DEFAULT_CONFIG_FILES if os.path.isfile(path)][:1]
