"""The PostgreSQL test fixtures: each test gets an isolated schema, and a missing server is a
visible skip — or a failure when the run requires PostgreSQL (``.ci/run`` does)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg

TESTS = Path(__file__).resolve().parent


def test_each_test_gets_an_empty_schema_of_its_own(postgres_server, postgres_url):
    with psycopg.connect(postgres_url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        assert schema.startswith("t_") and conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)).fetchone()[0] == 0
        conn.execute("CREATE TABLE mine(x BIGINT)")
    other, other_url = postgres_server.new_schema()
    try:
        with psycopg.connect(other_url) as conn:
            assert conn.execute("SELECT current_schema()").fetchone()[0] == other
            assert conn.execute("SELECT to_regclass('mine')").fetchone()[0] is None, "another test's table is invisible"
    finally:
        postgres_server.drop_schema(other)


def run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """A one-test pytest run, in its own process, that needs PostgreSQL (at a port nobody serves)."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        def test_needs_postgres(postgres_url):
            pass
    """))
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    environ = {k: v for k, v in os.environ.items() if k != "VIDEOGEN_REQUIRE_POSTGRES"}
    environ.update(PYTHONPATH=str(TESTS), VIDEOGEN_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:9/x", **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def test_no_server_is_a_visible_skip(tmp_path):
    done = run_probe(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "no PostgreSQL server reachable at postgresql://127.0.0.1:9/x" in done.stdout


def test_no_server_fails_a_run_that_requires_postgres(tmp_path):
    done = run_probe(tmp_path, VIDEOGEN_REQUIRE_POSTGRES="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "VIDEOGEN_REQUIRE_POSTGRES is set but no PostgreSQL server reachable" in done.stdout
