"""Validation turns user input into canonical DNS text, or says what is wrong."""

from __future__ import annotations

import pytest

from zoneflow import exceptions
from zoneflow.dns import validation


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Example.COM", "example.com."),
        ("example.com.", "example.com."),
        ("a-b.example.org", "a-b.example.org."),
    ],
)
def test_zone_names_are_stored_lower_case_and_absolute(given: str, stored: str) -> None:
    assert validation.zone_name(given) == stored


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("", "empty"),
        ("com", "single label"),
        ("-bad.example.com", "invalid label '-bad'"),
        ("under_score.com", "invalid label 'under_score'"),
        ("a..b.com", "invalid label ''"),
        ("x" * 64 + ".com", "invalid label"),
    ],
)
def test_invalid_zone_names_say_which_label_is_wrong(given: str, complaint: str) -> None:
    with pytest.raises(exceptions.InvalidZoneName, match=complaint):
        validation.zone_name(given)


def test_recordset_names_are_made_absolute_inside_the_zone() -> None:
    assert validation.recordset_name("www", "example.com.") == "www.example.com."
    assert validation.recordset_name("@", "example.com.") == "example.com."
    assert validation.recordset_name("_sip._tcp", "example.com.") == "_sip._tcp.example.com."
    assert validation.recordset_name("*.dev", "example.com.") == "*.dev.example.com."
    assert validation.recordset_name("WWW.Example.com.", "example.com.") == "www.example.com."


def test_recordset_outside_its_zone_is_refused() -> None:
    with pytest.raises(exceptions.InvalidRecordSetLocation, match="outside zone example.com."):
        validation.recordset_name("www.example.org.", "example.com.")


@pytest.mark.parametrize(
    ("rtype", "data", "canonical"),
    [
        ("A", "192.0.2.1", "192.0.2.1"),
        ("AAAA", "2001:DB8:0::1", "2001:db8::1"),
        ("MX", "10 mail", "10 mail.example.com."),
        ("MX", "10 mx.example.net.", "10 mx.example.net."),
        ("TXT", '"hello world"', '"hello world"'),
        ("CNAME", "target", "target.example.com."),
        ("SRV", "10 5 5060 sip", "10 5 5060 sip.example.com."),
        ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ],
)
def test_record_data_is_parsed_and_stored_canonically(
    rtype: str, data: str, canonical: str
) -> None:
    assert validation.record_data(rtype, data, zone="example.com.") == canonical


@pytest.mark.parametrize(
    ("rtype", "data"),
    [
        ("A", "192.0.2.300"),
        ("A", "not-an-ip"),
        ("AAAA", "192.0.2.1"),
        ("MX", "mail"),
        ("SRV", "1 2"),
    ],
)
def test_invalid_record_data_names_the_value_and_an_example(rtype: str, data: str) -> None:
    with pytest.raises(exceptions.InvalidRecordData) as caught:
        validation.record_data(rtype, data, zone="example.com.")
    assert repr(data) in str(caught.value)
    assert "expected e.g." in str(caught.value)


def test_a_cname_recordset_holds_one_record() -> None:
    with pytest.raises(exceptions.InvalidRecordSetLocation, match="exactly one record"):
        validation.records("CNAME", ["a", "b"], zone="example.com.")


def test_duplicate_records_in_one_recordset_are_refused() -> None:
    with pytest.raises(exceptions.InvalidInput, match="given twice"):
        validation.records("A", ["192.0.2.1", "192.0.2.01".replace("01", "1")], zone="example.com.")


def test_empty_recordset_is_refused() -> None:
    with pytest.raises(exceptions.InvalidInput, match="at least one record"):
        validation.records("A", [], zone="example.com.")


def test_soa_and_unknown_types_are_refused_with_a_reason() -> None:
    with pytest.raises(exceptions.InvalidInput, match="written by zoneflow"):
        validation.record_type("soa")
    with pytest.raises(exceptions.InvalidInput, match="not supported: use one of"):
        validation.record_type("BOGUS")


@pytest.mark.parametrize("value", [-1, 2**31, "ten", "1.5"])
def test_ttl_out_of_range_or_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(exceptions.InvalidTTL):
        validation.ttl(value)  # type: ignore[arg-type]


def test_ttl_accepts_the_rfc_2181_range() -> None:
    assert validation.ttl(0) == 0
    assert validation.ttl("300") == 300
    assert validation.ttl(2**31 - 1) == 2**31 - 1


def test_email_becomes_an_soa_rname_with_escaped_dots() -> None:
    assert validation.email_to_rname("host.master@example.com") == "host\\.master.example.com."
    with pytest.raises(exceptions.InvalidEmail):
        validation.email("no-at-sign")
