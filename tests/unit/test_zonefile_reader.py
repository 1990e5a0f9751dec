"""The line reader of imports gives what dnspython's zone file Reader alone gives.

Each file is read twice into a transaction that records every record (owner,
TTL, type, data as dnspython writes it): once by
:class:`zoneflow.dns.zonefile_reader.LineReader`, once by
:class:`dns.zonefile.Reader` over the whole file. The records, the error
and the line an error is reported on must be the same.
"""

from __future__ import annotations

import io

import dns.name
import dns.rdata
import dns.rdataclass
import dns.tokenizer
import dns.zonefile
import pytest

from zoneflow.dns import zonefile, zonefile_reader

Read = tuple[list[tuple[str, int, str, str]], str | None, int]


class _Recorder:
    """The transaction calls the Reader makes, recording what it adds."""

    def __init__(self) -> None:
        self.manager = self
        self.added: list[tuple[str, int, str, str]] = []

    def origin_information(self) -> tuple[dns.name.Name, bool, None]:
        return dns.name.root, False, None  # as zonefile.parse's collector answers

    def check_put_rdataset(self, _check: object) -> None:
        pass

    def _set_origin(self, _origin: dns.name.Name) -> None:
        pass

    def add_unicode(self, _value: str) -> None:
        pass

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        self.added.append((name.to_text(), ttl, rdata.rdtype.name, rdata.to_text()))


def _message(exc: Exception) -> str:
    # The tokenizer's own line count (in the prefix) counts from where the Reader
    # started; zonefile.parse drops it and names the line from the position.
    return zonefile._described(exc)


def _by_line_reader(text: str) -> tuple[Read, zonefile_reader.LineReader]:
    recorder = _Recorder()
    reader = zonefile_reader.LineReader(text, recorder)
    try:
        reader.read()
    except Exception as exc:
        return (recorder.added, _message(exc), _line(text, reader.position())), reader
    return (recorder.added, None, 0), reader


def _by_dnspython(text: str) -> Read:
    recorder = _Recorder()
    source = io.StringIO(text)
    tok = dns.tokenizer.Tokenizer(source, zonefile_reader.FILENAME)
    try:
        dns.zonefile.Reader(tok, dns.rdataclass.IN, recorder, allow_include=False).read()  # type: ignore[arg-type]
    except Exception as exc:
        return recorder.added, _message(exc), _line(text, source.tell())
    return recorder.added, None, 0


def _line(text: str, position: int) -> int:
    return text[:position].rstrip("\n").count("\n") + 1


VARIED = """\
$ORIGIN example.com.
$TTL 1h
@ IN SOA ns1.example.net. hostmaster.example.com. (
        2024010101 ; serial
        3600 600 86400 300 )
; a comment line

www            IN A     192.0.2.1
www            IN AAAA  2001:db8::1
               IN TXT   "v=spf1  -all"   "second"
Mixed.Case     300 IN A 192.0.2.2
mixed.case.example.com. 600 A 192.0.2.3
class.first    IN 120 A 192.0.2.4
no.class       7200 MX 10 mail
no.ttl.class   MX 20 mail.example.net.
mail	IN	A	192.0.2.5
*.wild         IN A     192.0.2.6
_sip._tcp      IN SRV   10 5 5060 sip
caa            IN CAA   0 issue "letsencrypt.org"
caa            IN CAA   128 iodef "mailto:security@example.com"
txt.empty      IN TXT   ""
txt.adjacent   IN TXT   "a""b" c"d"
txt.comment    IN TXT   "v=DKIM1; k=rsa; p=MIGf" ; dkim
txt.paren      IN TXT   ( "part one"
                          "part two" )
alias          IN CNAME www
ptr            IN PTR   host.example.net.
naptr          IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .
ssh            IN SSHFP 1 1 123456789abcdef67890123456789abcdef67890
sub            IN DS    60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
sub            IN NS    ns.sub
escaped\\.dot   IN A     192.0.2.7
\\065bc         IN A     192.0.2.8
generic        IN A     \\# 4 C0000209
crlf           IN A     192.0.2.10\r
crlf2          IN TXT   "crlf"\r
   \t
1d.ttl         1d IN A  192.0.2.11
$TTL 5m
after.ttl      IN A     192.0.2.12
$ORIGIN sub.example.com.
relative       IN A     192.0.2.13
@              IN A     192.0.2.14
               IN MX    5 relative
$ORIGIN example.com.
$GENERATE 1-3 gen$ IN A 192.0.2.$
last           IN A     192.0.2.15"""


