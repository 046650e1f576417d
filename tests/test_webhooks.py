"""Webhooks: verified provider callbacks wake a job's tracker; polling stays the truth.

Signature checks run on keys made here (valid, wrong key, old timestamp, tampered body, replay);
end to end, the simulator signs and sends real callbacks to the receiver served over loopback by
aiohttp (the ``videogen discord`` mount) and Starlette (the ``videogen web`` / ``mcp --http`` mount).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_tools.config import is_database_url
from agent_tools.jobs import JobState
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit
from agent_tools.webhooks.mount import aiohttp_app
from agent_tools.webhooks.verify import (JwksCache, Rejected, fal_delivery, fal_signed_by, wavespeed_delivery,
                                         wavespeed_signature, wavespeed_signed)
from tests.test_jobs import make_settings

ALICE = Account("alice")
NOW = 1_800_000_000
IMAGE = "https://example.com/still.png"


# -- signatures ------------------------------------------------------------------------------------

def jwk(key: Ed25519PrivateKey, padded: bool = True) -> dict:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x if padded else x.rstrip("=")}


def fal_headers(key: Ed25519PrivateKey, body: bytes, *, rid: str = "req-1", ts: int = NOW) -> dict[str, str]:
    message = "\n".join([rid, "user-1", str(ts), hashlib.sha256(body).hexdigest()]).encode()
    return {"X-Fal-Webhook-Request-Id": rid, "X-Fal-Webhook-User-Id": "user-1",
            "X-Fal-Webhook-Timestamp": str(ts), "X-Fal-Webhook-Signature": key.sign(message).hex()}


BODY = b'{"request_id": "req-1", "status": "OK", "payload": {"video": {"url": "https://x/v.mp4"}}}'


def test_fal_signature_valid_with_the_right_key_second_and_padded():
    right, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delivery = fal_delivery(fal_headers(right, BODY), NOW)
    assert fal_signed_by(delivery, BODY, [jwk(other), jwk(right, padded=True)])
    assert fal_signed_by(delivery, BODY, [jwk(right, padded=False)])


def test_fal_signature_wrong_key_and_tampered_body_fail():
    right, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delivery = fal_delivery(fal_headers(right, BODY), NOW)
    assert not fal_signed_by(delivery, BODY, [jwk(other)])
    assert not fal_signed_by(delivery, BODY + b" ", [jwk(right)])
    assert not fal_signed_by(delivery, BODY, [{"kty": "RSA", "n": "x"}, {"kty": "OKP", "crv": "Ed25519", "x": "!!"}])


@pytest.mark.parametrize("skew", [301, -301])
def test_fal_timestamp_outside_the_window_is_rejected(skew):
    key = Ed25519PrivateKey.generate()
    with pytest.raises(Rejected, match="301 s away"):
        fal_delivery(fal_headers(key, BODY, ts=NOW - skew), NOW)
    assert fal_delivery(fal_headers(key, BODY, ts=NOW - 300), NOW).timestamp == NOW - 300


def test_fal_headers_missing_or_malformed_are_rejected():
    key = Ed25519PrivateKey.generate()
    headers = fal_headers(key, BODY)
    with pytest.raises(Rejected, match="missing"):
        fal_delivery({k: v for k, v in headers.items() if "Signature" not in k}, NOW)
    with pytest.raises(Rejected, match="not hex"):
        fal_delivery({**headers, "X-Fal-Webhook-Signature": "zz"}, NOW)


async def test_jwks_is_cached_and_refetched_once_when_keys_rotate():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    published = [[jwk(old)]]
    clock = [float(NOW)]

    async def fetch():
        return published[0]

    cache = JwksCache(fetch, clock=lambda: clock[0])
    assert await cache.verify(fal_delivery(fal_headers(old, BODY), NOW), BODY)
    assert await cache.verify(fal_delivery(fal_headers(old, BODY), NOW), BODY) and cache.fetches == 1
    published[0] = [jwk(new)]  # fal rotated its key
    clock[0] += 120
    assert await cache.verify(fal_delivery(fal_headers(new, BODY), NOW), BODY) and cache.fetches == 2
    forged = Ed25519PrivateKey.generate()
    for _ in range(5):  # a forger cannot make us fetch the key set per request
        assert not await cache.verify(fal_delivery(fal_headers(forged, BODY), NOW), BODY)
    assert cache.fetches == 2


def ws_headers(secret: str, body: bytes, *, wid: str = "msg_1", ts: int = NOW) -> dict[str, str]:
    return {"webhook-id": wid, "webhook-timestamp": str(ts),
            "webhook-signature": "v3," + wavespeed_signature(secret, wid, ts, body)}


def test_wavespeed_hmac():
    body = b'{"id": "task-1", "status": "completed"}'
    secret = "whsec_abc123"
    delivery = wavespeed_delivery(ws_headers(secret, body), NOW)
    assert wavespeed_signed(delivery, body, secret)
    assert not wavespeed_signed(delivery, body + b" ", secret)
    assert not wavespeed_signed(delivery, body, "whsec_other")
    rotated = {**ws_headers(secret, body), "webhook-signature": "v3,00ff v3," + wavespeed_signature(secret, "msg_1", NOW, body)}
    assert wavespeed_signed(wavespeed_delivery(rotated, NOW), body, secret)
    with pytest.raises(Rejected, match="away from now"):
        wavespeed_delivery(ws_headers(secret, body, ts=NOW - 400), NOW)
    with pytest.raises(Rejected, match="no v3 signature"):
        wavespeed_delivery({**ws_headers(secret, body), "webhook-signature": "v1,abc"}, NOW)


# -- end to end --------------------------------------------------------------------------------------

@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05, webhook_late_seconds=0.2))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


class Receiver:
    """The receiver mounted on aiohttp on a free loopback port, as ``videogen discord`` serves it."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def webhook_kit(tmp_path, sim, *, safety: float = 3600, sleep=None, port_holder: Receiver):
    """A toolkit whose public URL is the receiver it serves (the port is known only once it listens)."""
    port = free_port()
    settings = make_settings(tmp_path, sim, webhooks={
        "public_url": f"http://127.0.0.1:{port}", "safety_poll_seconds": safety,
        "fal_jwks_url": sim.fal_jwks_url, "max_skew_seconds": 300})
    kit = await Toolkit.open(settings, **({"sleep": sleep} if sleep else {}))
    port_holder.runner = web.AppRunner(aiohttp_app(kit.webhooks))
    await port_holder.runner.setup()
    await web.TCPSite(port_holder.runner, "127.0.0.1", port).start()
    port_holder.url = f"http://127.0.0.1:{port}"
    return kit


