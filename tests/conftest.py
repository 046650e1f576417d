"""Shared test helpers. Fixtures are copied from the provider pages the catalog was built from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def seed_examples() -> dict:
    return json.loads((FIXTURES / "seed_examples.json").read_text())


@pytest.fixture(scope="session")
def seed_fields() -> dict:
    return json.loads((FIXTURES / "seed_fields.json").read_text())


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No config file and no videogen/provider variables from the developer's shell."""
    for var in ("FAL_KEY", "WAVESPEED_API_KEY", "DISCORD_TOKEN", "VIDEOGEN_CONFIG", "VIDEOGEN_DB",
                "VIDEOGEN_MEDIA_DIR", "VIDEOGEN_FAL_QUEUE_URL", "VIDEOGEN_FAL_REST_URL",
                "VIDEOGEN_WAVESPEED_BASE_URL", "VIDEOGEN_LLM_BASE_URL", "VIDEOGEN_LLM_MODEL", "VIDEOGEN_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- PostgreSQL (see tests/postgres_server.py) -------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server():
    """This run's own database on the test server, or the reason there is none."""
    from postgres_server import open_server

    yield from open_server()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A URL for an empty schema of its own on the test server; skips (or fails) without one."""
    from postgres_server import unavailable

    if isinstance(postgres_server, str):
        unavailable(postgres_server)
    schema, url = postgres_server.new_schema()
    yield url
    postgres_server.drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """Where a test's database lives, once per backend: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "videogen.db")
    return request.getfixturevalue("postgres_url")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-long", action="store_true",
                     help="property-based fuzzing with thousands of cases per tool (default: a few seconds each)")


@pytest.fixture
def fuzz_examples(request: pytest.FixtureRequest) -> int:
    """Cases per tool for the fuzz tests: a quick pass by default, thousands with --fuzz-long."""
    return 3000 if request.config.getoption("--fuzz-long") else 12


@pytest.fixture
def cli(capsys):
    """``cli("jobs", "list")`` runs ``videogen jobs list`` in this process: (exit code, stdout, stderr)."""
    from agent_tools.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def providers_env(clean_env, monkeypatch):
    """Real (not --simulate) runs from the CLI: the providers are a simulator on loopback (as a proxy
    would be), the database a file in the test's folder."""
    from agent_tools.simulator import SimSettings, running_simulator

    with running_simulator(SimSettings(queue_seconds=0.05, run_seconds=0.1)) as sim:
        for var, value in (("FAL_KEY", "k"), ("WAVESPEED_API_KEY", "k"), ("VIDEOGEN_FAL_QUEUE_URL", sim.fal_queue_url),
                           ("VIDEOGEN_FAL_REST_URL", sim.fal_rest_url),
                           ("VIDEOGEN_WAVESPEED_BASE_URL", sim.wavespeed_base_url)):
            monkeypatch.setenv(var, value)
        monkeypatch.setenv("VIDEOGEN_DB", os.environ.get("VIDEOGEN_DB") or str(clean_env / "videogen.db"))
        yield clean_env
