"""How every client connects, from settings: Kafka security (TLS, SASL, MSK IAM, pass-through
librdkafka properties), PostgreSQL TLS and RDS IAM tokens, and the AWS SDK's retry mode.

:class:`txguard.clients.Clients` builds every producer, consumer and admin client, every
PostgreSQL connection and every boto3 client through these functions, so one setting reaches
all of them. Secrets stay ``SecretStr`` until the moment a client is built, and no function
here logs a configuration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from txguard.kafka_properties import extra_kafka_properties

if TYPE_CHECKING:
    from txguard.settings import Settings

# Our name for Amazon MSK's IAM access control: SASL/OAUTHBEARER with a token that the AWS
# credential chain signs (aws-msk-iam-sasl-signer-python); the same name as MSK's Java library.
MSK_IAM = "AWS_MSK_IAM"
# RDS IAM tokens are valid for 15 minutes (only when a connection opens): take a new one after this.
RDS_TOKEN_REUSE_S = 10 * 60
# The AWS SDK's client-side rate limiting: DynamoDB throttling backs every request off, not only the retried one.
AWS_RETRIES = {"max_attempts": 10, "mode": "adaptive"}


class KafkaUnavailable(Exception):
    """Kafka did not answer in time: one line, without any secret."""

    exit_code = 1  # a supervisor may try again: the broker may come back


class KafkaAuthFailed(KafkaUnavailable):
    """The broker refused the credentials (or the TLS handshake): trying again cannot help."""

    exit_code = 2


# --- Kafka -------------------------------------------------------------------------------------


class MskIamToken:
    """SASL/OAUTHBEARER tokens for Amazon MSK IAM, signed from the default AWS credential chain.

    librdkafka calls it as its ``oauth_cb`` (and refreshes at 80 % of the token's life);
    kafka-python asks through :func:`kafka_python_config`'s provider. A token is reused until a
    minute before it expires, so many connections opening together sign once.
    """

    def __init__(self, region: str, generate: Callable[[str], tuple[str, int]] | None = None):
        self.region = region
        self._generate = generate
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (token, expiry in epoch seconds)

    def token(self) -> tuple[str, float]:
        with self._lock:
            if self._token is None or self._token[1] - time.time() < 60:
                generate = self._generate
                if generate is None:
                    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

                    generate = MSKAuthTokenProvider.generate_auth_token
                token, expiry_ms = generate(self.region)
                self._token = (token, expiry_ms / 1000)
            return self._token

    def __call__(self, _oauthbearer_config: str) -> tuple[str, float]:
        return self.token()


def kafka_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """The librdkafka properties every txguard client shares: where the brokers are, how to
    reach them securely, and ``TXGUARD_KAFKA_CONFIG`` over both."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": settings.kafka_security_protocol}
    tls = {
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
        "ssl.key.password": settings.kafka_ssl_key_password.get_secret_value(),
    }
    conf |= {key: value for key, value in tls.items() if value}
    mechanism = settings.kafka_sasl_mechanism
    if mechanism == MSK_IAM:
        conf |= {"sasl.mechanism": "OAUTHBEARER", "oauth_cb": MskIamToken(settings.aws_region)}
    elif mechanism:
        conf |= {"sasl.mechanism": mechanism, "sasl.username": settings.kafka_sasl_username,
                 "sasl.password": settings.kafka_sasl_password.get_secret_value()}  # fmt: skip
    if settings.log_format == "json":  # librdkafka's own lines through the JSON formatter, not raw to stderr
        conf["logger"] = logging.getLogger("librdkafka")
    return conf | extra_kafka_properties(settings.kafka_config.get_secret_value())


# librdkafka property -> kafka-python keyword, for the properties both clients know.
KAFKA_PYTHON_NAMES = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security_protocol",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "ssl.crl.location": "ssl_crlfile",
    "ssl.cipher.suites": "ssl_ciphers",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "client.id": "client_id",
    "request.timeout.ms": "request_timeout_ms",
}


def kafka_python_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """The same connection as :func:`kafka_config`, as kafka-python keywords (librdkafka-only
    properties have no kafka-python equivalent and are left out)."""
    conf = kafka_config(settings, bootstrap)
    out: dict[str, Any] = {KAFKA_PYTHON_NAMES[key]: value for key, value in conf.items() if key in KAFKA_PYTHON_NAMES}
    if conf.get("ssl.endpoint.identification.algorithm") == "none":
        out["ssl_check_hostname"] = False
    if "oauth_cb" in conf:
        out["sasl_oauth_token_provider"] = _kafka_python_token_provider(conf["oauth_cb"])
    return out


def _kafka_python_token_provider(oauth_cb: Callable[[str], tuple[str, float]]) -> Any:
    try:  # kafka-python 3
        from kafka.net.sasl.oauth import AbstractTokenProvider
    except ImportError:  # kafka-python 2.1+
        from kafka.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self) -> str:
            return oauth_cb("")[0]

    return Provider()


