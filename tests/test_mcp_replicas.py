"""Two MCP HTTP replicas on one PostgreSQL database (issue 14): with ``[mcp] stateless_http`` any
replica answers any request; without it a session lives in the replica that made it, and the other
one answers ``404 Session not found`` — why README's "Running at scale" asks for one or the other
(or a proxy sticky on ``mcp-session-id``). Either way the job is in the database, so a job started
through one replica is read, awaited and cancelled through the other.

Raw JSON-RPC over httpx here, because the point is what each replica does with a request that
carries (or lacks) another replica's session id, which the SDK client never sends.
"""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest

from agent_tools.config import Settings
from agent_tools.mcp_server.server import running_http
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Toolkit

VERSION = "2025-06-18"


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


@contextlib.asynccontextmanager
async def two_replicas(postgres_url: str, sim: Simulator, tmp_path, *, stateless: bool):
    settings = Settings.model_validate({
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": postgres_url, "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
        "quotas": {"default": {}},
        "mcp": {"stateless_http": stateless},
    })
    async with await Toolkit.open(settings) as one, await Toolkit.open(settings) as two:
        await one.ledger.add_account("alice")
        token = await one.ledger.create_token("alice")
        async with running_http(one) as url_one, running_http(two) as url_two:
            yield token, url_one, url_two


async def rpc(client: httpx.AsyncClient, url: str, token: str, method: str, params: dict, *,
              session: str | None = None, ident: int = 1) -> tuple[httpx.Response, dict | None]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": VERSION, **({"mcp-session-id": session} if session else {})}
    response = await client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": ident, "method": method,
                                                             "params": params})
    messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    if not messages and response.headers.get("content-type", "").startswith("application/json"):
        messages = [response.json()]
    answer = next((m for m in messages if m.get("id") == ident), None)
    return response, answer


INIT = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "replica-test", "version": "1"}}


async def test_stateless_replicas_answer_each_others_clients(postgres_url, sim, tmp_path):
    async with two_replicas(postgres_url, sim, tmp_path, stateless=True) as (token, one, two), \
            httpx.AsyncClient(timeout=30) as client:
        response, _ = await rpc(client, one, token, "initialize", INIT)
        assert response.status_code == 200 and "mcp-session-id" not in response.headers
        response, started = await rpc(client, one, token, "tools/call", {
            "name": "pika_text_to_video", "arguments": {"prompt": "through replica one", "wait_seconds": 0}}, ident=2)
        job_id = started["result"]["structuredContent"]["job_id"]
        response, waited = await rpc(client, two, token, "tools/call", {  # the proxy sent this one elsewhere
            "name": "wait_for_job", "arguments": {"job_id": job_id, "wait_seconds": 30}}, ident=3)
        assert response.status_code == 200, response.text
        assert waited["result"]["structuredContent"]["state"] == "succeeded"


async def test_a_session_belongs_to_the_replica_that_made_it(postgres_url, sim, tmp_path):
    async with two_replicas(postgres_url, sim, tmp_path, stateless=False) as (token, one, two), \
            httpx.AsyncClient(timeout=30) as client:
        response, _ = await rpc(client, one, token, "initialize", INIT)
        session = response.headers["mcp-session-id"]
        response, _ = await rpc(client, two, token, "tools/list", {}, session=session, ident=2)
        assert response.status_code == 404 and "Session not found" in response.text
        response, listed = await rpc(client, one, token, "tools/list", {}, session=session, ident=2)
        assert response.status_code == 200 and listed["result"]["tools"]  # its own replica knows it
