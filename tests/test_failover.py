"""Failover: a submit the provider refused unsent goes once to the same model on the other provider.

Real parts only: the Toolkit, the job engine, the ledger in a SQLite file and both adapters talking
HTTP to the simulator, whose ``[sim:fal_refuse=R]`` / ``[sim:wavespeed_refuse=R]`` markers make one
provider refuse a submit in each way a provider can.
"""

from __future__ import annotations

import socket

import pytest

from agent_tools.jobs import JobState
from agent_tools.ledger import Limits
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit
from agent_tools.errors import UserError
from tests.test_jobs import make_settings

ALICE = Account("alice")
FAL_TOOL, WS_TOOL = "hunyuan_video_image_to_video", "wavespeed_hunyuan_video_i2v"
IMAGE = "https://example.com/still.png"


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


async def open_kit(tmp_path, sim, **overrides):
    return await Toolkit.open(make_settings(tmp_path, sim, **overrides))


def fal_args(marker: str = "", **extra):
    return {"prompt": f"a lighthouse in a storm {marker}".strip(), "image_url": IMAGE, **extra}


async def books_clean(kit: Toolkit) -> None:
    check = await kit.ledger.check_books()
    assert check.ok, check.differences


@pytest.mark.parametrize("refusal, kind", [("429", "rate_limited"), ("503", "transient"),
                                           ("locked", "out_of_balance")])
async def test_fal_refusal_fails_over_to_wavespeed(tmp_path, sim, refusal, kind):
    async with await open_kit(tmp_path, sim) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args(f"[sim:fal_refuse={refusal}]", aspect_ratio="9:16",
                                                           seed=7))
        assert job.state is JobState.SUCCEEDED, job.error
        assert (job.provider, job.tool, job.endpoint_id) == ("wavespeed", WS_TOOL, "wavespeed-ai/hunyuan-video/i2v")
        assert job.failover["from_tool"] == FAL_TOOL and job.failover["from_provider"] == "fal"
        assert job.failover["error_kind"] == kind
        assert job.failover_note.startswith(f"Ran on wavespeed ({WS_TOOL}) instead of fal ({FAL_TOOL})")
        assert job.params["size"] == "720*1280" and job.params["duration"] == 5 and job.params["seed"] == 7
        assert job.params["image"] == IMAGE
        assert job.actual_micros == 400_000
        [hold] = await kit.ledger.holds(states=("settled",))
        assert hold.tool == WS_TOOL and hold.actual_micros == 400_000
        await books_clean(kit)
        events = [r["detail"] for r in await kit.db.fetchall("SELECT detail FROM job_events WHERE job_id = ?"
                                                              " ORDER BY seq", (job.id,))]
        assert any(d.startswith("failover to wavespeed") for d in events)
        from agent_tools.agent.results import job_structured, job_text
        from agent_tools.cli.output import describe_job
        assert job_structured(job, now=0, show_paths=False)["failover"] == job.failover_note
        assert job.failover_note in job_text(job, now=0, show_paths=False)
        assert f"failover: {job.failover_note}" in describe_job(job)
    assert sim.stats.submits == {"wavespeed": 1}, "fal queued nothing; WaveSpeed ran the one job"


async def test_a_refused_key_fails_over(tmp_path, sim):
    async with await open_kit(tmp_path, sim, fal={"key": "bad-fal-key"}) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args())
        assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed"
        assert job.failover["error_kind"] == "authentication"


async def test_fal_unreachable_fails_over(tmp_path, sim):
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused, nothing sent
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with await open_kit(tmp_path, sim, fal={"queue_url": dead}) as kit:
        from agent_tools.providers.http import RetryPolicy
        kit.adapters["fal"].retry = RetryPolicy(max_attempts=1)
        job = await kit.generate(ALICE, FAL_TOOL, fal_args())
        assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed"
        assert job.failover["error_kind"] == "transient"


@pytest.mark.parametrize("tool, args, marker", [
    (FAL_TOOL, fal_args("[sim:fal_refuse=500]"), "fal"),
    (WS_TOOL, {"prompt": "x [sim:wavespeed_refuse=503]", "image": IMAGE}, "wavespeed"),
    (WS_TOOL, {"prompt": "x [sim:wavespeed_refuse=500]", "image": IMAGE}, "wavespeed"),
])
async def test_no_failover_after_an_unknown_outcome(tmp_path, sim, tool, args, marker):
    async with await open_kit(tmp_path, sim) as kit:
        job = await kit.generate(ALICE, tool, args)
        assert job.state is JobState.UNKNOWN and job.provider == marker and not job.failover
        assert "may have" in job.error
        [hold] = await kit.ledger.holds()
        assert hold.state in ("held", "submitted"), "the hold stays open for the operator: it may be billed"
    assert sim.stats.total_submits == 0, "nothing was sent to the other provider"


