"""The server fixtures start servers that really serve."""

from __future__ import annotations

import socket
import subprocess

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import sqlalchemy
from kazoo.client import KazooClient

from tests.functional.conftest import Bind9Factory, start_server
from tests.functional.fixtures.bind9 import Bind9Server
from tests.functional.fixtures.ports import free_port
from tests.functional.fixtures.postgres import PostgresServer
from tests.functional.fixtures.process import MissingServerBinary, ServerStartError
from tests.functional.fixtures.zookeeper import ZooKeeperServer
from tests.support import eventually

ZONE = "example.test."
ZONE_TEXT = """\
$TTL 300
@   IN SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 600 86400 300
@   IN NS  ns1.example.test.
ns1 IN A   192.0.2.1
www IN A   192.0.2.80
"""


def soa_serial(server: Bind9Server, zone: str = ZONE) -> int | None:
    """The SOA serial ``server`` serves with authority, or None."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    response = dns.query.udp(query, server.host, port=server.port, timeout=2)
    if response.rcode() != dns.rcode.NOERROR or not response.answer:
        return None
    serial: int = response.answer[0][0].serial
    return serial


def add_primary_zone(server: Bind9Server, zone: str = ZONE) -> None:
    (server.workdir / "example.test.zone").write_text(ZONE_TEXT)
    server.rndc("addzone", zone, '{ type primary; file "example.test.zone"; };')


def kazoo_client(zookeeper: ZooKeeperServer) -> KazooClient:
    client = KazooClient(hosts=zookeeper.hosts, timeout=5.0)
    client.start(timeout=10.0)
    return client


def test_a_missing_server_program_fails_the_test_rather_than_skipping_it() -> None:
    def make() -> Bind9Server:
        raise MissingServerBinary("named")

    with pytest.raises(pytest.fail.Exception, match="run scripts/install-system-deps.sh"):
        start_server(make)


# BIND9


def test_bind9_serves_a_primary_zone_added_with_rndc(bind9: Bind9Server) -> None:
    add_primary_zone(bind9)

    assert soa_serial(bind9) == 2024010101
    query = dns.message.make_query("www." + ZONE, dns.rdatatype.A)
    response = dns.query.tcp(query, bind9.host, port=bind9.port, timeout=2)
    assert [rr.address for rr in response.answer[0]] == ["192.0.2.80"]


def test_bind9_refuses_a_zone_it_does_not_hold(bind9: Bind9Server) -> None:
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    response = dns.query.udp(query, bind9.host, port=bind9.port, timeout=2)

    assert response.rcode() == dns.rcode.REFUSED


def test_bind9_secondary_transfers_the_zone_from_another_bind9(
    bind9_factory: Bind9Factory,
) -> None:
    primary, secondary = bind9_factory(2)
    add_primary_zone(primary)

    secondary.rndc(
        "addzone",
        ZONE,
        f"{{ type secondary; primaries {{ {primary.host} port {primary.port}; }}; "
        f'file "example.test.secondary"; }};',
    )

    assert eventually(lambda: soa_serial(secondary), timeout=10, what="the transfer") == 2024010101


def test_bind9_rndc_works_with_the_pool_target_options(bind9: Bind9Server) -> None:
    options = bind9.pool_target(masters=[("127.0.0.1", 5354)])["options"]

    result = subprocess.run(
        ["rndc", "-s", options["rndc_host"], "-p", str(options["rndc_port"]),
         "-k", options["rndc_key_file"], "status"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "server is up and running" in result.stdout


def test_bind9_pool_target_describes_the_server(bind9: Bind9Server) -> None:
    target = bind9.pool_target(masters=[("127.0.0.1", 5354)])

    assert target["type"] == "bind9"
    assert target["masters"] == [{"host": "127.0.0.1", "port": 5354}]
    assert target["options"]["port"] == bind9.port
    assert bind9.nameserver() == {"host": "127.0.0.1", "port": bind9.port}


def test_bind9_comes_back_after_a_kill_with_its_added_zones(bind9: Bind9Server) -> None:
    add_primary_zone(bind9)
    port, rndc_port = bind9.port, bind9.rndc_port

    bind9.kill()
    with pytest.raises(ConnectionRefusedError):
        dns.query.tcp(dns.message.make_query(ZONE, "SOA"), bind9.host, port=bind9.port)
    bind9.start()

    assert (bind9.port, bind9.rndc_port) == (port, rndc_port)
    assert soa_serial(bind9) == 2024010101


def test_bind9_start_failure_shows_the_log_tail() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        server = Bind9Server(rndc_port=taken.getsockname()[1], start_timeout=2)
        try:
            with pytest.raises(ServerStartError, match="address in use"):
                server.start()
            assert not server.running
        finally:
            server.close()


# ZooKeeper


def test_zookeeper_answers_four_letter_words(zookeeper: ZooKeeperServer) -> None:
    assert zookeeper.four_letter_word("ruok") == "imok"
    # TaskFlow's jobboard reads the server version through "envi".
    assert "zookeeper.version=" in zookeeper.four_letter_word("envi")
    assert "minSessionTimeout=1000" in zookeeper.four_letter_word("conf")


def test_zookeeper_stores_znodes(zookeeper: ZooKeeperServer) -> None:
    client = kazoo_client(zookeeper)
    try:
        client.create("/fixture-test/stores", b"value", makepath=True)
        data, _ = client.get("/fixture-test/stores")
    finally:
        client.stop()
        client.close()

    assert data == b"value"


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_zookeeper_keeps_znodes_when_it_comes_back(zookeeper: ZooKeeperServer, how: str) -> None:
    path = f"/fixture-test/survives-{how}"
    client = kazoo_client(zookeeper)
    client.create(path, b"kept", makepath=True)
    client.stop()
    client.close()
    port = zookeeper.port

    if how == "restart":
        zookeeper.restart()
    else:
        zookeeper.kill()
        zookeeper.start()

    client = kazoo_client(zookeeper)
    try:
        data, _ = client.get(path)
    finally:
        client.stop()
        client.close()
    assert zookeeper.port == port
    assert data == b"kept"


# PostgreSQL


def test_postgres_database_holds_what_was_written(postgres: PostgresServer) -> None:
    postgres.create_database("fixture_holds")
    try:
        conn = postgres.connect("fixture_holds")
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE zones (name text PRIMARY KEY, serial bigint)")
            cur.execute("INSERT INTO zones VALUES (%s, %s)", ("example.test.", 2024010101))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT name, serial FROM zones")
            rows = cur.fetchall()
        conn.close()
    finally:
        postgres.drop_database("fixture_holds")

    assert rows == [("example.test.", 2024010101)]


def test_postgres_database_url_works_with_sqlalchemy(postgres_database: str) -> None:
    engine = sqlalchemy.create_engine(postgres_database)
    try:
        with engine.connect() as conn:
            name = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()

    assert postgres_database.endswith("/" + name)


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_postgres_keeps_data_when_it_comes_back(
    postgres: PostgresServer, postgres_database: str, how: str
) -> None:
    dbname = postgres_database.rsplit("/", 1)[1]
    conn = postgres.connect(dbname)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    conn.close()

    if how == "restart":
        postgres.restart()
    else:
        postgres.kill()
        postgres.start()

    conn = postgres.connect(dbname)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT answer FROM kept")
        assert cur.fetchone() == (42,)
    conn.close()
