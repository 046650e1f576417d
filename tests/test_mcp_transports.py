"""The MCP server over its real transports: stdio as a subprocess (what Claude Desktop starts) and
streamable HTTP with bearer tokens (in this process, and as ``videogen mcp --http`` in another).

The subprocesses run ``python -m agent_tools.cli mcp --simulate`` — ``videogen mcp --simulate`` with this
interpreter — so the simulator is started inside the server process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.client.streamable_http import streamable_http_client

from agent_tools.config import Settings
from agent_tools.agent.schemas import WAIT_SECONDS
from agent_tools.mcp_server.server import running_http
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit

from processes import guarded
from test_mcp_server import cancel_mid_generation

MODES = ["legacy", "auto"]
SERVER = guarded(sys.executable, "-m", "agent_tools.cli")  # = the `videogen` script, ended with the tests
PNG_1PX = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
           b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")
MIB = 1024 * 1024


def server_env(tmp_path) -> dict[str, str]:
    """A clean environment: no keys, no config file, the database and media under tmp_path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_", "DISCORD_"))}
    env.update(VIDEOGEN_DB=str(tmp_path / "videogen.db"), VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    return env


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# -- stdio ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_stdio_subprocess_generates_with_progress_and_uploads_local_files(tmp_path, mode):
    image = tmp_path / "still.png"
    image.write_bytes(PNG_1PX)
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "mcp", "--simulate"],
                                   env=server_env(tmp_path), cwd=str(tmp_path))
    messages: list[str] = []

    async def progress(value, total, message):
        messages.append(message or "")

    async with Client(params, mode=mode) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("pika_image_to_video", {"prompt": "it moves", "image_url": str(image)},
                                        progress_callback=progress)
    assert len(tools) == 23
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["state"] == "succeeded" and data["simulated"] is True
    path = data["outputs"][0]["path"]
    assert path.startswith(str(tmp_path / "simulated" / "media")) and os.path.getsize(path) > 0  # the sandbox
    assert f"local file: {path}" in text_of(result) and "SIMULATED" in text_of(result)
    assert any("queued" in m or "running" in m for m in messages)


async def test_stdio_stdout_carries_only_protocol_messages(tmp_path):
    process = await asyncio.create_subprocess_exec(
        *SERVER, "mcp", "--simulate", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=server_env(tmp_path), cwd=str(tmp_path), limit=MIB)
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_quota", "arguments": {}}},
    ]
    for request in requests:
        process.stdin.write(json.dumps(request).encode() + b"\n")
    await process.stdin.drain()
    lines = []
    while len(lines) < 3:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line, "the server closed stdout early"
        lines.append(json.loads(line))
    process.stdin.close()
    rest, errors = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert rest == b""  # nothing after the answers: no stray prints
    assert [m["id"] for m in lines] == [1, 2, 3] and all(m["jsonrpc"] == "2.0" for m in lines)
    assert lines[0]["result"]["serverInfo"]["name"] == "videogen"
    assert len(lines[1]["result"]["tools"]) == 23
    assert lines[2]["result"]["structuredContent"]["account"] == "local"
    assert b"SIMULATED" in errors and b"stdio" in errors


@pytest.mark.parametrize("lists_tools", [True, False])
async def test_stdio_with_an_unusable_database_still_lists_tools_and_says_why_to_every_request(tmp_path, lists_tools):
    """The stdio handshake is answered before the database is opened (issue 11); an unusable one is
    still found at start — reported on stderr with no request needing it, whether or not the client
    lists the tools — and every request that needs it is answered with the reason, instead of a
    server that vanishes before the client asks."""
    database = tmp_path / "videogen.db"
    database.write_bytes(b"this is not SQLite, just garbage " * 200)
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "mcp"], env=server_env(tmp_path),
                                   cwd=str(tmp_path))
    log = tmp_path / "stderr.log"
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            tools = (await client.list_tools()).tools if lists_tools else None
            for _ in range(400):  # the open starts once tools/list is answered (or soon after the start)
                if "not a usable SQLite database" in log.read_text():
                    break
                await asyncio.sleep(0.05)
            reported = log.read_text()
            result = await client.call_tool("get_quota", {})
            with pytest.raises(MCPError) as listing:
                await client.list_resources()
    assert tools is None or len(tools) == 23
    assert "error: " in reported and "not a usable SQLite database" in reported and str(database) in reported
    assert result.is_error and "not a usable SQLite database" in text_of(result) and "restart" in text_of(result)
    assert "not a usable SQLite database" in str(listing.value)
    assert database.read_bytes().startswith(b"this is not SQLite"), "the file is left for recovery"


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_compact_mode_and_a_client_side_cancel_of_a_slow_job(tmp_path, mode):
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "mcp", "--simulate", "--tools", "compact"],
                                   env=server_env(tmp_path), cwd=str(tmp_path))
    async with Client(params, mode=mode) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        job_id, heard = await cancel_mid_generation(
            client, "generate", {"model": "pika_text_to_video", "arguments": {"prompt": "[sim:slow=60] x"}}, "[running")
        final = await client.call_tool("wait_for_job", {"job_id": job_id, WAIT_SECONDS: 30})
    assert "generate" in tools and "pika_text_to_video" not in tools and len(tools) == 10
    assert all(f"job {job_id}:" in m for m in heard)
    assert final.structured_content["state"] == "cancelled", text_of(final)
    assert final.structured_content["cost_status"] == "not charged"


