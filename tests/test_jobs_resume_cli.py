"""``videogen jobs resume [--wait]`` and how ``jobs list`` shows a job nobody tracks (issue 10)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from agent_tools.config import load_settings
from agent_tools.toolkit import Account, Toolkit
from processes import guarded


def start_and_leave(prompt: str) -> str:
    """A process starts a job and stops without waiting for it (as after Ctrl-C): nobody tracks it."""
    async def go() -> str:
        async with await Toolkit.open(load_settings()) as kit:
            job = await kit.generate(Account("local"), "pika_text_to_video", {"prompt": prompt}, wait=0)
            return job.id
    return asyncio.run(go())


def test_a_job_whose_owner_is_gone_is_shown_so_and_resumed_now(cli, providers_env):
    job_id = start_and_leave("[sim:slow=0.5] left behind")
    code, out, _ = cli("jobs", "list")
    assert code == 0 and "(owner gone)" in out and "videogen jobs resume" in out
    [listed] = json.loads(cli("jobs", "list", "--json")[1])
    assert listed["job_id"] == job_id and listed["owner_gone"] is True and listed["state"] in ("queued", "running")

    code, out, _ = cli("jobs", "resume", "--wait", "--json")
    [resumed] = json.loads(out)
    assert code == 0 and resumed["job_id"] == job_id and resumed["state"] == "succeeded"
    assert resumed["was"] in ("queued", "running") and resumed["owner_gone"] is False
    code, out, _ = cli("jobs", "list")
    assert "succeeded" in out and "owner gone" not in out
    assert "no job to resume" in cli("jobs", "resume")[1]


def test_a_job_with_a_live_owner_is_left_to_it(cli, providers_env):
    env = {**os.environ, "VIDEOGEN_CONFIG": str(providers_env / "none.toml")}
    (providers_env / "none.toml").write_text("")
    owner = subprocess.Popen(guarded(sys.executable, "-m", "agent_tools.cli", "generate", "pika_text_to_video",
                                     "--prompt", "[sim:slow=3] followed by its own process", "--json"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in owner.stderr:  # once the job is at the provider
            if "queued" in line or "running" in line:
                break
        code, out, _ = cli("jobs", "resume")
        assert code == 0 and "no job to resume" in out
        assert "owner gone" not in cli("jobs", "list")[1]
        out, _ = owner.communicate(timeout=60)
    finally:
        if owner.poll() is None:
            owner.kill()
    assert owner.returncode == 0 and json.loads(out)["state"] == "succeeded"


def test_without_wait_a_running_job_is_followed_briefly_and_handed_back(cli, providers_env):
    job_id = start_and_leave("[sim:slow=30] a long one")
    code, out, _ = cli("jobs", "resume", "--follow-seconds", "0.2")
    assert code == 0 and job_id in out and "still running at the provider" in out
    [listed] = json.loads(cli("jobs", "list", "--json")[1])
    assert listed["owner_gone"] is True  # handed back as the command exited: the next resume takes it at once
    assert job_id in cli("jobs", "resume", "--follow-seconds", "0.1")[1]