async def test_wavespeed_refusal_fails_over_to_fal(tmp_path, sim):
    async with await open_kit(tmp_path, sim) as kit:
        job = await kit.generate(ALICE, WS_TOOL, {"prompt": "a fox [sim:wavespeed_refuse=429]", "image": IMAGE,
                                                  "size": "720*1280", "seed": 3})
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.provider == "fal" and job.tool == FAL_TOOL
        assert job.params == {"prompt": "a fox [sim:wavespeed_refuse=429]", "image_url": IMAGE, "seed": 3,
                              "aspect_ratio": "9:16", "resolution": "720p", "num_frames": "129",
                              "i2v_stability": False}
    assert sim.stats.submits == {"fal": 1}


@pytest.mark.parametrize("tool, args, why", [
    (WS_TOOL, {"prompt": "x [sim:wavespeed_refuse=429]", "image": IMAGE, "duration": 10}, "a 10 s clip"),
    (FAL_TOOL, fal_args("[sim:fal_refuse=429]", i2v_stability=True), "i2v_stability is on"),
])
async def test_a_choice_without_counterpart_is_not_moved(tmp_path, sim, tool, args, why):
    async with await open_kit(tmp_path, sim) as kit:
        job = await kit.generate(ALICE, tool, args)
        assert job.state is JobState.FAILED and job.error_kind == "rate_limited" and not job.failover
        assert "It was not sent to another provider instead" in job.error and why in job.error
        assert (await kit.ledger.holds(states=("released",)))[0].tool == tool
        await books_clean(kit)
    assert sim.stats.total_submits == 0


@pytest.mark.parametrize("failover", [{"enabled": False}, {"disabled_tools": [FAL_TOOL]}])
async def test_failover_can_be_turned_off(tmp_path, sim, failover):
    async with await open_kit(tmp_path, sim, failover=failover) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args("[sim:fal_refuse=429]"))
        assert job.state is JobState.FAILED and job.provider == "fal" and not job.failover
        assert "another provider" not in job.error
    assert sim.stats.total_submits == 0


async def test_an_opted_out_equivalent_receives_no_job(tmp_path, sim):
    async with await open_kit(tmp_path, sim, failover={"disabled_tools": [WS_TOOL]}) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args("[sim:fal_refuse=429]"))
        assert job.state is JobState.FAILED and job.provider == "fal" and not job.failover
        assert f"{WS_TOOL} is opted out of failover ([failover] disabled_tools)" in job.error
        ws = await kit.generate(ALICE, WS_TOOL, {"prompt": "x [sim:wavespeed_refuse=429]", "image": IMAGE})
        assert ws.state is JobState.FAILED and ws.provider == "wavespeed" and "another provider" not in ws.error
    async with await open_kit(tmp_path, sim, fal={"key": None}, failover={"disabled_tools": [WS_TOOL]}) as kit:
        with pytest.raises(UserError, match=f"No fal API key.*It cannot fail over: {WS_TOOL} is opted out"):
            await kit.generate(ALICE, FAL_TOOL, fal_args())
    assert sim.stats.total_submits == 0


async def test_missing_key_runs_on_the_equivalent(tmp_path, sim):
    async with await open_kit(tmp_path, sim, fal={"key": None}) as kit:  # no FAL_KEY set
        estimate = await kit.preflight(ALICE, FAL_TOOL, fal_args())
        assert estimate.spec.tool == WS_TOOL
        job = await kit.generate(ALICE, FAL_TOOL, fal_args())
        assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed"
        assert job.failover["reason"] == "no fal key is configured"
        with pytest.raises(UserError, match="No fal API key.*It cannot fail over: wavespeed_hunyuan_video_i2v cannot"):
            await kit.generate(ALICE, FAL_TOOL, fal_args(i2v_stability=True))


async def test_a_dearer_equivalent_needs_the_allowance_and_the_quota(tmp_path, sim):
    dearer = {"wavespeed_hunyuan_video_i2v": {"per_5_seconds": "0.50"}}
    async with await open_kit(tmp_path, sim, prices=dearer) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args("[sim:fal_refuse=429]"))
        assert job.state is JobState.FAILED and "costs $0.50, above the $0.40 allowed" in job.error
    (tmp_path / "videogen.db").unlink()
    async with await open_kit(tmp_path, sim, prices=dearer, failover={"max_price_increase": 25}) as kit:
        job = await kit.generate(ALICE, FAL_TOOL, fal_args("[sim:fal_refuse=429]"))
        assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed" and job.actual_micros == 500_000
        [hold] = await kit.ledger.holds(states=("settled",))
        assert hold.estimate_micros == 500_000
        await books_clean(kit)
        assert (await kit.db.fetchone("SELECT amount FROM audit WHERE event = 'estimate_raised'"))[0] == 100_000
        await kit.ledger.set_limits("account", "alice", Limits(daily_micros=950_000))
        # $0.50 used: the $0.40 quote fits, the $0.10 more on WaveSpeed does not.
        job = await kit.generate(ALICE, FAL_TOOL, fal_args("[sim:fal_refuse=429]"))
        assert job.state is JobState.FAILED and "would cost more than the limits allow" in job.error
        await books_clean(kit)
