"""The PostgreSQL server the database tests run on, and a private corner of it for each test.

Tests take the server's URL from ``VIDEOGEN_TEST_POSTGRES_URL`` (default: the project machines'
trust-authenticated server on 127.0.0.1:5432). Each test run creates its own database, dropped at
the end; each test gets its own schema in it (its URL sets ``search_path``), so tests never see
each other's rows and nothing is left behind. Where no server answers, PostgreSQL tests skip with
the reason — unless ``VIDEOGEN_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where that skip is a
failure, so CI can never pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("VIDEOGEN_TEST_POSTGRES_URL") or DEFAULT_URL


def required() -> bool:
    return os.environ.get("VIDEOGEN_REQUIRE_POSTGRES", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip (visibly, with ``reason``) — or fail when this run requires PostgreSQL."""
    if required():
        pytest.fail(f"VIDEOGEN_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
    pytest.skip(reason)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first (libpq's ``options=-csearch_path=…``)."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class TestServer:
    """One database on the server for this test run; schemas in it for single tests."""

    def __init__(self, admin_url: str) -> None:
        import psycopg
        from psycopg import sql

        self._sql = sql
        self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
        self.name = f"videogen_test_{uuid.uuid4().hex[:10]}"
        self.admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(self.name)))
        self.url = with_database(admin_url, self.name)
        self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)

    def new_schema(self) -> tuple[str, str]:
        """A fresh empty schema: (its name, a URL whose connections work in it)."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        self.conn.execute(self._sql.SQL("CREATE SCHEMA {}").format(self._sql.Identifier(schema)))
        return schema, with_schema(self.url, schema)

    def drop_schema(self, schema: str) -> None:
        self.conn.execute(self._sql.SQL("DROP SCHEMA {} CASCADE").format(self._sql.Identifier(schema)))

    def close(self) -> None:
        self.conn.close()
        self.admin.execute(self._sql.SQL("DROP DATABASE {} WITH (FORCE)").format(self._sql.Identifier(self.name)))
        self.admin.close()


def open_server() -> Iterator[TestServer | str]:
    """Yield a TestServer, or the reason there is none (the caller skips or fails with it)."""
    try:
        import psycopg
    except ImportError:
        yield "psycopg is not installed (pip install -e '.[test]' installs it)"
        return
    url = server_url()
    try:
        server = TestServer(url)
    except psycopg.Error as exc:
        parts = urlsplit(url)
        host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        shown = parts._replace(netloc=host, query="").geturl()  # no user or password in the reason
        yield f"no PostgreSQL server reachable at {shown} ({str(exc).strip().splitlines()[0]})"
        return
    try:
        yield server
    finally:
        server.close()
