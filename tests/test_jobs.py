"""Generations end to end over real HTTP: Toolkit → JobEngine → adapters → the simulator on loopback.

Nothing is mocked: jobs live in a real SQLite file, outputs are real files downloaded from the
simulator, and a "crash" is a tracker task cancelled (or a process killed) mid-job.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from agent_tools.config import Settings
from agent_tools.errors import UserError
from agent_tools.jobs import JobState
from agent_tools.media import MediaError, MediaStore
from agent_tools.providers.base import OutputFile
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.store import open_database
from agent_tools.toolkit import Account, Toolkit

ALICE = Account("alice")
BOB = Account("bob")
ADMIN = Account("root", is_admin=True)
PNG_1PX = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
           b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def make_settings(tmp_path: Path, sim: Simulator, database: str | None = None, **overrides) -> Settings:
    data = {
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": database or str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
        "quotas": {"default": {}},  # no limits: these tests are about jobs, test_ledger is about quotas
    }
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture
async def toolkit(tmp_path, sim, database_url):
    """A Toolkit on each engine: a SQLite file, then a PostgreSQL schema."""
    kit = await Toolkit.open(make_settings(tmp_path, sim, database_url))
    yield kit
    await kit.close()


async def test_fal_video_end_to_end(toolkit, sim):
    events = []
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "a fox in the snow", "duration": 10},
                                 on_event=events.append)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.request_id and job.status_url and "/fal-ai/pika/requests/" in job.status_url
    assert job.actual_micros == job.estimate_micros == 400_000
    [output] = job.outputs
    path = Path(output["path"])
    assert path.is_file() and path.read_bytes()[4:8] == b"ftyp"
    assert output["url"].startswith(sim.base_url) and output["content_type"] == "video/mp4"
    # the queue phase lasts 0.05 s: the first poll may already see the job running (no wall-clock bet)
    seen = {e.state for e in events}
    assert JobState.SUCCEEDED in seen and seen & {JobState.QUEUED, JobState.RUNNING}
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    stored = await toolkit.get_job(ALICE, job.id)
    assert stored == job and stored.params["duration"] == 10


async def test_wavespeed_video_end_to_end(toolkit):
    job = await toolkit.generate(ALICE, "wavespeed_hunyuan_video_i2v",
                                 {"prompt": "slow push-in", "image": "https://example.com/a.png", "duration": 10})
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.actual_micros == 800_000 and Path(job.outputs[0]["path"]).read_bytes()[4:8] == b"ftyp"


async def test_images_are_each_kept(toolkit):
    job = await toolkit.generate(ALICE, "hunyuan_image_v3", {"prompt": "a poster", "num_images": 2,
                                                             "image_size": "landscape_16_9"})
    assert job.state is JobState.SUCCEEDED, job.error
    assert len(job.outputs) == 2
    for output in job.outputs:
        assert Path(output["path"]).read_bytes().startswith(b"\x89PNG")
        assert (output["width"], output["height"]) == (1024, 576)


@pytest.mark.parametrize(("tool", "args", "kind"), [
    ("pika_text_to_video", {"prompt": "[sim:content_policy] x"}, "content_policy"),
    ("pika_text_to_video", {"prompt": "[sim:invalid] x"}, "invalid_input"),
    ("pika_text_to_video", {"prompt": "[sim:detail_string] x"}, "invalid_input"),
    ("pika_image_to_video", {"prompt": "[sim:media_error] x", "image_url": "https://example.com/x.png"},
     "media_download_failed"),
    ("pika_text_to_video", {"prompt": "[sim:server_error] x"}, "transient"),
    ("pika_text_to_video", {"prompt": "[sim:timeout] x"}, "transient"),
    ("wavespeed_hunyuan_video_i2v", {"prompt": "[sim:content_policy] x", "image": "https://example.com/a.png"},
     "content_policy"),
    ("wavespeed_hunyuan_video_i2v", {"prompt": "[sim:media_error] x", "image": "https://example.com/a.png"},
     "media_download_failed"),
    ("wavespeed_hunyuan_video_i2v", {"prompt": "[sim:server_error] x", "image": "https://example.com/a.png"},
     "transient"),
])
async def test_provider_failures_fail_the_job_and_cost_nothing(toolkit, tool, args, kind):
    job = await toolkit.generate(ALICE, tool, args)
    assert job.state is JobState.FAILED
    assert job.error_kind == kind and job.error
    assert job.actual_micros == 0 and job.outputs == []
    assert "sim-fal-key" not in job.error and "sim-ws-key" not in job.error


@pytest.mark.parametrize("key_prefix,kind", [("bad", "authentication"), ("broke", "out_of_balance")])
async def test_account_problems_are_refused_at_submit(tmp_path, sim, key_prefix, kind):
    settings = make_settings(tmp_path, sim, fal={"key": f"{key_prefix}-key-123"})
    async with await Toolkit.open(settings) as kit:
        job = await kit.generate(ALICE, "sora_2_text_to_video", {"prompt": "x"})
    assert job.state is JobState.FAILED and job.error_kind == kind
    assert f"{key_prefix}-key-123" not in job.error


async def test_status_outages_are_retried(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:flaky=2] a fox"})
    assert job.state is JobState.SUCCEEDED, job.error


async def test_wait_zero_returns_at_once_and_wait_for_job_finishes(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=0.5] x"}, wait=0)
    assert job.state is JobState.QUEUED and job.request_id
    done = await toolkit.wait_for_job(ALICE, job.id, timeout=10)
    assert done.state is JobState.SUCCEEDED


async def test_timeout_returns_the_running_job(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=3] x"}, wait=0.3)
    assert job.state in (JobState.QUEUED, JobState.RUNNING)
    await toolkit.cancel_job(ALICE, job.id)


# -- cancel -----------------------------------------------------------------------------------

async def until_state(toolkit, job_id, states, timeout=60.0):
    """The job once it is in one of ``states``; ``timeout`` only keeps a broken test from hanging
    (far above what a loaded machine needs: no speed is asserted here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await toolkit.engine.get(job_id)
        if job.state in states:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job never reached {states}: {job.state}")


async def test_cancel_while_queued(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:queue=20] [sim:slow=5] x"}, wait=0)
    job, message = await toolkit.cancel_job(ALICE, job.id)
    final = await toolkit.wait_for_job(ALICE, job.id, timeout=5)
    assert final.state is JobState.CANCELLED and final.actual_micros == 0, message


async def test_cancel_while_running(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=5] x"}, wait=0)
    await until_state(toolkit, job.id, {JobState.RUNNING})
    _, message = await toolkit.cancel_job(ALICE, job.id)
    final = await toolkit.wait_for_job(ALICE, job.id, timeout=5)
    assert final.state is JobState.CANCELLED, (final.state, message)


async def test_cancel_after_completion_is_a_no_op(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
    again, message = await toolkit.cancel_job(ALICE, job.id)
    assert again.state is JobState.SUCCEEDED and "already" in message


async def test_cancel_on_wavespeed_is_honest(toolkit):
    job = await toolkit.generate(ALICE, "wavespeed_hunyuan_video_i2v",
                                 {"prompt": "[sim:slow=0.5] x", "image": "https://example.com/a.png"}, wait=0)
    _, message = await toolkit.cancel_job(ALICE, job.id)
    assert "cannot cancel" in message
    assert (await toolkit.wait_for_job(ALICE, job.id, timeout=5)).state is JobState.SUCCEEDED


async def test_jobs_are_private_to_their_account(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"}, wait=0)
    with pytest.raises(UserError, match="No job"):
        await toolkit.get_job(BOB, job.id)
    with pytest.raises(UserError, match="No job"):
        await toolkit.cancel_job(BOB, job.id)
    assert await toolkit.list_jobs(BOB) == []
    assert (await toolkit.get_job(ADMIN, job.id)).id == job.id
    with pytest.raises(UserError, match="Only admins"):
        await toolkit.list_jobs(BOB, all_accounts=True)
    await toolkit.cancel_job(ALICE, job.id)


# -- inputs -----------------------------------------------------------------------------------

async def test_local_image_is_uploaded_before_submit(toolkit, tmp_path, sim):
    image = tmp_path / "frame.png"
    image.write_bytes(PNG_1PX + b"\x00" * 300_000)  # big enough to go through the upload flow
    job = await toolkit.generate(ALICE, "pika_image_to_video", {"prompt": "smile", "image_url": str(image)})
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.params["image_url"].startswith(sim.base_url)  # the uploaded URL, not the local path


async def test_small_local_image_goes_as_data_uri(toolkit, tmp_path):
    image = tmp_path / "tiny.png"
    image.write_bytes(PNG_1PX)
    job = await toolkit.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": "p", "image_url": str(image)})
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.params["image_url"].startswith("data:image/png;sha256=")  # sent inline, stored as a digest
    assert "base64" not in json.dumps(job.params)


async def test_data_uri_inputs_are_checked_like_files_and_stored_as_a_digest(toolkit, sim):
    import base64

    good = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    job = await toolkit.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": "p", "image_url": good})
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.params["image_url"].startswith("data:image/png;sha256=") and good not in json.dumps(job.params)
    submits = sim.stats.total_submits
    for uri, message in [
        ("data:image/png;base64," + base64.b64encode(b"<html>not an image</html>").decode(), "is not an image"),
        ("data:image/png;base64," + "A" * (28 * 2**20), "the limit is 20.0 MiB"),
        ("data:image/png;base64,***", "not valid base64"),
        ("data:image/png,rawbytes", "must be base64"),
    ]:
        with pytest.raises(UserError, match=message):
            await toolkit.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": "p", "image_url": uri})
    assert sim.stats.total_submits == submits
    assert [h.state for h in await toolkit.open_holds(ADMIN)] == []


@pytest.mark.parametrize(("content", "name", "message"), [
    (None, "missing.png", "does not exist"),
    (b"hello, not an image", "notes.png", "is not an image"),
    (PNG_1PX + b"\x00" * (21 * 2**20), "huge.png", "the limit is 20.0 MiB"),
])
async def test_bad_local_files_are_refused_before_anything_is_submitted(toolkit, tmp_path, sim, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = sim.stats.requests
    with pytest.raises(UserError, match=message):
        await toolkit.generate(ALICE, "pika_image_to_video", {"prompt": "x", "image_url": str(path)})
    assert await toolkit.list_jobs(ALICE) == []
    assert sim.stats.requests == before, "nothing reached the provider"


async def test_local_paths_refused_when_not_allowed(toolkit, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(PNG_1PX)
    with pytest.raises(UserError, match="local file paths are not accepted"):
        await toolkit.generate(ALICE, "pika_image_to_video", {"prompt": "x", "image_url": str(path)},
                               allow_local_files=False)


async def test_missing_provider_key_is_a_clear_error(tmp_path, sim):
    settings = make_settings(tmp_path, sim)
    settings = settings.model_copy(update={"wavespeed": settings.wavespeed.model_copy(update={"key": None})})
    async with await Toolkit.open(settings) as kit:
        with pytest.raises(UserError, match="WAVESPEED_API_KEY"):
            await kit.generate(ALICE, "wavespeed_hunyuan_video_i2v", {"image": "https://example.com/a.png"})


async def test_idempotency_key_returns_the_first_job(toolkit):
    first = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"}, idempotency_key="req-1")
    second = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"}, idempotency_key="req-1")
    assert first.id == second.id and len(await toolkit.list_jobs(ALICE)) == 1


async def test_provider_down_fails_cleanly(tmp_path, sim):
    settings = make_settings(tmp_path, sim, fal={"queue_url": "http://127.0.0.1:9"})  # nothing listens there
    async with await Toolkit.open(settings) as kit:
        kit.adapters["fal"].retry = type(kit.adapters["fal"].retry)(max_attempts=2, base_delay=0.01, max_delay=0.02)
        job = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
    assert job.state is JobState.FAILED and job.error_kind == "transient"
    assert "fal" in job.error


# -- crash safety -----------------------------------------------------------------------------

async def test_resume_after_the_tracker_dies(tmp_path, sim, database_url):
    settings = make_settings(tmp_path, sim, database_url)
    first = await Toolkit.open(settings)
    job = await first.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=0.6] x"}, wait=0)
    await until_state(first, job.id, {JobState.RUNNING})
    await first.close()  # the tracker task is cancelled mid-job, as on a crash
    assert (await _peek(settings, job.id))["state"] == "running"

    later = time.time() + 1_000  # the dead process's lease has lapsed
    second = await Toolkit.open(settings, clock=lambda: time.time() + 1_000)
    try:
        done = await second.wait_for_job(ALICE, job.id, timeout=10)
    finally:
        await second.close()
    assert later and done.state is JobState.SUCCEEDED
    files = list((tmp_path / "media" / job.id).iterdir())
    assert len(files) == 1 and files[0].read_bytes()[4:8] == b"ftyp"  # kept exactly once


async def test_a_live_lease_is_not_stolen(tmp_path, sim, database_url):
    settings = make_settings(tmp_path, sim, database_url)
    first = await Toolkit.open(settings)
    job = await first.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=0.5] x"}, wait=0)
    second = await Toolkit.open(settings)  # another process on the same file, same time
    assert job.id not in {j.id for j in await second.resume()}
    await second.close()
    assert (await first.wait_for_job(ALICE, job.id, timeout=5)).state is JobState.SUCCEEDED
    await first.close()


async def test_interrupted_submit_becomes_unknown_and_pending_fails(tmp_path, sim, database_url):
    settings = make_settings(tmp_path, sim, database_url)
    kit = await Toolkit.open(settings)
    submitting = await kit.engine.create(account="alice", tool="veo3_fast", params={"prompt": "x"},
                                         estimate_micros=3_200_000)
    await kit.engine._transition(submitting.id, JobState.SUBMITTING, {JobState.PENDING})
    pending = await kit.engine.create(account="alice", tool="veo3_fast", params={"prompt": "y"},
                                      estimate_micros=3_200_000)
    await kit.close()
    later = await Toolkit.open(settings, clock=lambda: time.time() + 10_000)
    try:
        assert (await later.engine.get(submitting.id)).state is JobState.UNKNOWN
        failed = await later.engine.get(pending.id)
        assert failed.state is JobState.FAILED and "nothing was charged" in failed.error
    finally:
        await later.close()


async def test_transitions_are_recorded(toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
    rows = await toolkit.db.fetchall("SELECT from_state, to_state FROM job_events WHERE job_id = ? ORDER BY seq",
                                     (job.id,))
    path = [(r["from_state"], r["to_state"]) for r in rows]
    assert path[0] == (None, "pending") and path[-1] == ("fetching", "succeeded")
    assert ("submitting", "queued") in path


async def test_two_hundred_concurrent_jobs_complete(tmp_path, sim, database_url):
    async with await Toolkit.open(make_settings(tmp_path, sim, database_url)) as kit:
        jobs = await asyncio.gather(*(kit.generate(ALICE, "hailuo_02_text_to_video", {"prompt": f"clip {i}"})
                                      for i in range(200)))
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 200
    assert len({j.outputs[0]["path"] for j in jobs}) == 200


async def _peek(settings: Settings, job_id: str) -> dict:
    """The job's row as another process reads it, past the Toolkit."""
    async with await open_database(settings.storage.database) as db:
        return dict(await db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,)))


# -- the download guard -------------------------------------------------------------------------

async def test_outputs_from_private_addresses_are_refused(tmp_path):
    store = MediaStore(tmp_path, max_bytes=1024)
    with pytest.raises(MediaError, match="private or local address"):
        await store.keep("job", 0, OutputFile(url="http://127.0.0.1:1/x.mp4"), "video")
    with pytest.raises(MediaError, match="private or local address"):
        await store.keep("job", 0, OutputFile(url="http://169.254.169.254/latest/meta-data"), "video")
    with pytest.raises(MediaError, match="not allowed"):
        await store.keep("job", 0, OutputFile(url="file:///etc/passwd"), "video")
    await store.aclose()


async def test_output_size_cap_and_type_check(tmp_path, sim, toolkit):
    job = await toolkit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
    url = job.outputs[0]["url"]
    small = MediaStore(tmp_path / "small", max_bytes=1000, trusted_urls=[sim.base_url])
    with pytest.raises(MediaError, match="download limit"):
        await small.keep("j", 0, OutputFile(url=url), "video")
    await small.aclose()
    roomy = MediaStore(tmp_path / "small", max_bytes=10 * 2**20, trusted_urls=[sim.base_url])
    with pytest.raises(MediaError, match="video/mp4, not an image file"):
        await roomy.keep("j", 0, OutputFile(url=url), "images")
    await roomy.aclose()
    assert not list((tmp_path / "small" / "j").glob("*")), "nothing partial is left behind"


def test_job_rows_never_hold_secrets(tmp_path):
    """api_key is masked in stored params (the payload with the real key is never written)."""
    from agent_tools.catalog import get

    params = get("sora_2_text_to_video").validate({"prompt": "x", "api_key": "sk-should-not-persist"})
    assert "sk-should-not-persist" not in json.dumps(params.public_params())