def test_a_varied_zone_file_is_read_as_dnspython_reads_it() -> None:
    read, reader = _by_line_reader(VARIED)

    assert read == _by_dnspython(VARIED)
    assert read[1] is None and len(read[0]) == 38
    assert ("Mixed.Case.example.com.", 300, "A", "192.0.2.2") in read[0]
    # The plain lines were read here, the others (directives, parentheses,
    # comments, escapes, the SOA) by the Reader.
    assert reader.entries_by_reader < 20


def test_a_file_of_plain_lines_is_read_without_dnspython_reader() -> None:
    text = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1.example.net. h.example.com. 1 2 3 4 5\n"
    text += "".join(f'h{n} IN A 192.0.2.{n % 250}\nh{n} 60 TXT "x {n}"\n' for n in range(200))

    read, reader = _by_line_reader(text)

    assert read == _by_dnspython(text)
    assert len(read[0]) == 401
    assert reader.entries_by_reader == 3  # $ORIGIN, $TTL, the SOA


@pytest.mark.parametrize(
    "line",
    [
        "bad IN A 192.0.2.300",
        "bad IN A",
        "bad IN NOSUCHTYPE 1",
        "bad CH A 192.0.2.1",
        'bad IN TXT "unclosed',
        "bad 4294967296 A 192.0.2.1",
        "bad IN MX mail",
        "bad IN CAA 0 issue",
        "bad IN A 192.0.2.1 extra",
        "bad IN A ( 192.0.2.1",
        "bad IN A 192.0.2.1 )",
        "bad..name IN A 192.0.2.1",
        '"quoted" IN A 192.0.2.1',
        'bad"quote IN A 192.0.2.1',
        'bad 300"s" IN A 192.0.2.1',
        "  ",
        "$TTL",
        "$INCLUDE /etc/passwd",
        "$NOSUCH x",
        f"{'a' * 64} IN A 192.0.2.1",
    ],
)
def test_a_bad_line_fails_as_dnspython_fails_on_the_same_line(line: str) -> None:
    text = (
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1.example.net. h.example.com. 1 2 3 4 5\n"
        f"ok IN A 192.0.2.1\n{line}\nafter IN A 192.0.2.2\n"
    )

    read, _ = _by_line_reader(text)

    assert read == _by_dnspython(text)


def test_a_name_without_a_default_ttl_fails_as_dnspython_fails() -> None:
    text = "$ORIGIN example.com.\nwww IN A 192.0.2.1\n"

    read, _ = _by_line_reader(text)

    assert read == _by_dnspython(text)
    assert read[1] is not None and read[2] == 2


def test_records_before_any_origin_are_read_as_dnspython_reads_them() -> None:
    text = "www.example.com. 300 IN A 192.0.2.1\n  IN AAAA 2001:db8::1\nrel 300 IN A 192.0.2.2\n"

    read, _ = _by_line_reader(text)

    assert read == _by_dnspython(text)


def test_an_import_names_the_line_of_a_bad_plain_record() -> None:
    text = (
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1.example.net. h.example.com. 1 2 3 4 5\n"
        "ok IN A 192.0.2.1\nbad IN HINFO a b\n"
    )

    with pytest.raises(Exception) as raised:
        zonefile.parse(text)

    assert str(raised.value).startswith("line 5 (bad IN HINFO a b): record type 'HINFO'")


def test_an_imported_recordset_is_named_as_its_first_record_spells_its_name() -> None:
    text = (
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1.example.net. h.example.com. 1 2 3 4 5\n"
        'www IN A 192.0.2.1\nWww IN AAAA 2001:db8::1\nWWW IN A 192.0.2.2\n  IN TXT "t"\n'
    )

    parsed = zonefile.parse(text)

    assert [(rs.name, rs.type, rs.records) for rs in parsed.recordsets] == [
        ("www.example.com.", "A", ("192.0.2.1", "192.0.2.2")),
        ("Www.example.com.", "AAAA", ("2001:db8::1",)),
        ("WWW.example.com.", "TXT", ('"t"',)),
    ]
