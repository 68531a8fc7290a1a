"""The connection every client gets from settings: Kafka security per mode, TXGUARD_KAFKA_CONFIG,
MSK IAM tokens, PostgreSQL TLS and RDS IAM tokens, the AWS SDK's retries; secrets kept out of
what is printed and out of every command line."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from txguard import clients as clients_module
from txguard import supervisor
from txguard.cli import settings_problems
from txguard.clients import Clients
from txguard.connections import (
    KafkaUnavailable,
    MskIamToken,
    PostgresConnector,
    aws_client_options,
    check_kafka,
    kafka_config,
    kafka_python_config,
)
from txguard.settings import Settings
from txguard.stack import Endpoints

PASSWORD = "pw-s3cr@t=!"  # noqa: S105 - a test value that must never be printed
BOOTSTRAP = "b-1.example:9096"
ENDPOINTS = Endpoints(BOOTSTRAP, "postgresql://txguard@db.example:5432/txguard", "http://127.0.0.1:9", "")


@pytest.fixture
def aws_credentials(monkeypatch):
    """A key for the default credential chain: the signers sign locally, nothing is sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-key")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


# --- Kafka: the exact configuration per mode ---------------------------------------------------


def test_plaintext_is_the_default():
    assert kafka_config(Settings(), BOOTSTRAP) == {"bootstrap.servers": BOOTSTRAP, "security.protocol": "PLAINTEXT"}


def test_with_json_logs_librdkafka_logs_through_python_logging(caplog):
    conf = kafka_config(Settings(log_format="json"), "127.0.0.1:9")  # nothing listens: librdkafka logs it
    assert conf["logger"].name == "librdkafka"
    producer = Producer(conf | {"socket.connection.setup.timeout.ms": 1000})
    with caplog.at_level("DEBUG", logger="librdkafka"):
        deadline = time.monotonic() + 10
        while not any(r.name == "librdkafka" for r in caplog.records) and time.monotonic() < deadline:
            producer.poll(0.5)
    assert any("127.0.0.1:9" in r.getMessage() for r in caplog.records if r.name == "librdkafka")


def test_tls_with_a_client_certificate():
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_ca_location="/etc/ca.pem",
                        kafka_ssl_certificate_location="/etc/client.pem", kafka_ssl_key_location="/etc/client.key",
                        kafka_ssl_key_password=PASSWORD)  # fmt: skip
    assert kafka_config(settings, BOOTSTRAP) == {
        "bootstrap.servers": BOOTSTRAP, "security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/client.pem", "ssl.key.location": "/etc/client.key",
        "ssl.key.password": PASSWORD,
    }  # fmt: skip


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_with_a_user_and_password(mechanism):
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism,
                        kafka_sasl_username="txguard", kafka_sasl_password=PASSWORD)  # fmt: skip
    assert kafka_config(settings, BOOTSTRAP) == {
        "bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
        "sasl.username": "txguard", "sasl.password": PASSWORD,
    }  # fmt: skip


def test_msk_iam_signs_oauthbearer_tokens_from_the_credential_chain(aws_credentials):
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="AWS_MSK_IAM",
                        aws_region="eu-west-1")  # fmt: skip
    conf = kafka_config(settings, BOOTSTRAP)
    assert {k: v for k, v in conf.items() if k != "oauth_cb"} == {
        "bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}  # fmt: skip
    token, expiry = conf["oauth_cb"]("")  # librdkafka's call, with sasl.oauthbearer.config
    # The token is MSK's: a SigV4-presigned kafka-cluster:Connect URL, base64url without padding.
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com" and query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEEXAMPLE00/") and "/eu-west-1/kafka-cluster/" in (
        query["X-Amz-Credential"][0])  # fmt: skip
    assert time.time() < expiry <= time.time() + 900  # seconds since the epoch, as librdkafka wants


def test_an_msk_token_is_reused_until_a_minute_before_it_expires():
    calls = []

    def sign(region):
        calls.append(region)
        return f"token-{len(calls)}", int((time.time() + 900) * 1000) if len(calls) == 1 else 0

    tokens = MskIamToken("us-east-1", generate=sign)
    assert tokens("")[0] == tokens("")[0] == "token-1" and calls == ["us-east-1"]
    tokens._token = ("token-1", time.time() + 30)  # now within its last minute
    assert tokens("")[0] == "token-2"


