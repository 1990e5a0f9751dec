"""A zone-file reader that reads plain one-line records itself and leaves the rest to dnspython.

dnspython's :class:`dns.zonefile.Reader` reads a file one character at a
time through its tokenizer, which is half the time an import of a large
zone takes. Most lines of a real zone file are plain: an owner, a TTL, a
class, a type and the data on one line, with no parentheses, comments,
escapes or directives. :class:`LineReader` splits such a line itself, where
the tokenizer would find the same fields, decides owner, TTL, class and type
with the same dnspython functions and in the same order as the Reader
(``_rr_line``), and parses the data with :func:`dns.rdata.from_text`, as the
Reader does. Every other line (a directive, a record spread over lines in
parentheses, a comment, an escape, an SOA, or a plain line dnspython finds
wrong) goes to one Reader, whose state (origin, last owner, TTLs) is the
state of the whole file: so what is read, and every error and its wording,
is what the Reader alone would give. tests/unit/test_zonefile_reader.py
compares the two on varied files.

The Reader's state and its tokenizer are attributes dnspython does not
document (``tok``, ``current_origin``, ``last_name``, ``last_ttl``...); the
comparison test is what notices when a dnspython release changes them.
"""

from __future__ import annotations

import io
import re
from typing import Any, cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.transaction
import dns.ttl
import dns.zonefile

FILENAME = "<zone file>"

# Characters after which the tokenizer's fields are no longer the line's
# space-separated words: parentheses join lines, ';' starts a comment, a
# backslash escapes, a carriage return ends a line (outside quotes). A line
# holding one is the Reader's (a CRLF line end is dropped first).
_NOT_PLAIN = re.compile(r"[();\\\r]")
# What the tokenizer calls whitespace: space and tab only.
_FIELD = re.compile(r"[ \t]*([^ \t]+)")
_BLANK = re.compile(r"[ \t]*")
# A token of a plain line's data: a quoted string (no escapes in a plain
# line) or a run of characters up to whitespace or a quote.
_TOKEN = re.compile(r'[ \t]*(?:"([^"]*)"|([^ \t"]+))')


class _NotPlain(Exception):
    """This line is the Reader's to read."""


class LineReader:
    """Read ``text`` into ``txn`` (anything with the transaction calls the Reader makes).

    ``position()`` tells how far into ``text`` reading got when ``read`` raises.
    Plain lines are read here only for a transaction whose origin information
    is the root, not relativized (names kept absolute, none skipped), as
    :mod:`zoneflow.dns.zonefile` gives it; for any other, the Reader reads all.
    """

    def __init__(
        self, text: str, txn: Any, *, rdclass: dns.rdataclass.RdataClass = dns.rdataclass.IN
    ) -> None:
        self.text = text
        self.txn = txn
        self.rdclass = rdclass
        self.reader = dns.zonefile.Reader(
            dns.tokenizer.Tokenizer("", FILENAME),
            rdclass,
            cast(dns.transaction.Transaction, txn),
            allow_include=False,
        )
        # Where the line being read starts and ends in ``text``, and the
        # Reader's source while it reads a stretch of lines, for position().
        self._offset = 0
        self._line_end = 0
        self.entries_by_reader = 0  # stretches of the file the Reader read (what tests see)
        self._source: io.StringIO | None = None
        self._names_origin: dns.name.Name | None = None
        self._names: dict[str, dns.name.Name] = {}
        self._ttls: dict[str, int | None] = {}
        self._classes: dict[str, dns.rdataclass.RdataClass | None] = {}
        self._types: dict[str, dns.rdatatype.RdataType] = {}

    def read(self) -> None:
        # $UNICODE changes how the tokenizer reads names from then on: such a
        # rare file is read by the Reader alone rather than tracking it here.
        own = self.reader.zone_origin == dns.name.root and not self.reader.relativize
        if not own or "$UNICODE" in self.text.upper():
            self._by_reader(len(self.text))
            return
        text = self.text
        end = len(text)
        while self._offset < end:
            newline = text.find("\n", self._offset)
            if newline < 0:
                newline = end
            line = text[self._offset : newline]
            self._line_end = newline + 1
            if not self._plain(line):
                self._by_reader(_entry_end(text, self._offset))
                continue
            self._offset = newline + 1

    def position(self) -> int:
        """How far into ``text`` reading got: past the line of the record being read."""
        if self._source is not None:
            return self._offset + self._source.tell()
        return min(self._line_end, len(self.text))

    # -- the Reader ---------------------------------------------------------------------

    def _by_reader(self, end: int) -> None:
        """The Reader reads ``text`` up to ``end`` (a line's end), from the state so far."""
        self.entries_by_reader += 1
        self._source = io.StringIO(self.text[self._offset : end])
        self.reader.tok = dns.tokenizer.Tokenizer(self._source, FILENAME)
        self.reader.read()
        self._source = None
        self._offset = end + 1

    # -- plain lines --------------------------------------------------------------------

    def _plain(self, line: str) -> bool:
        """Read a plain record line and give it to the transaction; False (nothing
        read, nothing changed) for a line the Reader must read."""
        if line.endswith("\r"):
            line = line[:-1]  # a CRLF line end: the CR ends the line, the LF is skipped
        if _BLANK.fullmatch(line):
            return True
        if line[0] == "$" or _NOT_PLAIN.search(line):
            return False
        try:
            name, ttl, rdata, ttl_read = self._fields(line)
        except Exception:  # the Reader reads the line again: what it says is the answer
            return False
        reader = self.reader
        reader.last_name = name
        if ttl_read:
            reader.last_ttl, reader.last_ttl_known = ttl, True
        self.txn.add(name, ttl, rdata)
        return True

    def _fields(self, line: str) -> tuple[dns.name.Name, int, dns.rdata.Rdata, bool]:
        """Owner, TTL, data of a plain line and whether it gave its TTL, decided as
        ``dns.zonefile.Reader._rr_line`` decides them; raises where the Reader would
        refuse or go on differently."""
        reader = self.reader
        origin = reader.current_origin
        if origin is None:
            raise _NotPlain
        position = 0
        if line[0] in " \t":
            name = reader.last_name
            if name is None:
                raise _NotPlain
        else:
            owner, position = _field(line, position)
            name = self._name(owner, origin)
        field, position = _field(line, position)
        ttl = self._ttl(field)
        ttl_read = ttl is not None
        if ttl_read:
            field, position = _field(line, position)
        rdclass = self._class(field)
        if rdclass is None:
            rdclass = self.rdclass
        else:
            field, position = _field(line, position)
        if rdclass != self.rdclass:
            raise _NotPlain
        if ttl is None:
            ttl = self._ttl(field)
            if ttl is None:
                ttl = reader._implicit_ttl()
            else:
                ttl_read = True
                field, position = _field(line, position)
        rdtype = self._type(field)
        # An SOA may set the default TTL from its minimum: the Reader's.
        if ttl is None or rdtype == dns.rdatatype.SOA:
            raise _NotPlain
        rdata = dns.rdata.from_text(
            rdclass, rdtype, _Tokens(line, position), origin, reader.relativize, reader.zone_origin
        )
        return name, ttl, rdata, ttl_read

    def _name(self, owner: str, origin: dns.name.Name) -> dns.name.Name:
        # Owners repeat (a name's A, AAAA and MX lines): each parsed once per origin.
        if origin is not self._names_origin:
            self._names_origin, self._names = origin, {}
        name = self._names.get(owner)
        if name is None:
            name = self._names[owner] = dns.name.from_text(owner, origin)
        return name

    def _ttl(self, field: str) -> int | None:
        """The TTL ``field`` gives, or None when it is no TTL (then the class or type)."""
        if field not in self._ttls:
            try:
                self._ttls[field] = dns.ttl.from_text(field)
            except dns.ttl.BadTTL:
                self._ttls[field] = None
        return self._ttls[field]

    def _class(self, field: str) -> dns.rdataclass.RdataClass | None:
        """The class ``field`` names, or None when it names none (then it is the TTL or type)."""
        if field not in self._classes:
            try:
                self._classes[field] = dns.rdataclass.from_text(field)
            except dns.exception.SyntaxError:
                raise  # the Reader refuses the line too
            except Exception:
                self._classes[field] = None
        return self._classes[field]

    def _type(self, field: str) -> dns.rdatatype.RdataType:
        rdtype = self._types.get(field)
        if rdtype is None:
            rdtype = self._types[field] = dns.rdatatype.from_text(field)
        return rdtype


