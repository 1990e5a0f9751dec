"""Designate's list parameters checked and turned into what storage takes: filters
by name, whole numbers, a page's limit, sort key and direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from zoneflow import exceptions, objects


def criteria(criteria: Mapping[str, str], accepted: Sequence[str], what: str) -> dict[str, str]:
    unknown = sorted(set(criteria) - set(accepted))
    if unknown:
        raise exceptions.BadRequest(
            f"invalid filter(s) {', '.join(unknown)}: {what} can be filtered by "
            f"{', '.join(accepted)}"
        )
    return dict(criteria)


def whole_number(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise exceptions.BadRequest(
            f"filter {name}={value!r} is not a whole number: give e.g. {name}=3600"
        ) from None


def paging(paging: objects.Paging, sort_keys: Mapping[str, str], what: str) -> objects.Paging:
    """The paging with its sort key turned into the column it sorts by."""
    if paging.limit < 1:
        raise exceptions.InvalidLimit(f"limit {paging.limit} is too small: give 1 or more")
    if paging.sort_key not in sort_keys:
        raise exceptions.InvalidSortKey(
            f"sort key {paging.sort_key!r} is unknown: {what} sort by "
            f"{', '.join(sorted(sort_keys))}"
        )
    if paging.sort_dir not in (objects.ASC, objects.DESC):
        raise exceptions.InvalidSortDir(
            f"sort direction {paging.sort_dir!r} is unknown: give asc or desc"
        )
    return dataclasses.replace(paging, sort_key=sort_keys[paging.sort_key])