async def generate(kit, tool, args):
    return await asyncio.wait_for(kit.generate(ALICE, tool, args), 60)  # a guard, not a timing assertion


@pytest.mark.parametrize("tool, args", [
    ("hunyuan_video_image_to_video", {"prompt": "a lighthouse", "image_url": IMAGE}),
    ("wavespeed_hunyuan_video_i2v", {"prompt": "a lighthouse", "image": IMAGE}),
])
async def test_a_callback_wakes_the_tracker_and_polling_fetches(tmp_path, sim, tool, args):
    receiver = Receiver()
    kit = await webhook_kit(tmp_path, sim, port_holder=receiver)
    try:
        job = await generate(kit, tool, args)
        assert job.state is JobState.SUCCEEDED and job.webhook and job.woken_at is not None
        [sent] = sim.core.callbacks.sent
        assert sent.status == 200 and sent.url == f"{kit.settings.webhooks.public_url}/webhooks/{job.provider}"
        provider = job.provider
        polls = sim.stats.routes.get(f"{provider}.status" if provider == "fal" else "wavespeed.prediction", 0)
        # fal: one status poll (COMPLETED) after the wake; WaveSpeed: its status and result are one GET each.
        assert polls == (1 if provider == "fal" else 2), sim.stats.routes
    finally:
        await kit.close()
        await receiver.stop()


async def test_without_public_url_no_callback_is_asked_for(tmp_path, sim):
    async with await Toolkit.open(make_settings(tmp_path, sim)) as kit:
        job = await generate(kit, "hunyuan_video_image_to_video", {"prompt": "x", "image_url": IMAGE})
        assert job.state is JobState.SUCCEEDED and not job.webhook
        assert [j.webhook for j in sim.core.jobs.values()] == [None] and not sim.core.callbacks.sent


@pytest.mark.parametrize("mode, status", [("lost", None), ("bad_signature", 401), ("stale", 401),
                                          ("tampered", 401)])
async def test_a_lost_or_refused_callback_is_finished_by_the_safety_poll(tmp_path, sim, mode, status):
    naps = []

    async def sleep(seconds):  # the engine's clock: instant, but every nap is recorded
        naps.append(seconds)
        await asyncio.sleep(0.01)

    receiver = Receiver()
    kit = await webhook_kit(tmp_path, sim, safety=45, sleep=sleep, port_holder=receiver)
    try:
        job = await generate(kit, "hunyuan_video_image_to_video",
                             {"prompt": f"x [sim:webhook={mode}]", "image_url": IMAGE})
        assert job.state is JobState.SUCCEEDED and job.woken_at is None
        assert 45 in naps, "the safety poll ([webhooks] safety_poll_seconds), not a callback, finished it"
        await asyncio.sleep(0.3)
        assert [s.status for s in sim.core.callbacks.sent] == ([] if status is None else [status])
    finally:
        await kit.close()
        await receiver.stop()


