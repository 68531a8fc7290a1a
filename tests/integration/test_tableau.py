"""``txguard tableau`` on real servers: the .tds data sources and the .hyper extract of the views."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date, datetime
from decimal import Decimal

import pytest
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from schemas.analyst import ANALYST_ROLE, ANALYST_VIEWS
from tests.integration.scored_data import replay_scored
from txguard import cli, stack
from txguard.app import App
from txguard.tableau import tds_path

pytestmark = pytest.mark.integration
# A stable order to compare rows by: the event-level views by trans_num, the aggregates by their key.
ORDER = {"daily_anomaly_trend": "day", "daily_activity": "day", "score_by_category": "category",
         "category_activity": "category", "anomalies_by_state": "state"}  # fmt: skip


@pytest.fixture(scope="module")
def scored(clients, services, tmp_path_factory):
    replay_scored(clients, services, tmp_path_factory.mktemp("q") / "q.jsonl")
    return clients


@pytest.fixture(scope="module")
def export(scored, tmp_path_factory):
    out = tmp_path_factory.mktemp("tableau")
    progress = []
    result = App(scored.settings).tableau(out, on_progress=progress.append)
    assert {p.view for p in progress} == set(ANALYST_VIEWS)
    return result


def _order_by(view: str) -> str:
    return ORDER.get(view, "trans_num" if view in ("scored_transactions", "alerts", "amount_vs_score") else "1")


def _pg_rows(clients, view: str, since: date | None = None) -> list[tuple]:
    where = sql.SQL("WHERE event_time >= %(since)s" if since else "")
    conn = clients.pg()
    with conn.cursor() as cur:
        query = sql.SQL("SELECT * FROM {} {} ORDER BY {}").format(sql.Identifier(view), where, sql.SQL(_order_by(view)))
        cur.execute(query, {"since": since})
        rows = cur.fetchall()
    conn.close()
    return rows


def _hyper_rows(path, view: str) -> list[tuple]:
    from tableauhyperapi import Connection, HyperProcess, TableName, Telemetry, escape_name

    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": str(path.parent)}) as hyper:
        with Connection(hyper.endpoint, database=path) as conn:
            key = _order_by(view)
            order = escape_name(key) if key != "1" else "1"
            table = TableName("Extract", view)
            return conn.execute_list_query(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608 - escaped names


def _same(pg, hyper) -> bool:
    if pg is None or hyper is None:
        return pg is hyper
    if isinstance(pg, float | Decimal):
        return math.isclose(float(pg), float(hyper), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(pg, datetime):
        return pg == hyper.to_datetime()
    if isinstance(pg, date):
        return pg == hyper.to_date()
    if isinstance(pg, str):
        return pg.rstrip() == hyper.rstrip()
    return pg == hyper


def test_each_data_source_opens_its_view_as_the_analyst_without_a_password(scored, export):
    dsn = parse_dsn(scored.endpoints.postgres_dsn)
    assert len(export.data_sources) == len(ANALYST_VIEWS)
    for view in ANALYST_VIEWS:
        path = tds_path(export.extract.parent, view)
        text = path.read_text()
        root = ET.fromstring(text)  # well-formed
        assert not [name for element in root.iter() for name in element.attrib if "password" in name.lower()]
        assert stack.analyst_password(scored.settings) not in text
        assert root.tag == "datasource"
        [connection] = root.iter("named-connection")
        [pg] = connection.findall("connection")
        assert pg.get("class") == "postgres"
        assert (pg.get("server"), pg.get("port"), pg.get("dbname")) == (dsn["host"], dsn["port"], dsn["dbname"])
        assert pg.get("username") == ANALYST_ROLE
        [relation] = root.iter("relation")
        assert relation.get("connection") == connection.get("name")
        assert relation.get("table") == f"[{scored.settings.pg_schema}].[{view}]"
        assert relation.get("name") == view


def test_the_output_holds_the_files_and_no_log(export):
    names = {p.name for p in export.extract.parent.iterdir()}
    assert names == {"txguard.hyper", *(p.name for p in export.data_sources)}  # Hyper logs under <home>/logs


def test_the_main_data_source_is_txguard_tds(export):
    main = export.extract.parent / "txguard.tds"
    assert main in export.data_sources
    assert ET.parse(main).find(".//relation").get("name") == "scored_transactions"


@pytest.mark.parametrize("view", ANALYST_VIEWS)
def test_the_extract_holds_each_view_as_postgresql_has_it(scored, export, view):
    pg = _pg_rows(scored, view)
    hyper = _hyper_rows(export.extract, view)
    assert export.rows[view] == len(pg) == len(hyper) > 0
    sample = set(range(0, len(pg), max(1, len(pg) // 25)))  # every row of the small views, 25 of the big ones
    judged = {i for i, row in enumerate(pg) if any(isinstance(v, datetime) and v.tzinfo for v in row)}  # verdict_at
    assert judged or view not in ("scored_transactions", "alerts")
    sample |= judged
    for i in sorted(sample):
        assert len(pg[i]) == len(hyper[i])
        mismatched = [j for j, (a, b) in enumerate(zip(pg[i], hyper[i], strict=True)) if not _same(a, b)]
        assert not mismatched, (view, i, [(pg[i][j], hyper[i][j]) for j in mismatched])


def test_since_limits_the_event_level_views(scored, tmp_path):
    conn = scored.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY event_time)::date FROM transactions")
        since = cur.fetchone()[0]
    conn.close()
    code = cli.main(["--home", str(scored.settings.home), "--namespace", scored.settings.namespace,
                     "tableau", "--out", str(tmp_path), "--since", since.isoformat()])  # fmt: skip
    assert code == 0
    later = _pg_rows(scored, "scored_transactions", since)
    assert 0 < len(later) < 600
    assert len(_hyper_rows(tmp_path / "txguard.hyper", "scored_transactions")) == len(later)
    assert len(_hyper_rows(tmp_path / "txguard.hyper", "score_by_category")) == len(
        _pg_rows(scored, "score_by_category"))  # fmt: skip