def check_kafka(conf: dict[str, Any], timeout_s: float) -> None:
    """Return once the brokers in ``conf`` answer a metadata request with these credentials.

    Raises :class:`KafkaAuthFailed` as soon as librdkafka reports an authentication (or TLS)
    failure, and :class:`KafkaUnavailable` after ``timeout_s`` without an answer: one line
    each, where librdkafka alone would retry and log forever.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    # log_level 0: librdkafka's own lines would repeat every retry; its errors come here instead.
    quiet: dict[str, Any] = {**conf, "error_cb": errors.append, "log_level": 0}
    try:
        admin = AdminClient(quiet)
    except (KafkaException, ValueError, TypeError) as exc:
        raise KafkaAuthFailed(f"Kafka client configuration refused: {_first_line(exc)}") from None
    where = conf.get("bootstrap.servers", "?")
    deadline = time.monotonic() + timeout_s
    reason = ""  # the latest error librdkafka reported about a broker: it says more than a timeout
    while True:
        try:
            admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            failed = _first_line(exc)
        admin.poll(0)  # serves error_cb
        for error in errors:
            if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
                raise KafkaAuthFailed(f"Kafka at {where} refused the connection ({_who(conf)}): "
                                      f"{_first_line(error.str())}")  # fmt: skip
            if error.code() != KafkaError._ALL_BROKERS_DOWN:
                reason = _first_line(error.str())
        errors.clear()
        if time.monotonic() >= deadline:
            raise KafkaUnavailable(f"Kafka at {where} did not answer within {timeout_s:g} s ({_who(conf)}): "
                                   f"{reason or failed}")  # fmt: skip


def _who(conf: dict[str, Any]) -> str:
    """The identity used, for an error message: never the password."""
    protocol = conf.get("security.protocol", "PLAINTEXT")
    if "oauth_cb" in conf:
        return f"{protocol}, MSK IAM"
    if "sasl.mechanism" in conf:
        return f"{protocol}, SASL {conf['sasl.mechanism']} as {conf.get('sasl.username', '?')!r}"
    return protocol


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__


# --- PostgreSQL --------------------------------------------------------------------------------


class PostgresConnector:
    """Opens psycopg2 connections to the settings' PostgreSQL: the DSN, plus ``sslmode`` /
    ``sslrootcert`` from settings, plus an RDS IAM token as the password when enabled.

    An IAM token authenticates only the opening of a connection and lasts 15 minutes, so a
    token is reused for :data:`RDS_TOKEN_REUSE_S` and a fresh one signed after that; open
    connections stay valid.
    """

    def __init__(self, settings: Settings, dsn: str, rds_client: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.dsn = dsn
        self.sslmode = settings.postgres_sslmode
        self.sslrootcert = settings.postgres_sslrootcert
        self.iam = settings.postgres_iam_auth
        self.region = settings.aws_region
        self._rds_client = rds_client
        self._clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (token, when signed)

    def options(self) -> dict[str, Any]:
        """The keyword arguments :func:`psycopg2.connect` gets besides the DSN (they win over it)."""
        options: dict[str, Any] = {"connect_timeout": 5}
        if self.sslmode:
            options["sslmode"] = self.sslmode
        if self.sslrootcert:
            options["sslrootcert"] = self.sslrootcert
        if self.iam:
            options["password"] = self.iam_token()
            if not self.sslmode:
                options["sslmode"] = "require"  # RDS accepts an IAM token only over TLS
        return options

    def iam_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() - self._token[1] >= RDS_TOKEN_REUSE_S:
                from psycopg2.extensions import parse_dsn

                dsn = parse_dsn(self.dsn)
                client = self._rds_client() if self._rds_client else _boto3_client("rds", self.region)
                token = client.generate_db_auth_token(DBHostname=dsn["host"], Port=int(dsn.get("port", 5432)),
                                                      DBUsername=dsn["user"], Region=self.region)  # fmt: skip
                self._token = (token, self._clock())
            return self._token[0]

    def __call__(self) -> Any:
        import psycopg2

        return psycopg2.connect(self.dsn, **self.options())


# --- AWS ---------------------------------------------------------------------------------------


def aws_client_options(settings: Settings, endpoint: str, *, validate: bool = True) -> dict[str, Any]:
    """boto3 client keywords: the settings' region, adaptive retries, and the default credential
    chain (environment, profile, SSO, instance or task role); a local endpoint takes any key.
    ``validate=False`` skips botocore's check of each request against the API model (the server
    checks it anyway): for a hot path whose requests come from a codec."""
    config = Config(retries=AWS_RETRIES, parameter_validation=validate)
    options: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if endpoint:
        options["endpoint_url"] = endpoint
        if endpoint.startswith(("http://127.0.0.1", "http://localhost")):
            options |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return options


def _boto3_client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region, config=Config(retries=AWS_RETRIES))
