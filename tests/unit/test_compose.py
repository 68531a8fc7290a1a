"""docker-compose.yml: nothing published beyond loopback by default, no password built in."""

import re
from pathlib import Path

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
