"""Record data as named fields: to text and back, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from zoneflow import exceptions
from zoneflow.dns import rdata, validation

ZONE = "example.com."

# (type, fields as given, canonical text stored, fields shown back)
CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("A", {"address": "192.0.2.1"}, "192.0.2.1", {"address": "192.0.2.1"}),
    ("AAAA", {"address": "2001:DB8::1"}, "2001:db8::1", {"address": "2001:db8::1"}),
    ("CNAME", {"cname": "www"}, "www.example.com.", {"cname": "www.example.com."}),
    ("NS", {"nsdname": "ns1.example.net."}, "ns1.example.net.", {"nsdname": "ns1.example.net."}),
    ("PTR", {"ptrdname": "host.example.com."}, "host.example.com.", None),
    (
        "MX",
        {"priority": 10, "exchange": "mail"},
        "10 mail.example.com.",
        {"priority": 10, "exchange": "mail.example.com."},
    ),
    (
        "SRV",
        {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com."},
        "10 5 5060 sip.example.com.",
        None,
    ),
    (
        "SSHFP",
        {"algorithm": 4, "fp_type": 2, "fingerprint": "AB" * 32},
        "4 2 " + "ab" * 32,
        {"algorithm": 4, "fp_type": 2, "fingerprint": "ab" * 32},
    ),
    (
        "CAA",
        {"flags": 128, "tag": "issue", "value": 'ca.example; a="b"'},
        '128 issue "ca.example; a=\\"b\\""',
        None,
    ),
    (
        "NAPTR",
        {
            "order": 100,
            "preference": 10,
            "flags": "U",
            "services": "E2U+sip",
            "regexp": "!^.*$!sip:info@example.com!",
            "replacement": ".",
        },
        '100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .',
        None,
    ),
    (
        "DS",
        {
            "key_tag": 60485,
            "algorithm": 5,
            "digest_type": 1,
            "digest": "2BB183AF5F22588179A53B0A98631FAD1A292118",
        },
        "60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118",
        {
            "key_tag": 60485,
            "algorithm": 5,
            "digest_type": 1,
            "digest": "2bb183af5f22588179a53b0a98631fad1a292118",
        },
    ),
    (
        "TXT",
        {"strings": ["v=spf1 -all", 'say "hi" \\ bye']},
        '"v=spf1 -all" "say \\"hi\\" \\\\ bye"',
        None,
    ),
    ("SPF", {"text": "v=spf1 -all"}, '"v=spf1 -all"', {"strings": ["v=spf1 -all"]}),
]


@pytest.mark.parametrize(("rtype", "fields", "text", "shown"), CASES, ids=[c[0] for c in CASES])
def test_fields_become_the_canonical_text_and_read_back(
    rtype: str, fields: dict[str, Any], text: str, shown: dict[str, Any] | None
) -> None:
    (stored,) = validation.records(rtype, [fields], zone=ZONE)
    assert stored == text
    assert rdata.to_fields(rtype, stored) == (shown or fields)
    # What is shown, given back, is the same record.
    assert validation.records(rtype, [rdata.to_fields(rtype, stored)], zone=ZONE) == [stored]


def test_text_and_fields_mix_in_one_recordset_and_duplicates_are_caught() -> None:
    assert validation.records(
        "MX", ["20 backup", {"priority": 10, "exchange": "mail"}], zone=ZONE
    ) == ["20 backup.example.com.", "10 mail.example.com."]
    with pytest.raises(exceptions.InvalidInput, match="given twice"):
        validation.records("A", ["192.0.2.1", {"address": "192.0.2.1"}], zone=ZONE)


def test_long_txt_text_is_cut_into_255_byte_strings_without_splitting_a_character() -> None:
    key = "v=DKIM1; k=rsa; p=" + "A" * 400 + "é" * 100
    (stored,) = validation.records("TXT", [{"text": key}], zone=ZONE)
    strings = rdata.to_fields("TXT", stored)["strings"]
    assert "".join(strings) == key
    assert all(len(s.encode()) <= 255 for s in strings) and len(strings) == 3


@pytest.mark.parametrize(
    ("rtype", "fields", "words"),
    [
        ("MX", {"priority": 10}, ["records[0].exchange", "missing", "priority, exchange"]),
        (
            "MX",
            {"priority": 10, "exchange": "m.", "weight": 1},
            ["records[0].weight", "not a field"],
        ),
        (
            "SRV",
            {"priority": 1, "weight": 1, "port": 70000, "target": "x."},
            ["records[0].port", "0 to 65535"],
        ),
        (
            "SRV",
            {"priority": "1", "weight": 1, "port": 1, "target": "x."},
            ["records[0].priority", "whole number"],
        ),
        ("MX", {"priority": True, "exchange": "m."}, ["records[0].priority", "whole number"]),
        ("A", {"address": "2001:db8::1"}, ["records[0].address", "IPv4"]),
        ("AAAA", {"address": "192.0.2.1"}, ["records[0].address", "IPv6"]),
        (
            "SSHFP",
            {"algorithm": 1, "fp_type": 1, "fingerprint": "xyz"},
            ["records[0].fingerprint", "hexadecimal"],
        ),
        (
            "SSHFP",
            {"algorithm": 256, "fp_type": 1, "fingerprint": "ab"},
            ["records[0].algorithm", "0 to 255"],
        ),
        ("CNAME", {"cname": "two words"}, ["records[0].cname", "domain name"]),
        (
            "CAA",
            {"flags": 0, "tag": "is sue", "value": "x"},
            ["records[0].tag", "letters and digits"],
        ),
        ("TXT", {"strings": ["x" * 256]}, ["records[0].strings[0]", "255"]),
        ("TXT", {"strings": []}, ["records[0].strings", "one or more"]),
        ("TXT", {"strings": ["a"], "text": "a"}, ["records[0]", "either strings", "or text"]),
        ("TXT", {"txt": "a"}, ["records[0].txt", "not a field"]),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    rtype: str, fields: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(exceptions.InvalidRecordData) as caught:
        validation.records(rtype, [fields], zone=ZONE)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_an_error_names_the_record_by_its_position() -> None:
    with pytest.raises(exceptions.InvalidRecordData, match=r"^records\[1\]\.address"):
        validation.records("A", [{"address": "192.0.2.1"}, {"address": "x"}], zone=ZONE)


def test_a_whole_record_that_the_fields_allow_but_dns_does_not_is_still_refused() -> None:
    # Each field is well formed, but a SHA-1 DS digest is 20 bytes.
    with pytest.raises(exceptions.InvalidRecordData, match="digest length"):
        validation.records(
            "DS", [{"key_tag": 1, "algorithm": 8, "digest_type": 1, "digest": "ab"}], zone=ZONE
        )
