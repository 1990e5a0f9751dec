"""One exception hierarchy for zoneflow.

Every class carries the HTTP status and the Designate-style error type the
API will answer with, so callers catch meaning and never parse message text.
A message says what was wrong and what to do about it; it never contains a
secret (TSIG keys, rndc keys, passwords).
"""

from __future__ import annotations


class ZoneflowError(Exception):
    """Base of every error zoneflow raises on purpose."""

    http_status: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- bad input (400) -------------------------------------------------------


class InvalidInput(ZoneflowError):
    http_status = 400
    error_type = "invalid_object"


class InvalidZoneName(InvalidInput):
    error_type = "invalid_zone_name"


class InvalidRecordSetName(InvalidInput):
    error_type = "invalid_recordset_name"


class InvalidRecordData(InvalidInput):
    error_type = "invalid_object"


class InvalidTTL(InvalidInput):
    error_type = "invalid_ttl"


class InvalidEmail(InvalidInput):
    error_type = "invalid_object"


class InvalidRecordSetLocation(InvalidInput):
    """A CNAME beside other data, or a record outside its zone."""

    error_type = "invalid_recordset_location"


class InvalidZoneFile(InvalidInput):
    """A zone file to import cannot be read, or holds a record zoneflow would refuse."""

    error_type = "invalid_zone_file"


class InvalidPoolConfig(InvalidInput):
    error_type = "invalid_pool_config"


class BadRequest(InvalidInput):
    """A request zoneflow cannot act on as asked (an unknown filter, a repeated one)."""

    error_type = "bad_request"


class InvalidUUID(InvalidInput):
    error_type = "invalid_uuid"


class InvalidLimit(InvalidInput):
    error_type = "invalid_limit"


class InvalidSortKey(InvalidInput):
    error_type = "invalid_sort_key"


class InvalidSortDir(InvalidInput):
    error_type = "invalid_sort_dir"


class MarkerNotFound(InvalidInput):
    """A page was asked for after an item that is not in the list."""

    error_type = "marker_not_found"


class InvalidConfig(ZoneflowError):
    """zoneflow.conf or the command line asks for something impossible."""

    http_status = 500
    error_type = "invalid_config"


# --- who is asking (401) ---------------------------------------------------------


class NotAuthenticated(ZoneflowError):
    """The request carries no valid credentials (a missing, expired or forged token).

    ``headers`` go with the answer: ``WWW-Authenticate`` says where to get a token.
    """

    http_status = 401
    error_type = "unauthorized"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


# --- not allowed (403) -------------------------------------------------------


class Forbidden(ZoneflowError):
    """The caller's roles do not allow what it asked (all projects, sudo)."""

    http_status = 403
    error_type = "forbidden"


class IllegalChildZone(Forbidden):
    """A zone inside another project's zone (it would take over names of that zone)."""

    error_type = "illegal_child"


class IllegalParentZone(Forbidden):
    """A zone above another project's zone (it would hold names that zone serves)."""

    error_type = "illegal_parent"


# --- missing things (404) ---------------------------------------------------


class NotFound(ZoneflowError):
    http_status = 404
    error_type = "not_found"


class ZoneNotFound(NotFound):
    error_type = "zone_not_found"


class RecordSetNotFound(NotFound):
    error_type = "recordset_not_found"


class PoolNotFound(NotFound):
    error_type = "pool_not_found"


class JobNotFound(NotFound):
    error_type = "job_not_found"


class FlowNotFound(NotFound):
    error_type = "flow_not_found"


class ZoneExportNotFound(NotFound):
    error_type = "zone_export_not_found"


class ZoneImportNotFound(NotFound):
    error_type = "zone_import_not_found"


class TsigKeyNotFound(NotFound):
    error_type = "tsigkey_not_found"


class ServiceStatusNotFound(NotFound):
    error_type = "service_status_not_found"


# --- refused by content type or size (415, 413) -----------------------------


