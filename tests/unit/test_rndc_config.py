"""Which rndc key a BIND9 target is reached with: key files and rndc.conf, as rndc reads them."""

from __future__ import annotations

import base64
import pathlib

import pytest

from zoneflow import exceptions
from zoneflow.backends import rndc_config
from zoneflow.backends.rndc_config import load_key, parse

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()


def key_clause(name: str, secret: str = SECRET, algorithm: str = "hmac-sha256") -> str:
    return f'key "{name}" {{\n\talgorithm {algorithm};\n\tsecret "{secret}";\n}};\n'


def test_a_key_file_gives_its_first_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rndc.key"
    path.write_text(
        "# written by rndc-confgen\n// and a comment\n/* a block\n comment */\n"
        + key_clause("first")
        + key_clause("second", OTHER)
    )
    key = load_key(key_file=str(path), config_file=None, server="127.0.0.1")
    assert (key.name, key.algorithm, key.secret) == (
        "first",
        "hmac-sha256",
        base64.b64decode(SECRET),
    )


def test_an_rndc_conf_picks_the_servers_key_then_default_key(tmp_path: pathlib.Path) -> None:
    (tmp_path / "keys.conf").write_text(key_clause("a") + key_clause("b", OTHER))
    conf = tmp_path / "rndc.conf"
    conf.write_text(
        'include "keys.conf";\n'
        'options { default-key "a"; default-server 127.0.0.1; default-port 953; };\n'
        'server 192.0.2.1 { key "b"; };\n'
    )
    assert load_key(key_file=None, config_file=str(conf), server="127.0.0.1").name == "a"
    assert load_key(key_file=None, config_file=str(conf), server="192.0.2.1").name == "b"


def test_an_rndc_conf_with_one_key_needs_no_default(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "rndc.conf"
    conf.write_text(key_clause("only", algorithm="hmac-md5"))
    key = load_key(key_file=None, config_file=str(conf), server="127.0.0.1")
    assert (key.name, key.algorithm) == ("only", "hmac-md5")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (key_clause("a") + key_clause("b", OTHER), "holds 2 keys and names none"),
        ('options { default-key "c"; };\n' + key_clause("a"), "names key 'c' but defines"),
        ('include "absent.key";\n', "cannot read .*absent.key, included from"),
    ],
    ids=["ambiguous", "undefined-default", "missing-include"],
)
def test_an_rndc_conf_that_names_no_usable_key_says_so(
    tmp_path: pathlib.Path, text: str, error: str
) -> None:
    conf = tmp_path / "rndc.conf"
    conf.write_text(text)
    with pytest.raises(exceptions.RndcKeyError, match=error):
        load_key(key_file=None, config_file=str(conf), server="127.0.0.1")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not a key\n", "holds no 'key .*line 1: statement lacks its ';'"),
        ('key "k" { algorithm hmac-sha256; };\n', "line 1: key 'k' needs an algorithm and a"),
        (key_clause("k", secret="not base64!"), "line 1: the secret of key 'k' is not base64"),
        (key_clause("k", algorithm="hmac-sha3"), "line 1: .*'hmac-sha3'.*use one of"),
        ('key "k" { secret "abc', "unterminated quoted string"),
        ("/* never closed", "unterminated comment"),
        ('key "k" { algorithm hmac-md5; ', "'{' never closed"),
        ("};", "unexpected '}'"),
        ("", "holds no 'key"),
    ],
    ids=[
        "not-a-key",
        "no-secret",
        "bad-base64",
        "unknown-algorithm",
        "open-string",
        "open-comment",
        "open-brace",
        "stray-brace",
        "empty",
    ],
)
def test_a_bad_key_file_is_explained_without_its_secret(
    tmp_path: pathlib.Path, text: str, error: str
) -> None:
    path = tmp_path / "rndc.key"
    path.write_text(text)
    with pytest.raises(exceptions.RndcKeyError, match=error) as raised:
        load_key(key_file=str(path), config_file=None, server="127.0.0.1")
    assert SECRET not in str(raised.value)


def test_a_missing_key_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(exceptions.RndcKeyError, match="cannot read rndc_key_file .*absent.key"):
        load_key(key_file=str(tmp_path / "absent.key"), config_file=None, server="127.0.0.1")


def test_a_key_is_read_again_once_its_file_or_an_included_one_changes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    included = tmp_path / "keys.conf"
    included.write_text(key_clause("a"))
    conf = tmp_path / "rndc.conf"
    conf.write_text('include "keys.conf";\n')
    reads: list[str] = []
    read = rndc_config._read

    def counted(path: str, *args: object, **kwargs: object) -> list[rndc_config.Statement]:
        reads.append(path)
        return read(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rndc_config, "_read", counted)

    def key() -> rndc_config.RndcKey:
        return load_key(key_file=None, config_file=str(conf), server="127.0.0.1")

    assert key().secret == base64.b64decode(SECRET)
    assert key().secret == base64.b64decode(SECRET)
    assert reads == [str(conf), str(included)], "an unchanged key is kept, not read again"
    # A new secret of another length: the file's size tells, whatever its clock.
    included.write_text(
        key_clause("a", base64.b64encode(b"a longer secret than before!!").decode())
    )
    assert key().secret == b"a longer secret than before!!"
    # Replaced by another file (another inode) of the same size.
    replacement = tmp_path / "keys.new"
    replacement.write_text(key_clause("a", OTHER))
    replacement.replace(included)
    assert key().secret == base64.b64decode(OTHER)
    included.unlink()
    with pytest.raises(exceptions.RndcKeyError, match="cannot read .*keys.conf"):
        key()


def test_statements_keep_their_words_blocks_and_lines() -> None:
    statements = parse('a b;\nc { d "e f"; };\n', "x.conf")
    assert [(s.words, s.line) for s in statements] == [(("a", "b"), 1), (("c",), 2)]
    assert statements[1].value("d") == "e f"