def test_other_librdkafka_properties_pass_through_as_json_over_txguards():
    extra = {"ssl.endpoint.identification.algorithm": "none", "client.id": "txguard-eu", "linger.ms": 5}
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="u", kafka_sasl_password=PASSWORD,
                        kafka_config=json.dumps(extra))  # fmt: skip
    conf = kafka_config(settings, BOOTSTRAP)
    assert conf == {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": "u", "sasl.password": PASSWORD, **extra}  # fmt: skip


def test_pass_through_from_a_properties_or_json_file(tmp_path):
    properties = tmp_path / "client.properties"
    properties.write_text("# as Confluent Cloud hands them out\nsecurity.protocol=SASL_SSL\nsasl.mechanisms=PLAIN\n"
                          "sasl.username = key\nsasl.password: p\\=w\\\n  ord\n")  # fmt: skip
    conf = kafka_config(Settings(kafka_config=str(properties)), BOOTSTRAP)
    assert conf == {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                    "sasl.username": "key", "sasl.password": "p=word"}  # fmt: skip
    as_json = tmp_path / "client.json"
    as_json.write_text('{"security.protocol": "SSL", "ssl.ca.location": "/ca.pem"}')
    assert kafka_config(Settings(kafka_config=str(as_json)), BOOTSTRAP)["ssl.ca.location"] == "/ca.pem"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('{"sasl.password": "' + PASSWORD + '",}', "not valid JSON (line 1, column"),
        ('{"sasl": {"password": "x"}}', "expected one JSON object of librdkafka properties"),
        ("/nonexistent/client.properties", "cannot read /nonexistent/client.properties"),
    ],
)
def test_a_bad_pass_through_is_one_line_without_its_content(value, why):
    with pytest.raises(ValidationError) as caught:
        Settings(kafka_config=value)
    message = settings_problems(caught.value)
    assert why in message and PASSWORD not in message and "\n" not in message


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs kafka_sasl_mechanism"),
        ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
         "needs kafka_security_protocol SASL_SSL"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "u"},
         "needs kafka_sasl_username and kafka_sasl_password"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "AWS_MSK_IAM"},
         "AWS_MSK_IAM needs kafka_security_protocol SASL_SSL"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"postgres_iam_auth": True}, "postgres_iam_auth needs postgres_dsn"),
        ({"postgres_iam_auth": True, "postgres_dsn": "postgresql://u@h/d", "postgres_sslmode": "disable"},
         "needs TLS"),
        ({"postgres_iam_auth": True, "postgres_dsn": "postgresql:///txguard"}, "needs the RDS host and user"),
        ({"postgres_iam_auth": True, "postgres_dsn": "postgresql://u:pw@h/d?oops"}, "postgres_dsn does not parse"),
    ],
)  # fmt: skip
def test_incomplete_security_settings_are_refused(settings, why):
    with pytest.raises(ValidationError, match=why):
        Settings(**settings)