class UnsupportedContentType(ZoneflowError):
    """The body is not of the type the route reads (a zone import wants text/dns)."""

    http_status = 415
    error_type = "unsupported_content_type"


class RequestTooLarge(ZoneflowError):
    """The body is larger than the route accepts (a zone import: [api] max_import_size)."""

    http_status = 413
    error_type = "request_too_large"


class OverQuota(ZoneflowError):
    """The change would take a project past one of its quotas (zones, recordsets...)."""

    http_status = 413
    error_type = "over_quota"


# --- conflicts (409) --------------------------------------------------------


class Duplicate(ZoneflowError):
    http_status = 409
    error_type = "duplicate"


class DuplicateZone(Duplicate):
    error_type = "duplicate_zone"


class DuplicateRecordSet(Duplicate):
    error_type = "duplicate_recordset"


class DuplicateTsigKey(Duplicate):
    error_type = "duplicate_tsigkey"


class JobClaimed(ZoneflowError):
    """A conductor holds the job and is running it; it cannot be cancelled now."""

    http_status = 409
    error_type = "job_claimed"


class JobFinished(ZoneflowError):
    """The job has already ended; there is nothing left to cancel."""

    http_status = 409
    error_type = "job_finished"


class ZoneBusy(ZoneflowError):
    """The zone is being deleted; it accepts no more changes."""

    http_status = 409
    error_type = "bad_request"


# --- the outside world failing (503 / 500) ----------------------------------


class ServiceUnavailable(ZoneflowError):
    http_status = 503
    error_type = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    error_type = "database_unavailable"


class DatabaseBusy(DatabaseUnavailable):
    """Other transactions kept the database from this one (SQLite's write lock held,
    a deadlock, a serialization conflict) for longer than ``[database] busy_wait``."""


class DatabaseNotSynced(ServiceUnavailable):
    """The database lacks zoneflow's tables (or an up-to-date schema)."""

    error_type = "database_not_synced"


class JobboardUnavailable(ServiceUnavailable):
    error_type = "jobboard_unavailable"


class BackendError(ZoneflowError):
    """A nameserver target refused or failed an operation."""

    http_status = 500
    error_type = "backend_error"

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"target {target}: {message}")
        self.target = target


class BackendUnreachable(BackendError):
    error_type = "backend_unreachable"


# rndc's control channel (backends/rndc_protocol.py). Below any one target: the
# BIND9 backend turns each into a BackendError naming its target.


class RndcError(ZoneflowError):
    error_type = "rndc_error"


class RndcKeyError(RndcError):
    """The rndc key cannot be read: file missing, no key clause, bad algorithm or secret."""


class RndcConfigSyntax(RndcKeyError):
    """A key file or rndc.conf that is not in named.conf's syntax."""


class RndcConnectFailed(RndcError):
    """No TCP connection to the control channel (refused, unreachable)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RndcTimeout(RndcError):
    """No reply within the call's time."""


class RndcClosed(RndcError):
    """named closed the connection without a reply: it refused our key or our address."""


class RndcBadMessage(RndcError):
    """A reply that is not a well-formed, correctly signed rndc message."""


class ConsensusFailure(ZoneflowError):
    """Fewer targets succeeded than the pool's threshold asks for."""

    error_type = "consensus_failure"


# --- local servers (`zoneflow targets up`, `make run`, the tests) -------------


class LocalServerError(ZoneflowError):
    """A nameserver started on this machine could not be started or driven."""

    error_type = "local_server_error"


class MissingServerProgram(LocalServerError):
    """A server program (named, knotd...) is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is not installed: install it from your system's packages (Debian: bind9, "
            "knot); in a zoneflow checkout, run scripts/install-system-deps.sh"
        )


class ServerStartError(LocalServerError):
    """The server did not become ready; the message ends with its log tail."""


# --- the inspector (issue 15) ---------------------------------------------------------


class TargetNotFound(NotFound):
    """No pool target has the id or description given."""

    error_type = "target_not_found"
