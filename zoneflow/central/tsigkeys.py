"""TSIG keys managed through the API (``/v2/tsigkeys``), Designate's fields.

mdns verifies transfer requests with these keys as well as with the
``[tsig] key`` lines of its configuration (see :mod:`zoneflow.mdns.keyring`);
which key a pool's transfers *require* is still its targets'
``tsig_key_name``. ``scope`` and ``resource_id`` say what a key is for, as
in Designate: ``POOL`` and a pool's id, or ``ZONE`` and a zone's.
A key's name may not be one a ``[tsig] key`` line already uses: mdns would
not know which secret to check.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

import dns.exception
import dns.name

from zoneflow import exceptions, objects
from zoneflow.central import filters
from zoneflow.dns import tsig
from zoneflow.storage import pools as stored_pools
from zoneflow.storage import reads as stored_reads
from zoneflow.storage import tsigkeys

SCOPES = ("POOL", "ZONE")
TSIGKEY_FILTERS = ("name", "algorithm", "scope")
TSIGKEY_SORT_KEYS = {key: key for key in ("created_at", "id", "updated_at", "name")}


def _name(value: str) -> str:
    try:
        name = dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise exceptions.InvalidInput(
            f"name: {value!r} is not a valid key name ({exc}): give e.g. transfer-key"
        ) from None
    text = name.to_text(omit_final_dot=True).lower()
    if dns.name.from_text(text) in tsig.configured_keyring():
        raise exceptions.DuplicateTsigKey(
            f"a TSIG key named {text} is already set by a [tsig] key line of the configuration: "
            "pick another name"
        )
    return text


def _algorithm(value: str) -> str:
    text = value.strip().lower()
    if text not in tsig.ALGORITHMS:
        raise exceptions.InvalidInput(
            f"algorithm: {value!r} is not supported: use one of {', '.join(tsig.ALGORITHMS)}"
        )
    return text


def _secret(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise exceptions.InvalidInput(
            "secret: it is not base64 (generate one with 'tsig-keygen -a hmac-sha256 NAME')"
        )
    return value


def _scope(scope: str, resource_id: str) -> tuple[str, str]:
    text = scope.strip().upper()
    if text not in SCOPES:
        raise exceptions.InvalidInput(f"scope: {scope!r} is not POOL or ZONE")
    try:
        ident = str(uuid.UUID(resource_id))
    except ValueError:
        raise exceptions.InvalidUUID(
            f"resource_id: {resource_id!r} is not a UUID: give the id of the "
            f"{text.lower()} the key is for"
        ) from None
    if text == "POOL":
        stored_pools.get_pool(ident)
    else:
        stored_reads.get_zone(ident)
    return text, ident


def create_tsigkey(
    name: str, algorithm: str, secret: str, scope: str, resource_id: str
) -> objects.TsigKey:
    scope_text, ident = _scope(scope, resource_id)
    return tsigkeys.create_tsigkey(
        {
            "name": _name(name),
            "algorithm": _algorithm(algorithm),
            "secret": _secret(secret),
            "scope": scope_text,
            "resource_id": ident,
        }
    )


def update_tsigkey(key_id: str, changes: Mapping[str, str]) -> objects.TsigKey:
    current = tsigkeys.get_tsigkey(key_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"])
    if "algorithm" in changes:
        values["algorithm"] = _algorithm(changes["algorithm"])
    if "secret" in changes:
        values["secret"] = _secret(changes["secret"])
    if "scope" in changes or "resource_id" in changes:
        values["scope"], values["resource_id"] = _scope(
            changes.get("scope", current.scope), changes.get("resource_id", current.resource_id)
        )
    return tsigkeys.update_tsigkey(key_id, values)


def get_tsigkey(key_id: str) -> objects.TsigKey:
    return tsigkeys.get_tsigkey(key_id)


def find_tsigkeys(
    criteria: Mapping[str, str], paging: objects.Paging
) -> objects.Page[objects.TsigKey]:
    columns = {
        key: value.upper() if key == "scope" else value
        for key, value in filters.criteria(criteria, TSIGKEY_FILTERS, "TSIG keys").items()
    }
    return tsigkeys.find_tsigkeys(columns, filters.paging(paging, TSIGKEY_SORT_KEYS, "TSIG keys"))


def delete_tsigkey(key_id: str) -> objects.TsigKey:
    return tsigkeys.delete_tsigkey(key_id)