async def test_stdio_with_a_placeholder_key_names_it_in_the_refusal(tmp_path):
    env = server_env(tmp_path) | {"FAL_KEY": "<paste your FAL_KEY here>"}
    params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], "mcp"], env=env, cwd=str(tmp_path))
    async with Client(params, mode="legacy") as client:
        refused = await client.call_tool("pika_text_to_video", {"prompt": "x"})
    assert refused.is_error
    text = text_of(refused)
    assert 'FAL_KEY is still the placeholder "<paste your FAL_KEY here>" in claude_desktop_config.json' in text
    assert "set FAL_KEY" not in text and "Nothing was submitted or charged." in text


# -- HTTP in process ------------------------------------------------------------------------------

@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http(tmp_path, sim):
    """(url, {account: token}, toolkit) for a server on a free loopback port."""
    settings = Settings.model_validate({
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
        "quotas": {"default": {}},
    })
    kit = await Toolkit.open(settings)
    tokens = {}
    for name in ("alice", "bob"):
        await kit.ledger.add_account(name)
        tokens[name] = await kit.ledger.create_token(name)
    async with running_http(kit) as url:
        yield url, tokens, kit
    await kit.close()


def http_client(url: str, token: str | None, mode: str = "legacy") -> tuple[httpx2.AsyncClient, Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
    return transport, Client(streamable_http_client(url, http_client=transport), mode=mode)


@pytest.mark.parametrize("mode", MODES)
async def test_http_with_a_valid_token_acts_as_that_account(http, tmp_path, mode):
    url, tokens, kit = http
    image = tmp_path / "still.png"
    image.write_bytes(PNG_1PX)
    progress: list[float] = []

    async def on_progress(value, total, message):
        progress.append(value)

    transport, client = http_client(url, tokens["alice"], mode)
    async with transport, client:
        tools = (await client.list_tools()).tools
        made = await client.call_tool("pika_text_to_video", {"prompt": "over http"}, progress_callback=on_progress)
        local = await client.call_tool("pika_image_to_video", {"prompt": "x", "image_url": str(image)})
        quota = await client.call_tool("get_quota", {})
    assert len(tools) == 23
    assert not made.is_error, text_of(made)
    [output] = made.structured_content["outputs"]
    assert "path" not in output and str(tmp_path) not in made.model_dump_json()  # never a server path
    assert progress and progress == sorted(progress)
    assert local.is_error and "local file paths are not accepted here" in text_of(local)
    assert quota.structured_content["account"] == "alice"
    job = await kit.get_job(kit.local_account(), made.structured_content["job_id"])
    assert job.account == "alice" and job.origin["transport"] == "http"
    assert len(made.model_dump_json()) < MIB


async def test_http_tokens_keep_accounts_apart(http):
    url, tokens, _ = http
    transport, client = http_client(url, tokens["alice"])
    async with transport, client:
        made = await client.call_tool("pika_text_to_video", {"prompt": "alice's", WAIT_SECONDS: 0})
    transport, client = http_client(url, tokens["bob"], "auto")
    async with transport, client:
        peek = await client.call_tool("get_job", {"job_id": made.structured_content["job_id"]})
    assert peek.is_error and "No job" in text_of(peek)


@pytest.mark.parametrize("mode", MODES)
async def test_http_a_client_side_cancel_cancels_the_job(http, mode):
    url, tokens, kit = http
    transport, client = http_client(url, tokens["alice"], mode)
    async with transport, client:
        job_id, _ = await cancel_mid_generation(client, "pika_text_to_video", {"prompt": "[sim:slow=60] x"},
                                                "[running")
    job = await kit.wait_for_job(Account("alice"), job_id, timeout=30)
    assert job.state.value == "cancelled" and job.actual_micros == 0


@pytest.mark.parametrize("header", [None, "Bearer vg_not-a-real-token", "Basic YWxpY2U6cHc=", "Bearer"])
async def test_http_without_a_valid_token_is_401(http, header):
    url, _, _ = http
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if header:
        headers["Authorization"] = header
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient() as raw:
        response = await raw.post(url, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "videogen accounts token" in response.json()["error_description"]


@pytest.mark.parametrize("token", [None, "vg_wrong"])
async def test_the_sdk_client_cannot_connect_without_a_valid_token(http, token):
    url, _, _ = http
    transport, client = http_client(url, token)
    async with transport:
        with pytest.raises(Exception):
            async with client:
                await client.list_tools()


async def sse_events(response):
    """(id, data) of each SSE event on a streaming response, as they arrive."""
    event_id, data = None, []
    async for line in response.aiter_lines():
        if line == "":
            if event_id is not None or data:
                yield event_id, "\n".join(data)
            event_id, data = None, []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


async def test_http_a_dropped_stream_resumes_with_last_event_id_and_gets_the_result(http):
    url, tokens, _ = http
    headers = {"Authorization": f"Bearer {tokens['alice']}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as raw:
        init = await raw.post(url, headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        await raw.post(url, headers=headers | session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "pika_text_to_video", "arguments": {"prompt": "[sim:slow=1.5] x", WAIT_SECONDS: 30},
            "_meta": {"progressToken": "p1"}}}
        seen = []
        async with raw.stream("POST", url, headers=headers | session, json=call) as response:
            async for event_id, data in sse_events(response):
                seen.append((event_id, data))
                if data and json.loads(data).get("method") == "notifications/progress":
                    break  # the connection drops here, mid-call
        last_id = seen[-1][0]
        assert seen[0][1] == "" and seen[0][0]  # the priming event carries an id to resume from
        resumed = []
        async with raw.stream("GET", url, headers=headers | session | {"Last-Event-ID": last_id,
                                                                       "Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            async for event_id, data in sse_events(response):
                if data:
                    resumed.append(json.loads(data))
                    if resumed[-1].get("id") == 2:
                        break
    result = resumed[-1]["result"]
    assert result["structuredContent"]["state"] == "succeeded" and not result.get("isError")
    assert any(m.get("method") == "notifications/progress" for m in resumed)  # what it missed, then the rest


# -- HTTP as `videogen mcp --http` ------------------------------------------------------------

async def test_the_http_command_serves_tokens_from_its_database_and_stops_on_sigterm(tmp_path):
    env = server_env(tmp_path)
    settings = Settings.model_validate({"storage": {"database": env["VIDEOGEN_DB"],
                                                    "media_dir": env["VIDEOGEN_MEDIA_DIR"]}})
    async with await Toolkit.open(settings) as kit:
        await kit.ledger.add_account("carol")
        token = await kit.ledger.create_token("carol")
    process = await asyncio.create_subprocess_exec(
        *SERVER, "mcp", "--http", "--port", "0", "--simulate", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tmp_path))
    try:
        url = None
        seen = b""
        while url is None:
            line = await asyncio.wait_for(process.stderr.readline(), 20)
            assert line, seen.decode()
            seen += line
            if match := re.search(rb"streamable HTTP at (http://127\.0\.0\.1:\d+/mcp)", line):
                url = match.group(1).decode()
        transport, client = http_client(url, token)
        async with transport, client:
            result = await client.call_tool("pika_text_to_video", {"prompt": "from the command"})
        assert not result.is_error, text_of(result)
        assert result.structured_content["simulated"] is True and "path" not in result.structured_content["outputs"][0]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0 and out == b""
    assert b"Traceback" not in err and b"ERROR" not in err, err.decode()  # a clean stop, not a crash
