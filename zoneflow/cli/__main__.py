"""``python -m zoneflow.cli``: the ``zoneflow`` command."""

import sys

from zoneflow.cli.main import main

sys.exit(main())
