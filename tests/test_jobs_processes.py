"""Several processes, one database (a SQLite file, then a PostgreSQL schema): each job is polled by
one process at a time, and a job whose process is killed (``kill -9``) at any point of its life
ends exactly once after another process resumes it, with nothing submitted twice and the books
balanced (issues 10 and 14).

The simulator runs in the test process and records which process made each provider call
(``processes.Recording``). Run as a script, this file is the worker:

    python tests/test_jobs_processes.py WORKER SETTINGS_JSON KEY COMMAND [ARG...]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # the worker, started by the tests below with the project on sys.path
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from agent_tools.jobs import JobState
from agent_tools.toolkit import Account, Toolkit

from processes import Recording, base_settings, books, die_with_parent, finish, rows, settings_for, start_sim, worker_env

ALICE = Account("alice")
PNG_1PX = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
           b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


# -- the worker -------------------------------------------------------------------------------

async def worker(base: dict[str, Any], key: str, command: str, args: list[str]) -> None:
    offset = float(os.environ.get("CLOCK_OFFSET", "0"))
    kit = await Toolkit.open(settings_for(base, key), clock=lambda: time.time() + offset)
    try:
        if command == "generate":  # follow one job to its end, reporting every event
            tool, arguments = args[0], json.loads(args[1])

            def show(event) -> None:
                print(json.dumps({"job": event.job.id, "state": event.state.value}), flush=True)

            job = await kit.generate(ALICE, tool, arguments, on_event=show)
            print(json.dumps({"job": job.id, "state": job.state.value, "final": True}), flush=True)
        elif command == "start-and-follow-all":  # start N jobs, then wait for every job in the file
            count, go = int(args[0]), Path(args[1])
            for i in range(count):
                await kit.generate(ALICE, "pika_text_to_video", {"prompt": f"[sim:slow=0.4] {key} clip {i}"}, wait=0)
            print("started", flush=True)
            while not go.exists():  # both processes have started their jobs
                await asyncio.sleep(0.02)
            ids = [j.id for j in await kit.list_jobs(ALICE, limit=1000)]
            done = await asyncio.gather(*(kit.wait_for_job(ALICE, i, timeout=60) for i in ids))
            print(json.dumps({j.id: j.state.value for j in done}), flush=True)
        elif command == "resume":  # Toolkit.open has resumed what lapsed; follow every job to its end
            done = [await kit.wait_for_job(ALICE, j.id, timeout=30) for j in await kit.list_jobs(ALICE)]
            print(json.dumps({j.id: j.state.value for j in done}), flush=True)
    finally:
        await kit.close()


# -- the parent's side ------------------------------------------------------------------------

async def spawn(base: dict[str, Any], key: str, command: str, *args: str, clock_offset: float = 0):
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "WORKER", json.dumps(base), key, command, *args,
        env=worker_env(CLOCK_OFFSET=str(clock_offset)),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


# -- two live processes -----------------------------------------------------------------------

async def test_two_processes_following_every_job_poll_each_job_from_one_process(tmp_path, database_url):
    recording = Recording()
    sim = await start_sim(recording)
    try:
        base = base_settings(tmp_path, sim, database_url)
        go = tmp_path / "go"
        procs = [await spawn(base, key, "start-and-follow-all", "4", str(go)) for key in ("proc-a", "proc-b")]
        for proc in procs:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"started", (line, (await proc.stderr.read()).decode(errors="replace")[-3000:])
        go.touch()  # now each process waits for all 8 jobs, its own and the other's
        outcomes = [json.loads(await finish(proc)) for proc in procs]
    finally:
        await sim.stop()

    db = database_url
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 8
    assert set(outcomes[0].values()) == {"succeeded"}
    jobs = rows(db, "SELECT id, request_id, params FROM jobs")
    for job in jobs:
        submitter = "proc-a" if "proc-a" in json.loads(job["params"])["prompt"] else "proc-b"
        pollers = set(recording.polls[job["request_id"]])
        assert pollers == {submitter}, f"job {job['id']} polled by {pollers}, submitted by {submitter}"
    assert sorted(recording.submits) == ["proc-a"] * 4 + ["proc-b"] * 4
    ends = rows(db, "SELECT job_id, COUNT(*) AS n FROM job_events WHERE to_state = 'succeeded' GROUP BY job_id")
    assert len(ends) == 8 and {r["n"] for r in ends} == {1}
    assert books(db) == {"settled": 8 * 200_000, "open": 0, "released": 0, "holds": 8,
                         "audit_settled": 8 * 200_000, "audit_settles": 8, "audit_releases": 0}
    for job in jobs:  # each output kept once, no temp file left
        assert [p.name.startswith(".") for p in (tmp_path / "media" / job["id"]).iterdir()] == [False]


# -- kill -9 at each point of a job's life, then resume from another process -----------------

POINTS = {
    # point: (hold this call, wait for this, tool, arguments, state after resume, submits, charged)
    "pending": ("upload", "upload", "pika_image_to_video", {"prompt": "x", "image_url": "INPUT"},
                "failed", 0, False),
    "submitting": ("submit", "submit", "pika_text_to_video", {"prompt": "x"}, "unknown", 1, None),
    "running": (None, None, "pika_text_to_video", {"prompt": "[sim:slow=1.5] x"}, "succeeded", 1, True),
    "fetching": ("file", "file-half", "pika_text_to_video", {"prompt": "x"}, "succeeded", 1, True),
}


@pytest.mark.parametrize("point", list(POINTS))
async def test_a_killed_process_job_ends_exactly_once_after_a_resume(tmp_path, point, database_url):
    hold, wait_for, tool, arguments, final, submits, charged = POINTS[point]
    if "image_url" in arguments:
        image = tmp_path / "in.png"
        image.write_bytes(PNG_1PX + b"\0" * 2**20)  # big enough for fal's upload flow, not a data: URI
        arguments = arguments | {"image_url": str(image)}
    recording = Recording()
    if hold:
        recording.hold[hold] = 30.0
    sim = await start_sim(recording)
    db = database_url
    try:
        base = base_settings(tmp_path, sim, database_url)
        victim = await spawn(base, "victim", "generate", tool, json.dumps(arguments))
        try:
            if wait_for:
                await asyncio.wait_for(recording.arrived[wait_for].wait(), 30)
            else:
                while True:  # the worker reports each state change
                    line = await asyncio.wait_for(victim.stdout.readline(), 30)
                    assert line, await victim.stderr.read()
                    if json.loads(line)["state"] == point:
                        break
            [row] = rows(db, "SELECT state FROM jobs")
            assert row["state"] == point
        finally:
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
        recording.hold.clear()
        # Another process, once the dead one's lease has lapsed (its clock is 1000 s ahead).
        rescuer = await spawn(base, "rescuer", "resume", clock_offset=1_000)
        outcome = json.loads(await finish(rescuer))
    finally:
        await sim.stop()

    [job] = rows(db, "SELECT * FROM jobs")
    assert outcome == {job["id"]: final} and job["state"] == final
    assert len(recording.submits) == submits, "nothing is ever submitted twice"
    ends = rows(db, "SELECT to_state FROM job_events WHERE job_id = ? AND to_state IN"
                    " ('succeeded','failed','cancelled','unknown')", job["id"])
    assert [r["to_state"] for r in ends] == [final], "the job ended exactly once"
    if final == "succeeded":
        assert set(recording.polls[job["request_id"]]) <= {"victim", "rescuer"}
        kept = list((tmp_path / "media" / job["id"]).iterdir())
        assert len(kept) == 1 and not kept[0].name.startswith(".") and kept[0].read_bytes()[4:8] == b"ftyp", \
            "the output is kept once and the killed process's temp file is gone"
    estimate = job["estimate_micros"]
    expected = {"settled": estimate if charged else 0, "open": estimate if charged is None else 0,
                "released": 1 if charged is False else 0, "holds": 1,
                "audit_settled": estimate if charged else 0, "audit_settles": 1 if charged else 0,
                "audit_releases": 1 if charged is False else 0}
    assert books(db) == expected  # an unknown outcome keeps its hold open for the operator


# -- the fetch phase: lease renewal, the overall deadline, temp files, what a download really is --

async def test_a_long_download_renews_the_lease_so_no_other_process_takes_the_job(tmp_path):
    recording = Recording()
    recording.hold["file"] = 3.0  # three times the lease
    sim = await start_sim(recording)
    base = base_settings(tmp_path, sim)
    owner = await Toolkit.open(settings_for(base, "owner"), lease_seconds=1.0)
    other = await Toolkit.open(settings_for(base, "other"), lease_seconds=1.0)
    try:
        job = await owner.generate(ALICE, "pika_text_to_video", {"prompt": "x"}, wait=0)
        await asyncio.wait_for(recording.arrived["file-half"].wait(), 10)
        taken = []
        while not (await other.get_job(ALICE, job.id)).finished:  # another process keeps trying
            taken += await other.resume()
            await asyncio.sleep(0.1)
        done = await owner.wait_for_job(ALICE, job.id, timeout=10)
    finally:
        await other.close()
        await owner.close()
        await sim.stop()
    assert taken == [] and done.state is JobState.SUCCEEDED
    assert set(recording.polls[done.request_id]) == {"owner"}
    assert [p.name.startswith(".") for p in (tmp_path / "media" / job.id).iterdir()] == [False]


async def test_a_download_past_its_deadline_stops_and_leaves_no_temp_file(tmp_path):
    from agent_tools.media import MediaError, MediaStore
    from agent_tools.providers.base import OutputFile

    recording = Recording()
    sim = await start_sim(recording)
    base = base_settings(tmp_path, sim)
    try:
        async with await Toolkit.open(settings_for(base, "k")) as kit:
            job = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
        recording.hold["file"] = 30.0
        store = MediaStore(tmp_path / "slow", max_bytes=2**30, trusted_urls=[sim.base_url], deadline_seconds=0.5)
        with pytest.raises(MediaError, match=r"did not finish within 0.5 s \(storage.download_deadline_seconds\)"):
            await store.keep("j", 0, OutputFile(url=job.outputs[0]["url"]), "video")
        await store.aclose()
    finally:
        await sim.stop()
    assert recording.arrived["file-half"].is_set(), "the download had started writing"
    assert list((tmp_path / "slow" / "j").iterdir()) == [], "the temp file was removed"


async def test_an_output_that_is_not_media_fails_the_job_at_no_charge(tmp_path):
    from aiohttp import web

    @web.middleware
    async def html_instead(request: web.Request, handler):
        if request.path.startswith("/files/"):
            return web.Response(body=b"<!doctype html><title>Sign in</title>", content_type="video/mp4")
        return await handler(request)

    from agent_tools.simulator import SimSettings, Simulator

    sim = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.1))
    sim.app.middlewares.append(html_instead)
    await sim.start(host="127.0.0.1", port=0)
    try:
        async with await Toolkit.open(settings_for(base_settings(tmp_path, sim), "k")) as kit:
            job = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "x"})
            [hold] = await kit.db.fetchall("SELECT state, actual_micros FROM holds")
    finally:
        await sim.stop()
    assert job.state is JobState.FAILED and job.actual_micros == 0
    assert "is not a video file" in job.error and "Nothing was charged" in job.error
    assert (hold["state"], hold["actual_micros"]) == ("released", 0)
    assert list((tmp_path / "media" / job.id).iterdir()) == []


if __name__ == "__main__" and sys.argv[1:2] == ["WORKER"]:
    die_with_parent()
    asyncio.run(worker(json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]))