def test_every_client_txguard_builds_gets_the_security_settings(monkeypatch):
    """Producer, transactional producer, consumer and admin client: the same connection, txguard's
    tuning kept, and the pass-through over it."""
    built = []
    monkeypatch.setattr(clients_module, "check_kafka", lambda conf, timeout_s: None)  # no broker here
    for name in ("ReportingProducer", "Consumer", "AdminClient"):
        monkeypatch.setattr(clients_module, name, lambda conf, name=name: built.append((name, conf)))
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                        kafka_sasl_username="u", kafka_sasl_password=PASSWORD,
                        kafka_config='{"ssl.ca.location": "/ca.pem", "linger.ms": 5}')  # fmt: skip
    clients = Clients(settings, ENDPOINTS)
    clients.producer()
    clients.producer(**{"transactional.id": "scorer-0"})
    clients.consumer("persist")
    clients.admin()
    security = {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "u", "sasl.password": PASSWORD, "ssl.ca.location": "/ca.pem"}  # fmt: skip
    assert [name for name, _ in built] == ["ReportingProducer", "ReportingProducer", "Consumer", "AdminClient"]
    for _, conf in built:
        assert conf.items() >= security.items()
    assert built[0][1]["linger.ms"] == 5 and built[0][1]["compression.type"] == "lz4"  # pass-through over tuning
    assert built[1][1]["transactional.id"] == "scorer-0" and built[2][1]["group.id"] == "persist"


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "u",
         "kafka_sasl_password": PASSWORD},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u",
         "kafka_sasl_password": PASSWORD, "kafka_config": '{"ssl.endpoint.identification.algorithm": "https"}'},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "AWS_MSK_IAM"},
    ],
)  # fmt: skip
def test_librdkafka_accepts_every_mode(settings, aws_credentials):
    """Real clients of each kind take the configuration (librdkafka refuses an unknown property or
    value when a client is created); the bootstrap leads nowhere, nothing is sent."""
    conf = {**kafka_config(Settings(**settings), "127.0.0.1:1"), "log_level": 0}
    Producer(conf).flush(0)
    Consumer({**conf, "group.id": "g"}).close()
    AdminClient(conf)


def test_kafka_python_gets_the_same_connection(aws_credentials):
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                        kafka_sasl_username="u", kafka_sasl_password=PASSWORD,
                        kafka_config='{"ssl.ca.location": "/ca.pem", "ssl.endpoint.identification.algorithm": "none",'
                                     ' "linger.ms": 5}')  # fmt: skip
    assert kafka_python_config(settings, BOOTSTRAP) == {
        "bootstrap_servers": BOOTSTRAP, "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u", "sasl_plain_password": PASSWORD, "ssl_cafile": "/ca.pem",
        "ssl_check_hostname": False,
    }  # fmt: skip
    msk = kafka_python_config(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="AWS_MSK_IAM"), "b:1")
    assert msk["sasl_mechanism"] == "OAUTHBEARER" and msk["security_protocol"] == "SASL_SSL"
    token = msk["sasl_oauth_token_provider"].token()
    assert "kafka-cluster" in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def test_no_answer_from_kafka_is_one_line_after_the_timeout():
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
                        kafka_sasl_username="u", kafka_sasl_password=PASSWORD)  # fmt: skip
    with pytest.raises(KafkaUnavailable) as caught:
        check_kafka(kafka_config(settings, f"127.0.0.1:{port}"), timeout_s=1.0)
    message = str(caught.value)
    assert message.startswith(f"Kafka at 127.0.0.1:{port} did not answer within 1 s (SASL_PLAINTEXT, SASL "
                              "SCRAM-SHA-256 as 'u')")  # fmt: skip
    assert "\n" not in message and PASSWORD not in message and caught.value.exit_code == 1


# --- secrets: never printed, never on a command line -------------------------------------------


def test_secrets_are_not_in_the_printed_settings():
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                        kafka_sasl_password=PASSWORD, kafka_ssl_key_password=PASSWORD,
                        kafka_config=f'{{"sasl.password": "{PASSWORD}"}}')  # fmt: skip
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)


def test_services_get_the_connection_settings_through_the_environment_not_argv(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, env: started.append((argv, env)))
    settings = Settings(home=tmp_path, kafka_bootstrap=BOOTSTRAP, kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u", kafka_sasl_password=PASSWORD,
                        kafka_config=f'{{"ssl.key.password": "{PASSWORD}"}}', postgres_sslmode="verify-full",
                        postgres_sslrootcert="/rds-ca.pem", postgres_dsn="postgresql://u@db/x",
                        postgres_iam_auth=True)  # fmt: skip
    supervisor.start_services(settings)
    assert len(started) == 3
    for argv, env in started:
        assert not any(PASSWORD in arg for arg in argv)
        # What a child reads from its environment is what the parent had.
        for name in supervisor.CONNECTION_SETTINGS:
            monkeypatch.setenv(f"TXGUARD_{name.upper()}", env[f"TXGUARD_{name.upper()}"])
        child = Settings(_env_file=None)
        assert all(getattr(child, name) == getattr(settings, name) for name in supervisor.CONNECTION_SETTINGS)
        assert child.kafka_sasl_password.get_secret_value() == PASSWORD and child.postgres_iam_auth is True


