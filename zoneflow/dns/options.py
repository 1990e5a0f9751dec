"""The TSIG keys zoneflow signs and verifies zone transfers and NOTIFYs with.

Registered on import, which is all this module does: it imports nothing but
oslo.config, so :func:`zoneflow.config.setup` can register every package's
options without loading the package (see :mod:`zoneflow.opts`).
"""

from __future__ import annotations

from oslo_config import cfg

CONF = cfg.CONF

tsig_opts = [
    cfg.MultiStrOpt(
        "key",
        default=[],
        secret=True,
        help="A TSIG key as NAME:ALGORITHM:SECRET with the secret in base64, e.g. "
        "'transfer-key:hmac-sha256:c2VjcmV0...'; one line per key. Algorithms: "
        "hmac-sha256 (advised), hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5.",
    ),
]
CONF.register_opts(tsig_opts, group="tsig")
