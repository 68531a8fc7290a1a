"""docker-compose.yml: nothing published beyond loopback by default, no password built in; valid against the
Compose specification's JSON Schema; every command a real txguard command, every TXGUARD_* variable a setting;
the consumer services scale to the partitions."""

import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from txguard.cli import parser
from txguard.settings import SERVICE_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (ROOT / "docker-compose.yml").read_text()


def test_every_published_port_is_on_loopback_unless_told_otherwise():
    ports = re.findall(r"^\s*ports:\s*\[(.*)\]", COMPOSE, flags=re.M)
    assert len(ports) == 3
    for mapping in ports:
        for port in re.findall(r'"([^"]+)"', mapping):
            assert port.startswith("${TXGUARD_PUBLISH_ADDRESS:-127.0.0.1}:"), port


def test_secrets_come_from_the_env_file_with_no_default():
    assert re.search(r"POSTGRES_PASSWORD:-|TXGUARD_CARD_TOKEN_KEY:-", COMPOSE) is None
    uses = re.findall(r"\$\{(POSTGRES_PASSWORD|TXGUARD_CARD_TOKEN_KEY)(:\?[^}]*)?\}", COMPOSE)
    assert uses and all(required for _, required in uses)  # ${NAME:?message}: refused when unset
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, flags=re.M)
    assert re.search(r"^TXGUARD_CARD_TOKEN_KEY=$", example, flags=re.M)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


# --- the file against the Compose specification, the CLI and the settings ---------------------------------------------

SCHEMA = json.loads((ROOT / "deploy" / "schema" / "compose-spec.json").read_text())
SPEC = yaml.safe_load(COMPOSE)  # anchors and `<<:` merge keys resolved, as Compose does
SERVICES = SPEC["services"]
# The services that run the project's image, whose entrypoint is the Dockerfile's (`txguard`).
TXGUARD_SERVICES = {name: service for name, service in SERVICES.items() if "build" in service}
# Consumer groups that `docker compose up --scale NAME=N` may grow (the learner must stay one).
SCALED = ("persist", "scorer")


def test_the_file_is_valid_against_the_compose_specification():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(SPEC), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    ("where", "mistake"),
    [(("services", "scorer", "comand"), ["consume", "scorer"]),  # a misspelt key
     (("services", "scorer", "restart"), True),  # a wrong type
     (("services", "setup", "depends_on", "kafka", "condition"), "service_happy")],  # not one of the values
)  # fmt: skip
def test_the_schema_catches_mistakes(where, mistake):
    broken = yaml.safe_load(COMPOSE)
    parent = broken
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = mistake
    assert not jsonschema.Draft7Validator(SCHEMA).is_valid(broken)


def test_the_shipped_schema_names_its_source_and_version():
    note = (ROOT / "deploy" / "schema" / "README.md").read_text()
    assert "compose-spec/compose-spec" in note and "schema/compose-spec.json" in note
    assert re.search(r"\b[0-9a-f]{40}\b", note)  # the commit it was taken from
    assert hashlib.sha256((ROOT / "deploy" / "schema" / "compose-spec.json").read_bytes()).hexdigest() in note


def txguard_argv(service: dict) -> list[str]:
    """The arguments `txguard` gets in this service's container: entrypoint after `txguard`, then command."""
    entrypoint = service.get("entrypoint", ["txguard"])
    assert isinstance(entrypoint, list) and entrypoint[0] == "txguard", entrypoint
    command = service.get("command", [])
    assert isinstance(command, list), "exec form, so that no shell splits or expands it"
    return [*entrypoint[1:], *command]


@pytest.mark.parametrize("name", sorted(TXGUARD_SERVICES))
def test_every_service_runs_a_real_txguard_command(name, capsys):
    argv = txguard_argv(TXGUARD_SERVICES[name])
    try:
        args = parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{name}: `txguard {' '.join(argv)}` is refused by the CLI: {capsys.readouterr().err.strip()}")
    assert callable(args.func)


def test_the_consumer_services_are_each_consumer_group_once():
    commands = [txguard_argv(service) for service in TXGUARD_SERVICES.values()]
    consumers = sorted(argv[1] for argv in commands if argv[:1] == ["consume"])
    assert consumers == ["learner", "persist", "scorer"]


def txguard_variables() -> dict[str, str]:
    """Every TXGUARD_* variable the compose file or the Dockerfile sets, with where."""
    found = {}
    for name, service in TXGUARD_SERVICES.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        found.update({key: f"docker-compose.yml {name}" for key in environment if key.startswith("TXGUARD_")})
    dockerfile = DockerfileParser(str(ROOT / "Dockerfile"))
    found.update({key: "Dockerfile ENV" for key in dockerfile.envs if key.startswith("TXGUARD_")})
    return found


def test_every_txguard_variable_is_a_setting():
    prefix = Settings.model_config["env_prefix"]
    fields = set(Settings.model_fields)
    variables = txguard_variables()
    assert {"TXGUARD_KAFKA_BOOTSTRAP", "TXGUARD_POSTGRES_DSN", "TXGUARD_CARD_TOKEN_KEY"} <= set(variables)
    unknown = {key: where for key, where in variables.items()
               if key.removeprefix(prefix).lower() not in fields}  # fmt: skip
    assert not unknown, f"not a Settings field (a typo is silently ignored): {unknown}"


def test_scorer_and_persist_scale_to_every_partition():
    environment = TXGUARD_SERVICES["setup"]["environment"]  # setup creates the topics
    partitions = int(environment.get("TXGUARD_PARTITIONS", Settings.model_fields["partitions"].default))
    assert partitions >= 3, "--scale scorer=3 would leave a scorer without a partition"
    for name in SCALED:
        service = SERVICES[name]
        assert "container_name" not in service, f"{name}: a fixed name cannot be given to 3 containers"
        for port in service.get("ports", []):  # "9400" is fine; "9400:9400" would clash between replicas
            published = port.get("published") if isinstance(port, dict) else str(port).rpartition(":")[0]
            assert not published, f"{name}: host port {port} can be bound by one replica only"
        assert "scale" not in service and "replicas" not in service.get("deploy", {})  # --scale decides
        # The same consumer group for every replica: no per-replica namespace or group setting.
        assert service["environment"].get("TXGUARD_NAMESPACE") == environment.get("TXGUARD_NAMESPACE")


def test_the_learner_is_not_scaled():
    learner = SERVICES["learner"]
    assert learner.get("scale", 1) == 1 and learner.get("deploy", {}).get("replicas", 1) == 1


def test_each_consumer_exposes_its_metrics_port():
    base = int(SPEC["x-txguard-env"]["TXGUARD_METRICS_PORT"])
    for name in ("persist", "scorer", "learner"):
        assert SERVICES[name]["expose"] == [str(base + SERVICE_NAMES.index(name))]
