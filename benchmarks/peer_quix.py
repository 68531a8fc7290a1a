"""The peer: a persist job as a quix-streams user writes it, run by ``benchmarks.peer``.

It runs in its own virtual environment (benchmarks/.peer-venv, from
benchmarks/peer-requirements.txt): quix-streams pins confluent-kafka < 2.13 and
pydantic < 2.14, older than txguard's own. The code is the library's documented
pattern: an Application, a JSON topic, a StreamingDataFrame and the PostgreSQL sink,
with the defaults, writing each transaction as a row keyed by ``trans_num``
(ON CONFLICT DO NOTHING, as txguard's persist does)::

    PEER_PG='{"host": ..., "port": ..., "dbname": ..., "user": ..., "password": ...}' \\
        python benchmarks/peer_quix.py BROKER TOPIC GROUP SCHEMA TABLE STATE_DIR
"""

import json
import os
import sys

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink


def main() -> None:
    broker, topic_name, group, schema, table, state_dir = sys.argv[1:7]
    pg = json.loads(os.environ["PEER_PG"])  # the password is not on the command line
    app = Application(broker_address=broker, consumer_group=group, auto_offset_reset="earliest", state_dir=state_dir)
    topic = app.topic(topic_name, value_deserializer="json")
    sink = PostgreSQLSink(**pg, table_name=table, schema_name=schema, primary_key_columns="trans_num",
                          on_conflict_do_nothing=True, include_metadata=False)  # fmt: skip
    app.dataframe(topic).sink(sink)
    app.run()


if __name__ == "__main__":
    main()