async def test_duplicates_and_replays(tmp_path, sim):
    receiver = Receiver()
    kit = await webhook_kit(tmp_path, sim, port_holder=receiver)
    try:
        await generate(kit, "hunyuan_video_image_to_video", {"prompt": "x [sim:webhook=duplicate]", "image_url": IMAGE})
        await generate(kit, "wavespeed_hunyuan_video_i2v", {"prompt": "x [sim:webhook=replay]", "image": IMAGE})
        for _ in range(100):
            if len(sim.core.callbacks.sent) == 4:
                break
            await asyncio.sleep(0.02)
        statuses = {(s.provider, s.mode): [] for s in sim.core.callbacks.sent}
        for s in sim.core.callbacks.sent:
            statuses[(s.provider, s.mode)].append(s.status)
        assert statuses == {("fal", "duplicate"): [200, 200], ("wavespeed", "replay"): [200, 409]}
        woken = await kit.db.fetchall("SELECT woken_at FROM jobs")
        assert all(r[0] is not None for r in woken), "each job woken once; the duplicate and the replay changed nothing"
    finally:
        await kit.close()
        await receiver.stop()


async def test_a_late_callback_for_a_finished_job_changes_nothing(tmp_path, sim):
    naps = []

    async def sleep(seconds):
        naps.append(seconds)
        await asyncio.sleep(0.01)

    receiver = Receiver()
    kit = await webhook_kit(tmp_path, sim, safety=60, sleep=sleep, port_holder=receiver)
    try:
        job = await generate(kit, "hunyuan_video_image_to_video", {"prompt": "x [sim:webhook=late]", "image_url": IMAGE})
        assert job.state is JobState.SUCCEEDED and job.woken_at is None  # the safety poll was first
        for _ in range(100):
            if sim.core.callbacks.sent:
                break
            await asyncio.sleep(0.02)
        assert sim.core.callbacks.sent[0].status == 200
        assert (await kit.get_job(ALICE, job.id)).woken_at is None
    finally:
        await kit.close()
        await receiver.stop()


async def test_forged_and_malformed_deliveries_are_refused(tmp_path, sim):
    receiver = Receiver()
    kit = await webhook_kit(tmp_path, sim, port_holder=receiver)
    try:
        async with httpx.AsyncClient() as client:
            url = f"{receiver.url}/webhooks"
            forged = Ed25519PrivateKey.generate()
            body = json.dumps({"request_id": "nope"}).encode()
            now = int(time.time())
            assert (await client.post(f"{url}/fal", content=body,
                                      headers=fal_headers(forged, body, rid="nope", ts=now))).status_code == 401
            assert (await client.post(f"{url}/fal", content=body)).status_code == 401
            assert (await client.post(f"{url}/other", content=body)).status_code == 404
            key = sim.core.callbacks.fal_key  # a real signature over a body naming another request
            other = json.dumps({"request_id": "someone-else"}).encode()
            assert (await client.post(f"{url}/fal", content=other,
                                      headers=fal_headers(key, other, rid="nope", ts=now))).status_code == 400
            unknown = json.dumps({"request_id": "nope"}).encode()
            answer = await client.post(f"{url}/fal", content=unknown, headers=fal_headers(key, unknown, rid="nope", ts=now))
            assert answer.status_code == 200 and answer.json()["outcome"] == "unknown request"
            secret = sim.core.callbacks.wavespeed_secret
            ws = json.dumps({"id": "t"}).encode()
            assert (await client.post(f"{url}/wavespeed", content=ws,
                                      headers=ws_headers("whsec_forged", ws, ts=now))).status_code == 401
            assert (await client.post(f"{url}/wavespeed", content=b"[]",
                                      headers=ws_headers(secret, b"[]", ts=now))).status_code == 400
    finally:
        await kit.close()
        await receiver.stop()


