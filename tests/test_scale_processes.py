"""Past one machine (issue 14): two MCP HTTP replicas (``videogen mcp --http``, stateless) and two
Discord bot processes share one PostgreSQL database and run 200 simulated jobs together.

The simulator runs in the test process and records which process (told apart by its provider
key) submitted and polled each job. 100 jobs arrive over MCP, round robin over the two replicas as
a proxy would send them; 100 arrive as slash commands, 50 to each bot process (the real
``VideoBot`` with the recording harness of ``test_discord_bot``, through ``test_discord_processes``'s
worker). Then: every job was submitted exactly once and succeeded, every Discord result was posted
exactly once by one of the bots, and ``videogen books check`` finds the books balanced.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from agent_tools.config import Settings
from agent_tools.toolkit import Toolkit

from processes import Recording, base_settings, finish, guarded, rows, start_sim, worker_env
from test_discord_processes import spawn as spawn_bot

ROOT = Path(__file__).resolve().parent.parent
MCP_JOBS = 100
BOT_JOBS = 50  # per bot process
VERSION = "2025-06-18"


def replica_env(tmp_path: Path, sim, database: str, key: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in worker_env().items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_", "DISCORD_"))}
    env.update(VIDEOGEN_DB=database, VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"), VIDEOGEN_CONFIG=str(config),
               FAL_KEY=key, WAVESPEED_API_KEY=key, VIDEOGEN_FAL_QUEUE_URL=sim.fal_queue_url,
               VIDEOGEN_FAL_REST_URL=sim.fal_rest_url, VIDEOGEN_WAVESPEED_BASE_URL=sim.wavespeed_base_url,
               XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    return env


async def start_replica(tmp_path: Path, sim, database: str, key: str) -> tuple[asyncio.subprocess.Process, str]:
    """``videogen mcp --http`` on a free port with this database; its log goes to a file (a pipe
    nobody reads would fill up and stall it)."""
    config = tmp_path / "replica.toml"
    config.write_text('[mcp]\nstateless_http = true\n[polling]\ninitial_seconds = 0.02\nmax_seconds = 0.1\n'
                      '[quotas.default]\n')
    log = tmp_path / f"{key}.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *guarded(sys.executable, "-m", "agent_tools.cli", "mcp", "--http", "--port", "0"), cwd=str(ROOT),
            env=replica_env(tmp_path, sim, database, key, config), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=sink)
    for _ in range(600):
        if match := re.search(r"streamable HTTP at (http://127\.0\.0\.1:\d+/mcp)", log.read_text()):
            return proc, match.group(1)
        assert proc.returncode is None, log.read_text()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} did not start: {log.read_text()}")


async def generate(client: httpx.AsyncClient, url: str, token: str, i: int) -> str:
    response = await client.post(url, headers={"Authorization": f"Bearer {token}", "MCP-Protocol-Version": VERSION,
                                               "Accept": "application/json, text/event-stream"},
                                 json={"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                                     "name": "pika_text_to_video",
                                     "arguments": {"prompt": f"mcp clip {i}", "wait_seconds": 0}}})
    assert response.status_code == 200, response.text
    [answer] = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return answer["result"]["structuredContent"]["job_id"]


async def test_two_mcp_replicas_and_two_bot_processes_run_200_jobs_on_one_postgresql(tmp_path, postgres_url):
    recording = Recording()
    sim = await start_sim(recording)
    replicas = []
    try:
        base = base_settings(tmp_path, sim, postgres_url)
        async with await Toolkit.open(Settings.model_validate({**base, "fal": {}, "wavespeed": {}})) as kit:
            await kit.ledger.add_account("alice")  # created and migrated once, like an installed deployment
            token = await kit.ledger.create_token("alice")
        replicas = [await start_replica(tmp_path, sim, postgres_url, key) for key in ("mcp-a", "mcp-b")]
        bots = [await spawn_bot(base, name, BOT_JOBS, 2 * BOT_JOBS) for name in ("bot-a", "bot-b")]
        async with httpx.AsyncClient(timeout=60) as client:  # round robin, as a proxy with no affinity
            mcp_jobs = await asyncio.gather(*(generate(client, replicas[i % 2][1], token, i) for i in range(MCP_JOBS)))
        outputs = [await finish(proc, 300) for proc in bots]
        for _ in range(3000):  # the replicas follow their jobs to the end
            if not rows(postgres_url, "SELECT id FROM jobs WHERE finished_at IS NULL"):
                break
            await asyncio.sleep(0.1)
    finally:
        for proc, _ in replicas:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in replicas:
            await asyncio.wait_for(proc.wait(), 30)
        await sim.stop()

    jobs = {r["id"]: r for r in rows(postgres_url, "SELECT id, state, origin FROM jobs")}
    assert len(jobs) == MCP_JOBS + 2 * BOT_JOBS == 200
    assert {r["state"] for r in jobs.values()} == {"succeeded"}
    assert set(mcp_jobs) <= set(jobs) and len(set(mcp_jobs)) == MCP_JOBS
    assert len(recording.submits) == 200, "every job submitted exactly once"
    assert sorted(set(recording.submits)) == ["bot-a", "bot-b", "mcp-a", "mcp-b"]
    assert recording.submits.count("mcp-a") == recording.submits.count("mcp-b") == MCP_JOBS // 2

    discord_jobs = {i for i, r in jobs.items() if json.loads(r["origin"]).get("surface") == "discord"}
    posted = [p["job"] for out in outputs for p in json.loads(out.strip().splitlines()[-1])]
    assert len(discord_jobs) == 2 * BOT_JOBS and sorted(posted) == sorted(discord_jobs), "each result posted once"
    assert rows(postgres_url, "SELECT COUNT(*) AS n FROM discord_deliveries WHERE delivered_at IS NULL")[0]["n"] == 0

    env = {**os.environ, "VIDEOGEN_DB": postgres_url}
    check = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent_tools.cli", "books", "check", cwd=str(ROOT),
                                                 env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await check.communicate()
    assert check.returncode == 0, err.decode()
    assert "books agree" in out.decode() and "200 hold(s)" in out.decode()
    [books] = rows(postgres_url, "SELECT COUNT(*) AS holds, SUM(CASE WHEN state = 'settled' THEN 1 ELSE 0 END) AS settled"
                                 " FROM holds")
    assert (books["holds"], books["settled"]) == (200, 200)
