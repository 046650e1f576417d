"""What a start loads (issue 11): ``videogen models`` / ``estimate`` / ``--help`` never import the job
engine, httpx, aiosqlite or the providers; a Toolkit with both API keys set builds no HTTP client
and imports no provider until a provider is called; the MCP server imports jsonschema only when a
call needs it. Each check runs in a fresh interpreter and reads ``sys.modules`` — a behaviour
check, not a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("agent_tools.jobs", "httpx", "aiosqlite", "agent_tools.providers.fal", "agent_tools.providers.wavespeed",
         "agent_tools.providers.http", "agent_tools.toolkit", "agent_tools.media")


def loaded_after(code: str, tmp_path: Path, **env: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code`` (which prints nothing else)."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.__stdout__)\n"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
    environment.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
                       VIDEOGEN_DB=str(tmp_path / "v.db"), VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"), **env)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["models"], ["models", "--json"], ["estimate", "pika_text_to_video", "--prompt", "x"],
                                  ["--help"], ["generate", "--help"], ["chat", "--help"]])
def test_catalog_commands_and_help_load_no_engine_http_or_database(tmp_path, argv):
    code = ("import contextlib, io\nfrom agent_tools.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n")
    loaded = loaded_after(code, tmp_path)
    assert "agent_tools.cli.main" in loaded, "the command ran"
    if argv[0] in ("models", "estimate"):
        assert "agent_tools.catalog" in loaded, "the command read the catalog"
    assert sorted(loaded & set(HEAVY)) == []


def test_the_heavy_modules_are_real_names(tmp_path):
    """The list above must name modules that exist, or the test above could never fail (aiosqlite
    is no longer used at all: the database runs the stdlib sqlite3 on its own thread)."""
    loaded = loaded_after("import agent_tools.toolkit, agent_tools.providers.fal, agent_tools.providers.wavespeed",
                          tmp_path)
    assert set(HEAVY) - {"aiosqlite"} <= loaded and "aiosqlite" not in loaded


MCP_START = """
import asyncio
from agent_tools.config import load_settings
from agent_tools.mcp_server.server import build_server
from agent_tools.toolkit import Toolkit

async def start():
    toolkit = await Toolkit.open(load_settings(None))
    try:
        build_server(toolkit, lambda ctx: None, local_files=True)
        assert sorted(toolkit.adapters) == ["fal", "wavespeed"], sorted(toolkit.adapters)
    finally:
        await toolkit.close()

asyncio.run(start())
"""


def test_an_mcp_start_with_both_keys_builds_no_http_client_and_no_validator(tmp_path):
    loaded = loaded_after(MCP_START, tmp_path, FAL_KEY="k-fal", WAVESPEED_API_KEY="k-ws")
    assert "agent_tools.mcp_server.server" in loaded
    assert sorted(loaded & {"httpx", "jsonschema", "agent_tools.providers.fal", "agent_tools.providers.wavespeed"}) == []


async def test_adapters_are_built_on_first_use_and_share_one_tls_context(tmp_path):
    from agent_tools.config import Settings
    from agent_tools.providers.http import shared_ssl_context
    from agent_tools.toolkit import ProviderAdapters

    settings = Settings.model_validate({"fal": {"key": "k-fal"}, "wavespeed": {"key": "k-ws"}})
    adapters = ProviderAdapters(settings)
    assert sorted(adapters) == ["fal", "wavespeed"] and adapters.built() == []
    fal, wavespeed = adapters["fal"], adapters["wavespeed"]
    assert adapters["fal"] is fal and len(adapters.built()) == 2
    try:
        contexts = {id(a._client._transport._pool._ssl_context) for a in (fal, wavespeed)}
        assert contexts == {id(shared_ssl_context())}
    finally:
        for adapter in adapters.built():
            await adapter.aclose()
    with pytest.raises(KeyError):
        ProviderAdapters(Settings.model_validate({"fal": {"key": "k-fal"}}))["wavespeed"]


def test_the_command_table_names_what_each_module_registers():
    """``main.GROUPS`` lets a run import only its command's module; it must match the modules."""
    import argparse
    import importlib

    from agent_tools.cli.main import GROUPS

    for group, commands in GROUPS.items():
        registered = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"agent_tools.cli.{group}").register(registered)
        assert tuple(registered.choices) == commands, group
    registering = {p.stem for p in (ROOT / "agent_tools" / "cli").glob("*.py") if "\ndef register(" in p.read_text()}
    assert registering == set(GROUPS), "a command module is missing from main.GROUPS"