async def test_web_and_mcp_http_serve_the_route_outside_sign_in(tmp_path, sim):
    from agent_tools.mcp_server.server import http_app
    from agent_tools.web.app import create_app

    async with await Toolkit.open(make_settings(tmp_path, sim, webhooks={
            "public_url": "https://hooks.example.com", "fal_jwks_url": sim.fal_jwks_url})) as kit:
        for name, app in (("web", create_app(kit, secret=b"s" * 32)), ("mcp", http_app(kit))):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
                key = sim.core.callbacks.fal_key
                body = json.dumps({"request_id": name}).encode()
                headers = fal_headers(key, body, rid=name, ts=int(time.time()))
                answer = await client.post("/webhooks/fal", content=body, headers=headers)
                assert answer.status_code == 200 and answer.json()["outcome"] == "unknown request", name
                replayed = await client.post("/webhooks/fal", content=body, headers=headers)
                assert replayed.status_code == 409 and "replay" in replayed.json()["error"]
                assert (await client.post("/webhooks/fal", content=body)).status_code == 401


# -- a callback that reaches another process ---------------------------------------------------------

async def test_a_callback_received_by_another_process_wakes_the_owner(tmp_path, database_url):
    """Two processes on one database (replicas behind one public URL); the callback lands on the one
    that does not own the job. The owner's safety poll is an hour, so it can only finish because it
    was told: PostgreSQL's NOTIFY (its row watch is off), or on SQLite its row watch. Its lease
    (0.5 s) is kept meanwhile: the other process, resuming all the while, takes nothing over."""
    postgres = is_database_url(database_url)
    frozen = [0.0]  # the simulated job stays queued until the test moves this clock
    simulator = Simulator(SimSettings(queue_seconds=1, run_seconds=1), clock=lambda: frozen[0])
    await simulator.start(host="127.0.0.1", port=0)
    receiver = Receiver()
    port = free_port()
    settings = make_settings(tmp_path, simulator, database_url, webhooks={
        "public_url": f"http://127.0.0.1:{port}", "safety_poll_seconds": 3600, "fal_jwks_url": simulator.fal_jwks_url})
    owner = await Toolkit.open(settings, lease_seconds=0.5, watch_seconds=3600 if postgres else 0.05)
    other = await Toolkit.open(settings)
    try:
        receiver.runner = web.AppRunner(aiohttp_app(other.webhooks))  # only the other process listens
        await receiver.runner.setup()
        await web.TCPSite(receiver.runner, "127.0.0.1", port).start()
        job = await owner.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": "x", "image_url": IMAGE}, wait=0)
        assert job.webhook and job.owner == owner.engine.owner
        if postgres:
            await asyncio.wait_for(owner.engine.hearing.wait(), 30)
        for _ in range(15):  # three leases go by while the owner naps
            assert await other.resume() == []
            await asyncio.sleep(0.1)
        frozen[0] = 100.0  # the job ends at the provider, which calls back
        done = await asyncio.wait_for(owner.wait_for_job(ALICE, job.id), 60)  # a guard, not a timing assertion
        assert done.state is JobState.SUCCEEDED and done.woken_at is not None and done.owner == owner.engine.owner
        [sent] = simulator.core.callbacks.sent
        assert sent.status == 200 and sent.provider == "fal"
        assert simulator.stats.routes.get("fal.status") == 1, "one status poll, after the wake; no safety poll"
    finally:
        await owner.close()
        await other.close()
        await receiver.stop()
        await simulator.stop()


async def test_a_cancel_made_by_another_process_reaches_the_owner_napping_until_its_callback(tmp_path, database_url):
    """The owner of a webhook job polls once an hour; another process cancels the job. The owner's
    tracker ends promptly with the job cancelled — told by NOTIFY (PostgreSQL) or its row watch
    (SQLite) — instead of an hour later."""
    postgres = is_database_url(database_url)
    frozen = [0.0]
    simulator = Simulator(SimSettings(queue_seconds=1, run_seconds=1), clock=lambda: frozen[0])
    await simulator.start(host="127.0.0.1", port=0)
    settings = make_settings(tmp_path, simulator, database_url, webhooks={
        "public_url": f"http://127.0.0.1:{free_port()}", "safety_poll_seconds": 3600,
        "fal_jwks_url": simulator.fal_jwks_url})
    owner = await Toolkit.open(settings, watch_seconds=3600 if postgres else 0.05)
    other = await Toolkit.open(settings)
    try:
        job = await owner.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": "x", "image_url": IMAGE}, wait=0)
        tracker = owner.engine.track(job.id)
        if postgres:
            await asyncio.wait_for(owner.engine.hearing.wait(), 30)
        while job.id not in owner.engine.napping:  # cancel while the owner naps, not before
            await asyncio.sleep(0.01)
        await other.cancel_job(ALICE, job.id)  # fal takes the request; the owner learns it by polling
        done = await asyncio.wait_for(tracker, 60)  # a guard: without the nudge it naps for an hour
        assert done.state is JobState.CANCELLED and done.actual_micros == 0
    finally:
        await owner.close()
        await other.close()
        await simulator.stop()