class _Tokens(dns.tokenizer.Tokenizer):
    """The tokens of a plain line's data from ``position`` on, as dnspython's tokenizer
    would give them, split with a regular expression rather than a character at a
    time (most of the tokenizer's cost). A call only the general tokenizer answers
    (leading whitespace asked for) raises, and the Reader reads the line."""

    def __init__(self, line: str, position: int) -> None:
        super().__init__("", FILENAME)
        tokens = []
        end = len(line)
        while position < end:
            found = _TOKEN.match(line, position)
            if found is None:
                if _BLANK.fullmatch(line, position):
                    break
                raise _NotPlain  # an unclosed quote
            quoted, identifier = found.groups()
            if identifier is None:
                tokens.append(dns.tokenizer.Token(dns.tokenizer.QUOTED_STRING, quoted))
            else:
                tokens.append(dns.tokenizer.Token(dns.tokenizer.IDENTIFIER, identifier))
            position = found.end()
        tokens.reverse()
        self.tokens = tokens

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        if want_leading:
            raise _NotPlain
        token = self.ungotten_token
        if token is not None:
            self.ungotten_token = None
            return token
        if self.tokens:
            return self.tokens.pop()
        return dns.tokenizer.Token(dns.tokenizer.EOF)


def _field(line: str, position: int) -> tuple[str, int]:
    """The field after ``position`` and where it ends; a field with a quote is the
    Reader's (the tokenizer splits at quotes and reads quoted strings whole)."""
    found = _FIELD.match(line, position)
    if found is None:
        raise _NotPlain
    field = found.group(1)
    if '"' in field:
        raise _NotPlain
    return field, found.end()


def _entry_end(text: str, start: int) -> int:
    """Where the entry (record or directive) starting at ``start`` ends: the first
    newline outside parentheses, quotes and comments; the end of the text if the
    entry never closes (the Reader then says what is wrong)."""
    depth = 0
    quoted = escaped = comment = False
    for index in range(start, len(text)):
        char = text[index]
        if char == "\n" and not quoted:
            # The tokenizer's line end (and a CR's, below) ends a comment; only a
            # newline outside parentheses ends the entry.
            comment = escaped = False
            if depth == 0:
                return index
        elif comment:
            if char == "\r":
                comment = False
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            if char == '"':
                quoted = False
            elif char == "\n":
                return len(text)
        elif char == '"':
            quoted = True
        elif char == ";":
            comment = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return len(text)
    return len(text)
