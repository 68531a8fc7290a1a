"""`stack down` / `stack up` keeps what is stored: PostgreSQL and DynamoDB (dynalite) hold what they held,
the topics are made again, and `stack down` refuses to lose events not yet consumed without --force."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.topics import ALL_TOPICS, TRANSACTIONS
from txguard import stack
from txguard.app import App
from txguard.cli import main
from txguard.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(stack.dynalite_missing() is not None, reason=f"no dynalite: {stack.dynalite_missing()}"),
]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="txguard-restart-"))
    path.chmod(0o755)  # ours; as root, PostgreSQL's user keeps its data under it
    yield path
    stack.down(Settings(home=path))  # whatever the test left running
    shutil.rmtree(path, ignore_errors=True)


def _counts(app: App) -> tuple[int, int, set[str]]:
    conn = app.clients.pg()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM schema_migrations")
            migrations = cur.fetchone()[0]
    finally:
        conn.close()
    topics = set(app.clients.admin().list_topics(timeout=10).topics)
    return migrations, app.behavior_items(), {t for t in topics if t.startswith(f"{app.settings.namespace}.")}


def test_down_up_keeps_postgres_and_dynamodb_and_makes_the_topics_again(home, capsys):
    settings = Settings(home=home, namespace="kept", partitions=2)
    ports = {name: stack.free_port() for name in stack.DEFAULT_PORTS}
    app = App(settings)
    app.stack_up(ports)
    assert stack.dynamodb_in_use(settings).startswith("dynalite, durable")
    app.setup()
    ddb = app.clients.dynamodb()
    for card in ("a", "b", "c"):
        ddb.put_item(TableName=settings.behavior_table, Item={"card_token": {"S": card}})
    topic = settings.topic(TRANSACTIONS)
    producer = app.clients.producer()
    for i in range(5):
        producer.produce(topic, key=f"k{i}", value=b"{}")
    producer.flush()
    consumer = app.clients.consumer("persist")  # a group that read 3 of the 5 events
    consumer.subscribe([topic])
    read: list = []
    deadline = time.monotonic() + 60
    while len(read) < 3 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            read.append(message)
    assert len(read) >= 3
    for message in read[:3]:
        consumer.commit(message=message, asynchronous=False)
    consumer.close()
    before = _counts(app)
    assert before[1] == 3 and before[2] == {settings.topic(t) for t in ALL_TOPICS}

    assert main(["--home", str(home), "--namespace", "kept", "stack", "down"]) == 1  # would lose 2 events
    out = capsys.readouterr()
    assert "kept.persist: 2 event(s) not yet consumed" in out.out and "refusing to stop" in out.err
    assert stack.status(settings)["kafka"]["running"]
    assert main(["--home", str(home), "--namespace", "kept", "stack", "down", "--force"]) == 0

    again = App(settings)
    again.stack_up({name: stack.free_port() for name in stack.DEFAULT_PORTS})  # other ports: nothing is cached
    assert _counts(again) == before
