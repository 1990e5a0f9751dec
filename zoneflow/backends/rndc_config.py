"""The rndc key a BIND9 target is reached with, read from its key file or rndc.conf.

Both are in named.conf's syntax: ``key "name" { algorithm hmac-sha256;
secret "base64"; };`` clauses, ``include "file";``, and in an rndc.conf
``options { default-key "name"; };`` and ``server host { key "name"; };``.
Which key, as rndc picks it:

* ``rndc_config_file``: the key of the ``server`` clause for the target's
  rndc host, else ``default-key``, else the file's only key;
* ``rndc_key_file``: its first key clause;
* neither: ``rndc-key`` from /etc/bind/rndc.key, rndc's own default.

Relative ``include`` paths are read from the including file's directory.
A message never shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Iterable

from zoneflow import exceptions
from zoneflow.backends.rndc_protocol import RndcKey

DEFAULT_KEY_FILE = "/etc/bind/rndc.key"
DEFAULT_KEY_NAME = "rndc-key"

_TOKENS = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
    |(?P<open>/\*)
    |"(?P<string>(?:[^"\\]|\\.)*)"
    |(?P<punct>[{};])
    |(?P<word>[^\s{};"]+)
    """,
    re.S | re.X,
)


@dataclasses.dataclass(frozen=True)
class Statement:
    """``words... [{ block }];``"""

    words: tuple[str, ...]
    block: tuple[Statement, ...] | None
    line: int

    def value(self, name: str) -> str | None:
        """In a block, the word after ``name`` in its ``name value;`` statement."""
        for inner in self.block or ():
            if len(inner.words) >= 2 and inner.words[0] == name:
                return inner.words[1]
        return None


def parse(text: str, path: str) -> list[Statement]:
    """The statements of a named.conf-style text; RndcKeyError on bad syntax."""
    tokens: list[tuple[str, str, int]] = []  # (kind, text, line)
    position, line = 0, 1
    while position < len(text):
        match = _TOKENS.match(text, position)
        kind = match.lastgroup if match is not None else None
        if match is None or kind == "open":
            what = "comment" if kind == "open" else "quoted string"
            raise exceptions.RndcConfigSyntax(f"{path}: line {line}: unterminated {what}")
        position = match.end()
        if kind is not None and kind != "space":
            tokens.append((kind, match.group(kind), line))
        line += match.group(0).count("\n")
    statements, rest = _statements(tokens, path)
    if rest:
        raise exceptions.RndcConfigSyntax(f"{path}: line {rest[0][2]}: unexpected '}}'")
    return statements


def _statements(
    tokens: list[tuple[str, str, int]], path: str
) -> tuple[list[Statement], list[tuple[str, str, int]]]:
    """Statements up to a closing brace (left in what is returned) or the end."""
    statements: list[Statement] = []
    while tokens and tokens[0][1:2] != ("}",):
        words: list[str] = []
        block: tuple[Statement, ...] | None = None
        line = tokens[0][2]
        while True:
            if not tokens:
                raise exceptions.RndcConfigSyntax(f"{path}: line {line}: statement lacks its ';'")
            kind, text, at = tokens.pop(0)
            if kind == "punct" and text == ";":
                break
            if kind == "punct" and text == "{":
                inner, tokens = _statements(tokens, path)
                if not tokens:
                    raise exceptions.RndcConfigSyntax(f"{path}: line {at}: '{{' never closed")
                tokens = tokens[1:]
                block = tuple(inner)
            elif kind == "punct":
                raise exceptions.RndcConfigSyntax(f"{path}: line {at}: unexpected '}}'")
            else:
                words.append(text)
        if words or block is not None:
            statements.append(Statement(tuple(words), block, line))
    return statements, tokens


