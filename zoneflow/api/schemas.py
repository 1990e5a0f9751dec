"""What the v2 API reads and writes, as pydantic models: Designate's field names.

Request bodies are strict (a string where a number belongs is refused, not
converted) and closed (an unknown or read-only field is refused), as
Designate's JSON schemas are. Response models describe what the views in
:mod:`zoneflow.api.views` return, so ``/openapi.json`` matches what is
served. Times are strings in Designate's format, e.g.
``2026-01-31T12:00:00.000000`` (UTC, no zone suffix).

Longer than most modules on purpose: it is the API's whole data contract,
declarations with no logic between them, read as one document the way
Designate's JSON schemas are, and the single place /openapi.json is made from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)

from zoneflow import exceptions
from zoneflow.dns import rdata, validation

TTL = Annotated[StrictInt, Field(ge=0, le=validation.MAX_TTL)]
Description = Annotated[StrictStr, Field(max_length=160)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]


def _not_null(value: object) -> object:
    # Only a value the client sent is checked: a field left out keeps its default (None).
    if value is None:
        raise ValueError("cannot be null: give a value, or leave the field out to keep it")
    return value


# A field of a change (PATCH, PUT) that may be left out but not set to null: null would
# otherwise read as "not given" and be dropped without a word.
NotNull = AfterValidator(_not_null)


def _document_not_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """In /openapi.json, a NotNull field's type without the null its default needs."""
    for name, field in model.model_fields.items():
        shown = schema.get("properties", {}).get(name, {})
        if NotNull in field.metadata and "anyOf" in shown:
            kinds = [kind for kind in shown.pop("anyOf") if kind != {"type": "null"}]
            shown.update(kinds[0] if len(kinds) == 1 else {"anyOf": kinds})
            shown.pop("default", None)


def _nul_in(value: object) -> str | None:
    """Where ``value`` (a field's text, or its list's or object's texts) holds a NUL."""
    if isinstance(value, str):
        return "" if "\x00" in value else None
    items: list[tuple[str, object]] = []
    if isinstance(value, list):
        items = [(f"[{index}]", item) for index, item in enumerate(value)]
    elif isinstance(value, dict):
        items = [(f".{key}", item) for key, item in value.items()]
    for place, item in items:
        inner = _nul_in(item)
        if inner is not None:
            return place + inner
    return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_not_null)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # No text zoneflow stores may hold a NUL: PostgreSQL refuses one (a 500 deep in
        # the write), and a nameserver, a zone file or a terminal would cut the text there.
        place = _nul_in(value)
        if place is not None:
            where = f"{place} " if place else ""
            raise ValueError(f"{where}must not contain a NUL character (\\u0000): remove it")
        return value


# --- version discovery ---------------------------------------------------------


class Link(BaseModel):
    href: str
    rel: str


class Version(BaseModel):
    id: str
    status: Literal["CURRENT", "SUPPORTED"]
    updated: str
    links: list[Link]


class Versions(BaseModel):
    versions: list[Version]


class OneVersion(BaseModel):
    version: Version


# --- errors ----------------------------------------------------------------------


class FieldError(BaseModel):
    path: list[str | int]
    message: str
    validator: str
    validator_value: str | None = None


class FieldErrors(BaseModel):
    errors: list[FieldError]


class Error(BaseModel):
    """Designate's error body; ``errors`` lists each bad field of a refused body."""

    code: int
    type: str
    message: str
    request_id: str
    errors: FieldErrors | None = None


# --- lists -----------------------------------------------------------------------


class ListLinks(BaseModel):
    self: str
    next: str | None = Field(None, description="the next page, if there is one")


class ListMetadata(BaseModel):
    total_count: int = Field(description="items matching the filters, on every page")


class SelfLink(BaseModel):
    self: str


# --- zones -----------------------------------------------------------------------