@pytest.mark.parametrize("argv", [["mcp", "--help"], ["--config", "none.toml", "mcp", "--help"],
                                  ["--config=none.toml", "models", "--help"]])
def test_a_command_loads_only_its_own_command_module(tmp_path, argv):
    code = ("import contextlib, io\nfrom agent_tools.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n")
    loaded = loaded_after(code, tmp_path)
    commands = {m.rsplit(".", 1)[1] for m in loaded if m.startswith("agent_tools.cli.")} - {"main", "output", "params"}
    assert commands == {"mcp" if "mcp" in argv else "models"}


def test_help_and_an_unknown_command_still_list_every_command(cli):
    from agent_tools.cli.main import GROUP_OF

    code, out, err = cli("no-such-command")
    assert code == 2 and "invalid choice: 'no-such-command'" in err
    assert all(f"'{command}'" in err for command in GROUP_OF), err


STDIO_FRONT = """
import asyncio, json, sys
from mcp import Client
from agent_tools.config import load_settings
from agent_tools.mcp_server import deferred

deferred.OPEN_AFTER_LIST_SECONDS = 600  # here only a request that needs the Toolkit opens it

async def start():
    front = deferred.stdio_server_for(load_settings(None))
    try:
        async with Client(front.server, mode="legacy") as client:
            listed = (await client.list_tools()).tools
            handshake = sorted(sys.modules)
            shown = [client.server_info.name, client.server_info.title, client.instructions,
                     client.server_capabilities.model_dump()]
            result = await client.call_tool("estimate_cost", {"tool": "pika_text_to_video", "arguments": {}})
            from agent_tools.mcp_server.server import build_server
            full = build_server((await front.backend()).toolkit, lambda ctx: None, local_files=True)
            async with Client(full, mode="legacy") as other:
                same_tools = (await other.list_tools()).tools == listed
                same_start = shown == [other.server_info.name, other.server_info.title, other.instructions,
                                       other.server_capabilities.model_dump()]
    finally:
        await front.aclose()
    print(json.dumps({"handshake": handshake, "tools": len(listed), "same_tools": same_tools,
                      "same_start": same_start, "error": result.is_error, "text": result.content[0].text}))

asyncio.run(start())
"""

DEFERRED = ("agent_tools.catalog", "agent_tools.jobs", "agent_tools.ledger", "agent_tools.toolkit", "agent_tools.db",
            "agent_tools.media", "agent_tools.agent.tools", "agent_tools.agent.executor", "agent_tools.mcp_server.server",
            "sqlite3")


def test_the_stdio_handshake_needs_no_catalog_engine_ledger_or_database(tmp_path):
    """``videogen mcp`` on stdio answers initialize and tools/list from ``mcp_server.deferred`` and the
    pre-generated tools; the first call opens the Toolkit and is answered as by the full server."""
    script = STDIO_FRONT + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.__stdout__)\n"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
    environment.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
                       VIDEOGEN_DB=str(tmp_path / "v.db"), VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"),
                       FAL_KEY="k-fal", WAVESPEED_API_KEY="k-ws")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    report, loaded = json.loads(lines[-2]), set(json.loads(lines[-1]))
    assert sorted(set(report["handshake"]) & set(DEFERRED)) == []
    assert set(DEFERRED) <= loaded, "the call opened the Toolkit"
    assert report["tools"] == 23 and report["same_tools"] and report["same_start"]
    assert not report["error"] and "pika_text_to_video" in report["text"], report["text"]
    assert (tmp_path / "v.db").exists()