def _read(
    path: str, option: str, read: list[str], included_from: str | None = None
) -> list[Statement]:
    """A file's statements, its includes' spliced in where they stand; each file read
    is added to ``read``."""
    read.append(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        where = f"{path}, included from {included_from}" if included_from else f"{option} {path}"
        raise exceptions.RndcKeyError(f"cannot read {where}: {exc.strerror}") from None
    statements: list[Statement] = []
    for statement in parse(text, path):
        if statement.words[:1] == ("include",) and len(statement.words) == 2:
            included = os.path.join(os.path.dirname(path), statement.words[1])
            statements += _read(included, option, read, included_from=path)
        else:
            statements.append(statement)
    return statements


def _keys(statements: list[Statement], path: str) -> dict[str, RndcKey]:
    keys: dict[str, RndcKey] = {}
    for statement in statements:
        if statement.words[:1] != ("key",) or len(statement.words) != 2:
            continue
        name = statement.words[1]
        algorithm, secret = statement.value("algorithm"), statement.value("secret")
        if algorithm is None or secret is None:
            raise exceptions.RndcKeyError(
                f"{path}: line {statement.line}: key {name!r} needs an algorithm and a secret"
            )
        try:
            decoded = base64.b64decode(re.sub(r"\s+", "", secret), validate=True)
        except binascii.Error:
            raise exceptions.RndcKeyError(
                f"{path}: line {statement.line}: the secret of key {name!r} is not base64"
            ) from None
        try:
            keys.setdefault(name, RndcKey(name, algorithm.lower(), decoded))
        except exceptions.RndcKeyError as exc:
            raise exceptions.RndcKeyError(f"{path}: line {statement.line}: {exc}") from None
    return keys


def load_key(*, key_file: str | None, config_file: str | None, server: str) -> RndcKey:
    """The key rndc would use for ``server`` with these target options.

    Kept from one call to the next while the files it came from are unchanged
    (their size, modification time and inode): every rndc command asks for it,
    and reading and parsing them each time cost a conductor about 2 % of its
    CPU under load. A key file rewritten or replaced is read again.
    """
    wanted = (key_file, config_file, server)
    kept = _KEYS.get(wanted)
    if kept is not None and kept[0] == _stamps(path for path, _ in kept[0]):
        return kept[1]
    read: list[str] = []
    key = _load_key(key_file=key_file, config_file=config_file, server=server, read=read)
    _KEYS[wanted] = (_stamps(read), key)
    return key


# Keys loaded, by load_key's arguments: the files read, each with its stamp, and the key.
_KEYS: dict[tuple[str | None, str | None, str], tuple[tuple[tuple[str, object], ...], RndcKey]] = {}


def _stamps(paths: Iterable[str]) -> tuple[tuple[str, object], ...]:
    """Each file with what tells a change of it (None for one gone)."""
    stamped: list[tuple[str, object]] = []
    for path in paths:
        try:
            found = os.stat(path)
        except OSError:
            stamped.append((path, None))
        else:
            stamped.append((path, (found.st_size, found.st_mtime_ns, found.st_ino)))
    return tuple(stamped)


def _load_key(
    *, key_file: str | None, config_file: str | None, server: str, read: list[str]
) -> RndcKey:
    if config_file:
        return _from_config(config_file, server, read)
    if key_file:
        no_key = f"rndc_key_file {key_file} holds no 'key \"name\" {{ ... }};' clause"
        try:
            keys = _keys(_read(key_file, "rndc_key_file", read), key_file)
        except exceptions.RndcConfigSyntax as exc:
            raise exceptions.RndcKeyError(f"{no_key} ({exc})") from None
        if not keys:
            raise exceptions.RndcKeyError(no_key)
        return next(iter(keys.values()))
    try:
        keys = _keys(_read(DEFAULT_KEY_FILE, "the default key file", read), DEFAULT_KEY_FILE)
    except exceptions.RndcKeyError as exc:
        raise exceptions.RndcKeyError(f"{exc}: set the target's rndc_key_file") from None
    if DEFAULT_KEY_NAME not in keys:
        raise exceptions.RndcKeyError(
            f"{DEFAULT_KEY_FILE} defines no key {DEFAULT_KEY_NAME!r}: set the target's "
            "rndc_key_file"
        )
    return keys[DEFAULT_KEY_NAME]


def _from_config(path: str, server: str, read: list[str]) -> RndcKey:
    statements = _read(path, "rndc_config_file", read)
    keys = _keys(statements, path)
    chosen: str | None = None
    for statement in statements:
        if statement.words == ("server", server) and statement.value("key"):
            chosen = statement.value("key")
    if chosen is None:
        for statement in statements:
            if statement.words == ("options",):
                chosen = statement.value("default-key") or chosen
    if chosen is None:
        if len(keys) != 1:
            raise exceptions.RndcKeyError(
                f"rndc_config_file {path} holds {len(keys)} keys and names none for {server}: "
                'set options { default-key "name"; }'
            )
        chosen = next(iter(keys))
    if chosen not in keys:
        raise exceptions.RndcKeyError(
            f"rndc_config_file {path} names key {chosen!r} but defines no such key"
        )
    return keys[chosen]