class ZoneCreate(_Body):
    name: Name = Field(description="absolute zone name, with its trailing dot: example.com.")
    email: Annotated[StrictStr, Field(max_length=255)] = Field(
        description="the SOA's responsible mailbox"
    )
    ttl: TTL | None = Field(None, description="the zone's default TTL (seconds)")
    description: Description | None = None
    type: Literal["PRIMARY"] = Field(
        "PRIMARY", description="PRIMARY only: zoneflow is the primary of its zones (mdns)"
    )
    masters: list[StrictStr] = Field(default_factory=list)
    attributes: dict[str, StrictStr] = Field(default_factory=dict)
    pool_id: StrictStr | None = Field(None, description="pool id or name (default pool)")

    @field_validator("name")
    @classmethod
    def _absolute(cls, value: str) -> str:
        try:
            validation.absolute_zone_name(value)
        except exceptions.InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("masters")
    @classmethod
    def _no_masters(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError(
                "masters are for SECONDARY zones, and zoneflow serves PRIMARY zones only"
            )
        return value

    @field_validator("attributes")
    @classmethod
    def _no_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            raise ValueError(
                "zone attributes (pool scheduling hints) are not supported: give pool_id instead"
            )
        return value


class ZoneUpdate(_Body):
    email: Annotated[Annotated[StrictStr, Field(max_length=255)] | None, NotNull] = None
    ttl: Annotated[TTL | None, NotNull] = None
    description: Description | None = Field(None, description="null or empty clears it")


class Zone(BaseModel):
    id: str
    pool_id: str
    project_id: str | None
    name: str
    email: str
    ttl: int
    serial: int
    status: str
    action: str
    description: str | None
    masters: list[str]
    type: str
    transferred_at: str | None
    version: int
    created_at: str
    updated_at: str | None
    attributes: dict[str, str]
    shared: bool
    links: SelfLink


class ZoneList(BaseModel):
    zones: list[Zone]
    links: ListLinks
    metadata: ListMetadata


# --- recordsets ---------------------------------------------------------------------

# A record as text (zone-file syntax, Designate's way) or as its type's fields.
RecordFields = Annotated[
    dict[str, Any],
    Field(
        description="zoneflow: a record as its type's fields, checked per type: "
        + rdata.describe(),
        examples=[{"priority": 10, "exchange": "mail.example.com."}],
    ),
]
Record = StrictStr | RecordFields
RECORDS_HELP = (
    "record data in zone-file syntax (e.g. '10 mail.example.com.'), or (zoneflow) "
    "each record as an object of its type's fields"
)


class RecordSetCreate(_Body):
    name: Name = Field(description="absolute name, with its trailing dot: www.example.com.")
    type: Annotated[StrictStr, Field(min_length=1, max_length=16)]
    records: list[Record] = Field(description=RECORDS_HELP)
    ttl: TTL | None = Field(None, description="null: the zone's TTL")
    description: Description | None = None


class RecordSetUpdate(_Body):
    records: Annotated[list[Record] | None, NotNull] = Field(None, description=RECORDS_HELP)
    ttl: TTL | None = Field(None, description="null: use the zone's TTL again")
    description: Description | None = Field(None, description="null or empty clears it")


class RecordSet(BaseModel):
    id: str
    zone_id: str
    zone_name: str
    project_id: str | None
    name: str
    type: str
    records: list[str]
    ttl: int | None
    status: str
    action: str
    description: str | None
    version: int
    serial: int = Field(
        description="zoneflow: the zone serial at which this recordset last changed; a "
        "nameserver serving this serial or a later one serves the change"
    )
    created_at: str
    updated_at: str | None
    links: SelfLink
    records_data: list[dict[str, Any]] | None = Field(
        None,
        description="zoneflow, with ?records_data=true: each of records as its type's "
        "fields, in the same order",
    )


class RecordSetList(BaseModel):
    recordsets: list[RecordSet]
    links: ListLinks
    metadata: ListMetadata


# --- zone exports and imports ------------------------------------------------------


class ExportLinks(BaseModel):
    self: str
    export: str | None = Field(None, description="the zone file, once the export is COMPLETE")


class ZoneExport(BaseModel):
    id: str
    status: Literal["PENDING", "COMPLETE", "ERROR"]
    message: str | None
    location: str | None = Field(description="designate://v2/zones/tasks/exports/{id}/export")
    zone_id: str | None
    project_id: str | None
    created_at: str
    updated_at: str | None
    version: int
    links: ExportLinks


class ZoneExportList(BaseModel):
    exports: list[ZoneExport]
    links: ListLinks
    metadata: ListMetadata


class ImportLinks(BaseModel):
    self: str
    zone: str | None = Field(None, description="the zone the import created")


class ZoneImport(BaseModel):
    id: str
    status: Literal["PENDING", "COMPLETE", "ERROR"]
    message: str | None = Field(description="what was imported, or why nothing was")
    zone_id: str | None
    project_id: str | None
    created_at: str
    updated_at: str | None
    version: int
    links: ImportLinks


class ZoneImportList(BaseModel):
    imports: list[ZoneImport]
    links: ListLinks
    metadata: ListMetadata


# --- pools and service statuses ----------------------------------------------------


class PoolNsRecord(BaseModel):
    hostname: str
    priority: int


class Pool(BaseModel):
    id: str
    project_id: str | None
    name: str
    description: str | None
    attributes: dict[str, str]
    ns_records: list[PoolNsRecord]
    created_at: str | None
    updated_at: str | None
    links: SelfLink


class PoolList(BaseModel):
    pools: list[Pool]
    links: ListLinks
    metadata: ListMetadata


class ServiceStatus(BaseModel):
    id: str
    service_name: str = Field(description="conductor, mdns or api")
    hostname: str = Field(description="the host and process id of the service")
    status: Literal["UP", "DOWN"]
    heartbeated_at: str
    capabilities: dict[str, object]
    stats: dict[str, object]
    created_at: str
    updated_at: str | None
    links: SelfLink


class ServiceStatusList(BaseModel):
    service_statuses: list[ServiceStatus]
    links: ListLinks
    metadata: ListMetadata


# --- TSIG keys ---------------------------------------------------------------------

TsigName = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Secret = Annotated[StrictStr, Field(min_length=1, max_length=4096)]


class TsigKeyCreate(_Body):
    name: TsigName
    algorithm: StrictStr = Field(description="hmac-sha256 (advised), hmac-sha512, ...")
    secret: Secret = Field(description="base64, as tsig-keygen prints it")
    scope: Literal["POOL", "ZONE"]
    resource_id: StrictStr = Field(description="the id of the pool or zone the key is for")


class TsigKeyUpdate(_Body):
    name: Annotated[TsigName | None, NotNull] = None
    algorithm: Annotated[StrictStr | None, NotNull] = None
    secret: Annotated[Secret | None, NotNull] = None
    scope: Annotated[Literal["POOL", "ZONE"] | None, NotNull] = None
    resource_id: Annotated[StrictStr | None, NotNull] = None


class TsigKey(BaseModel):
    id: str
    name: str
    algorithm: str
    secret: str
    scope: str
    resource_id: str
    created_at: str
    updated_at: str | None
    links: SelfLink


class TsigKeyList(BaseModel):
    tsigkeys: list[TsigKey]
    links: ListLinks
    metadata: ListMetadata


# --- quotas and limits -------------------------------------------------------------

QuotaLimit = Annotated[StrictInt, Field(ge=-1, le=2**31 - 1)]


class Quotas(BaseModel):
    zones: int
    zone_recordsets: int
    zone_records: int
    recordset_records: int
    api_export_size: int


class QuotasUpdate(_Body):
    zones: Annotated[QuotaLimit | None, NotNull] = None
    zone_recordsets: Annotated[QuotaLimit | None, NotNull] = None
    zone_records: Annotated[QuotaLimit | None, NotNull] = None
    recordset_records: Annotated[QuotaLimit | None, NotNull] = None
    api_export_size: Annotated[QuotaLimit | None, NotNull] = None


class Limits(BaseModel):
    max_zones: int
    max_zone_recordsets: int
    max_zone_records: int
    max_recordset_records: int
    min_ttl: int | None
    max_zone_name_length: int
    max_recordset_name_length: int
    max_page_limit: int
