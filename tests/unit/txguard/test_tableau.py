"""The Tableau data sources (pure XML) and the PostgreSQL -> Hyper type mapping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from txguard.tableau import PostgresTarget, hyper_type, tds_document

RDS = "postgresql://txguard:s3cret@mydb.abc.eu-west-1.rds.amazonaws.com:5433/fraud?sslmode=require"


def test_the_target_comes_from_the_dsn_without_its_user_or_password():
    target = PostgresTarget.from_dsn(RDS, "prod")
    assert target == PostgresTarget("mydb.abc.eu-west-1.rds.amazonaws.com", 5433, "fraud", "prod", "require")
    keyword = PostgresTarget.from_dsn("host=10.0.0.5 dbname=txguard user=x password=y", "public")
    assert (keyword.server, keyword.port, keyword.sslmode) == ("10.0.0.5", 5432, None)


def test_a_unix_socket_is_refused():
    with pytest.raises(ValueError, match="Unix socket"):
        PostgresTarget.from_dsn("host=/var/run/postgresql dbname=txguard", "public")


def test_a_data_source_names_the_view_and_holds_no_password():
    text = tds_document(PostgresTarget.from_dsn(RDS, "prod"), "alerts").decode()
    root = ET.fromstring(text)
    assert "s3cret" not in text
    assert not [name for element in root.iter() for name in element.attrib if "password" in name.lower()]
    pg = root.find("./connection/named-connections/named-connection/connection")
    assert pg is not None
    assert (pg.get("class"), pg.get("server"), pg.get("port"), pg.get("dbname"), pg.get("username"),
            pg.get("sslmode")) == ("postgres", "mydb.abc.eu-west-1.rds.amazonaws.com", "5433", "fraud",
                                   "txguard_analyst", "require")  # fmt: skip
    relation = root.find("./connection/relation")
    assert relation is not None and relation.get("table") == "[prod].[alerts]"


def test_odd_names_are_escaped_as_xml():
    text = tds_document(PostgresTarget("h&'<x>", 5432, 'd"b', "s", None), "v").decode()
    pg = ET.fromstring(text).find(".//named-connection/connection")
    assert pg is not None and (pg.get("server"), pg.get("dbname")) == ("h&'<x>", 'd"b')
    assert pg.get("sslmode") is None


def test_postgresql_types_map_to_hyper_types():
    from tableauhyperapi import SqlType

    assert hyper_type(16, None, None) == SqlType.bool()
    assert hyper_type(20, None, None) == SqlType.big_int()
    assert hyper_type(701, None, None) == SqlType.double()
    assert hyper_type(1700, 12, 2) == SqlType.numeric(12, 2)  # amounts stay exact
    assert hyper_type(1700, None, None) == SqlType.double()  # avg(amount): no declared precision
    assert hyper_type(1114, None, None) == SqlType.timestamp()
    assert hyper_type(1082, None, None) == SqlType.date()
    assert hyper_type(1042, None, None) == SqlType.text()
    assert hyper_type(1009, None, None) == SqlType.text()  # anything else: as text