# --- PostgreSQL --------------------------------------------------------------------------------


def test_sslmode_and_root_certificate_from_settings_win_over_the_dsn():
    settings = Settings(postgres_sslmode="verify-full", postgres_sslrootcert="/etc/rds-ca.pem")
    connector = PostgresConnector(settings, "postgresql://u:p@db/x?sslmode=prefer")
    assert connector.options() == {"connect_timeout": 5, "sslmode": "verify-full", "sslrootcert": "/etc/rds-ca.pem"}
    assert PostgresConnector(Settings(), "postgresql://u:p@db/x?sslmode=require").options() == {"connect_timeout": 5}


class CountingRds:
    """boto3's real RDS client (it signs locally), counting the tokens asked for."""

    def __init__(self):
        self.client = boto3.client("rds", region_name="eu-west-1")
        self.calls = []

    def generate_db_auth_token(self, **kwargs):
        self.calls.append(kwargs)
        return self.client.generate_db_auth_token(**kwargs)


def test_rds_iam_tokens_are_the_password_and_renewed_before_they_expire(aws_credentials):
    rds, now = CountingRds(), [1000.0]
    settings = Settings(postgres_dsn="postgresql://txguard@db.abc.eu-west-1.rds.amazonaws.com:5433/txguard",
                        postgres_iam_auth=True, aws_region="eu-west-1")  # fmt: skip
    connector = PostgresConnector(settings, settings.postgres_dsn.get_secret_value(), rds_client=lambda: rds,
                                  clock=lambda: now[0])  # fmt: skip
    options = connector.options()
    assert options["sslmode"] == "require"  # RDS takes a token only over TLS
    assert rds.calls == [{"DBHostname": "db.abc.eu-west-1.rds.amazonaws.com", "Port": 5433, "DBUsername": "txguard",
                          "Region": "eu-west-1"}]  # fmt: skip
    token = urlparse("https://" + options["password"])
    assert token.hostname == "db.abc.eu-west-1.rds.amazonaws.com" and token.port == 5433
    assert parse_qs(token.query)["Action"] == ["connect"] and parse_qs(token.query)["DBUser"] == ["txguard"]
    assert int(parse_qs(token.query)["X-Amz-Expires"][0]) == 900
    now[0] += 9 * 60  # a new connection within the token's life reuses it
    assert connector.options()["password"] == options["password"] and len(rds.calls) == 1
    now[0] += 60  # ten minutes: five left, so the next connection gets a fresh token
    connector.options()
    assert len(rds.calls) == 2


# --- AWS ---------------------------------------------------------------------------------------


def test_aws_clients_use_the_credential_chain_region_and_adaptive_retries(aws_credentials):
    options = aws_client_options(Settings(aws_region="eu-west-1"), "")
    assert set(options) == {"region_name", "config"}  # no keys: the default chain finds them
    client = boto3.client("dynamodb", **options)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    local = aws_client_options(Settings(), "http://127.0.0.1:5000")
    assert local["endpoint_url"] == "http://127.0.0.1:5000" and local["aws_access_key_id"] == "local"


def test_a_client_without_request_validation_still_sends_what_the_server_checks(aws_credentials):
    from botocore.stub import Stubber

    checked = boto3.client("dynamodb", **aws_client_options(Settings(), "http://127.0.0.1:5000"))
    unchecked = boto3.client("dynamodb", **aws_client_options(Settings(), "http://127.0.0.1:5000", validate=False))
    with Stubber(unchecked) as stub:  # a request the API model refuses goes out: the server is the judge
        stub.add_response("put_item", {}, {"TableName": "cards", "Item": {"k": {"S": 5}}})
        unchecked.put_item(TableName="cards", Item={"k": {"S": 5}})
    with pytest.raises(ParamValidationError):
        checked.put_item(TableName="cards", Item={"k": {"S": 5}})
