"""WaveSpeedAdapter against purpose-built HTTP servers on 127.0.0.1 (docs/providers.md §2).

The submit tests count requests server-side: a submit that may have reached WaveSpeed must reach it
exactly once, whatever went wrong after.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_tools.providers.base import CancelOutcome, RemoteState, RequestRef
from agent_tools.providers.errors import (AuthenticationFailed, Cancelled, ContentPolicy, InvalidInput,
                                          MediaDownloadFailed, OutOfBalance, RateLimited, RequestNotFound,
                                          SUBMIT_OUTCOME_UNKNOWN, Transient, UnknownProviderError)
from agent_tools.providers.http import RetryPolicy
from agent_tools.providers.wavespeed import WaveSpeedAdapter
from test_providers import FakeServer, Sleeps, closed_port, reply, reset, server, sleeps, slow  # noqa: F401

KEY = "ws-test-key-0123456789abcdef"
MODEL = "wavespeed-ai/hunyuan-video/i2v"
TASK = "0a1b2c3d4e5f"
SUBMIT = f"/api/v3/{MODEL}"
RESULT = f"/api/v3/predictions/{TASK}/result"


def envelope(data: Any, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def prediction(status: str, **fields: Any) -> dict[str, Any]:
    return envelope({"id": TASK, "model": MODEL, "outputs": [], "status": status, "error": "",
                     "has_nsfw_contents": [], "timings": {"inference": 0}, **fields})


@pytest.fixture
async def ws(server: FakeServer, sleeps: Sleeps) -> AsyncIterator[WaveSpeedAdapter]:
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.04, rng=lambda: 0.5, sleep=sleeps)
    adapter = WaveSpeedAdapter(KEY, base_url=server.url, retry=policy)
    yield adapter
    await adapter.aclose()


def ref_for(server: FakeServer) -> RequestRef:
    return RequestRef("wavespeed", MODEL, TASK, f"{server.url}{RESULT}", f"{server.url}{RESULT}")


# -- submit -----------------------------------------------------------------------------------------

async def test_submit_uses_bearer_auth_and_reads_the_task_id(server, ws) -> None:
    server.on("POST", SUBMIT, reply(200, prediction("created", urls={"get": f"{server.url}{RESULT}"})))
    payload = {"image": "https://x/y.png", "prompt": "waves", "duration": 5, "size": "1280*720"}
    ref = await ws.submit(MODEL, payload)
    [hit] = server.hits("POST", SUBMIT)
    assert hit.headers["Authorization"] == f"Bearer {KEY}" and json.loads(hit.body) == payload
    assert ref == RequestRef("wavespeed", MODEL, TASK, f"{server.url}{RESULT}", f"{server.url}{RESULT}", None)


async def test_submit_without_urls_builds_the_result_url(server, ws) -> None:
    body = prediction("created")
    server.on("POST", SUBMIT, reply(200, body))
    assert (await ws.submit(MODEL, {})).status_url == f"{server.url}{RESULT}"


async def test_submit_checks_the_envelope_code_not_only_http(server, ws) -> None:
    server.on("POST", SUBMIT, reply(200, {"code": 400, "message": "prompt is required", "data": None}))
    with pytest.raises(InvalidInput, match="prompt is required"):
        await ws.submit(MODEL, {})


async def test_submit_without_a_task_id_may_have_created_one(server, ws) -> None:
    server.on("POST", SUBMIT, reply(200, envelope({"status": "created"})))
    with pytest.raises(UnknownProviderError) as info:
        await ws.submit(MODEL, {})
    assert info.value.error_type == SUBMIT_OUTCOME_UNKNOWN


@pytest.mark.parametrize("answer", [reply(500, {"code": 500, "message": "internal"}), reply(502, text="Bad Gateway"),
                                    reset])
async def test_submit_that_may_have_arrived_is_never_repeated(server, ws, sleeps, answer) -> None:
    server.on("POST", SUBMIT, answer, reply(200, prediction("created")))
    with pytest.raises(Transient, match="may have created the task") as info:
        await ws.submit(MODEL, {"prompt": "x"})
    assert len(server.hits("POST", SUBMIT)) == 1 and sleeps == []
    assert (info.value.retryable, info.value.error_type) == (False, SUBMIT_OUTCOME_UNKNOWN)


async def test_submit_read_timeout_is_not_repeated(server, sleeps) -> None:
    server.on("POST", SUBMIT, slow(0.3))
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.1)) as client:
        adapter = WaveSpeedAdapter(KEY, base_url=server.url, client=client, retry=RetryPolicy(sleep=sleeps))
        with pytest.raises(Transient, match="read timed out.*may have created the task") as info:
            await adapter.submit(MODEL, {"prompt": "x"})
    assert len(server.hits("POST", SUBMIT)) == 1 and sleeps == []
    assert info.value.error_type == SUBMIT_OUTCOME_UNKNOWN


async def test_submit_is_repeated_after_429(server, ws) -> None:
    server.on("POST", SUBMIT, reply(429, {"code": 429, "message": "rate limit exceeded"}, {"Retry-After": "0"}),
              reply(200, prediction("created")))
    assert (await ws.submit(MODEL, {})).request_id == TASK
    assert len(server.hits("POST", SUBMIT)) == 2


async def test_submit_429_until_out_of_attempts_is_rate_limited(server, ws) -> None:
    server.on("POST", SUBMIT, reply(429, {"code": 429, "message": "rate limit exceeded"}))
    with pytest.raises(RateLimited) as info:
        await ws.submit(MODEL, {})
    assert len(server.hits("POST", SUBMIT)) == 4 and info.value.retryable
    assert info.value.error_type != SUBMIT_OUTCOME_UNKNOWN


async def test_submit_is_repeated_on_connect_errors(sleeps) -> None:
    adapter = WaveSpeedAdapter(KEY, base_url=f"http://127.0.0.1:{await closed_port()}",
                               retry=RetryPolicy(max_attempts=3, base_delay=0.01, sleep=sleeps))
    with pytest.raises(Transient, match="could not connect") as info:
        await adapter.submit(MODEL, {})
    await adapter.aclose()
    assert len(sleeps) == 2 and info.value.error_type != SUBMIT_OUTCOME_UNKNOWN


async def test_submit_to_an_unknown_model_is_invalid_input(server, ws) -> None:
    server.on("POST", SUBMIT, reply(404, {"code": 404, "message": "model not found"}))
    with pytest.raises(InvalidInput, match="model"):
        await ws.submit(MODEL, {})


# -- status -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, state", [
    ("created", RemoteState.QUEUED), ("processing", RemoteState.RUNNING), ("completed", RemoteState.COMPLETED),
    ("failed", RemoteState.COMPLETED), ("cancelled", RemoteState.COMPLETED), ("timeout", RemoteState.COMPLETED),
    ("deleted", RemoteState.COMPLETED), ("warming-up", RemoteState.RUNNING),
])
async def test_status_mapping(server, ws, status, state) -> None:
    server.on("GET", RESULT, reply(200, prediction(status)))
    assert (await ws.status(ref_for(server))).state == state


async def test_failed_status_carries_the_error(server, ws) -> None:
    server.on("GET", RESULT, reply(200, prediction("failed", code=1402, error="Failed to download image")))
    update = await ws.status(ref_for(server))
    assert (update.error, update.error_type) == ("Failed to download image", "1402")


async def test_status_retries_server_errors_and_resets(server, ws, sleeps) -> None:
    server.on("GET", RESULT, reply(502, text="Bad Gateway"), reset, reply(503, {"code": 503, "message": "busy"}),
              reply(200, prediction("processing")))
    assert (await ws.status(ref_for(server))).state == RemoteState.RUNNING
    assert len(server.hits("GET", RESULT)) == 4 and len(sleeps) == 3


async def test_status_of_an_id_only_ref_uses_the_result_url(server, ws) -> None:
    server.on("GET", RESULT, reply(200, prediction("created")))
    assert (await ws.status(RequestRef("wavespeed", MODEL, TASK))).state == RemoteState.QUEUED


# -- result -----------------------------------------------------------------------------------------

async def test_result_outputs_and_nsfw_flags(server, ws) -> None:
    server.on("GET", RESULT, reply(200, prediction("completed", outputs=["https://cdn.example/v.mp4"],
                                                   has_nsfw_contents=[False], timings={"inference": 51234})))
    result = await ws.result(ref_for(server))
    assert [o.url for o in result.outputs] == ["https://cdn.example/v.mp4"]
    assert result.extra["has_nsfw_contents"] == [False] and result.extra["timings"] == {"inference": 51234}


@pytest.mark.parametrize("status, code, error", [
    ("failed", 1200, ContentPolicy), ("failed", 1400, InvalidInput), ("failed", 1401, InvalidInput),
    ("failed", 1402, MediaDownloadFailed), ("failed", 1403, Transient), ("failed", 1405, Transient),
    ("failed", 5000, Transient), ("failed", 5003, Transient), ("failed", 5004, Transient),
    ("failed", 1406, UnknownProviderError), ("failed", None, UnknownProviderError),
    ("timeout", None, Transient), ("cancelled", None, Cancelled), ("deleted", None, RequestNotFound),
])
async def test_failed_tasks_map_by_code(server, ws, status, code, error) -> None:
    fields = {"error": "Error message here"} | ({"code": code} if code is not None else {})
    server.on("GET", RESULT, reply(200, prediction(status, **fields)))
    with pytest.raises(error) as info:
        await ws.result(ref_for(server))
    assert type(info.value) is error and info.value.retryable is False
    assert "Error message here" in info.value.message


async def test_content_policy_message_is_actionable(server, ws) -> None:
    server.on("GET", RESULT, reply(200, prediction("failed", code=1200, error="Content flagged")))
    with pytest.raises(ContentPolicy, match="content checker rejected this prompt or image; rephrase"):
        await ws.result(ref_for(server))


async def test_result_before_completion_is_not_ready(server, ws) -> None:
    server.on("GET", RESULT, reply(200, prediction("processing")))
    with pytest.raises(Transient) as info:
        await ws.result(ref_for(server))
    assert info.value.error_type == "not_ready" and info.value.retryable


@pytest.mark.parametrize("status, body, error", [
    (401, {"code": 401, "message": "Unauthorized"}, AuthenticationFailed),
    (403, {"code": 403, "message": "account suspended"}, AuthenticationFailed),
    (402, {"code": 402, "message": "payment required"}, OutOfBalance),
    (400, {"code": 400, "message": "insufficient balance"}, OutOfBalance),
    (403, {"code": 403, "message": "Insufficient credits, please top up"}, OutOfBalance),
    (429, {"code": 429, "message": "rate limit exceeded"}, RateLimited),
    (404, {"code": 404, "message": "prediction not found"}, RequestNotFound),
    (200, {"code": 401, "message": "invalid key", "data": None}, AuthenticationFailed),
    (200, {"unexpected": True}, UnknownProviderError),
])
async def test_http_and_envelope_errors(server, ws, status, body, error) -> None:
    server.on("GET", RESULT, reply(status, body))
    with pytest.raises(error) as info:
        await ws.result(ref_for(server))
    assert type(info.value) is error


async def test_cancel_is_unsupported_without_a_request(server, ws) -> None:
    assert await ws.cancel(ref_for(server)) == CancelOutcome.UNSUPPORTED
    assert server.seen == []


# -- upload -----------------------------------------------------------------------------------------

async def test_upload_ticket_then_put_with_exactly_the_ticket_headers(server, ws, tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(b"\x89PNG" + b"p" * 100)
    server.on("POST", "/api/v3/media/uploads", reply(200, envelope({
        "type": "image", "download_url": "https://cdn.example/cat.png", "filename": "cat.png", "size": 104,
        "upload": {"method": "PUT", "url": f"{server.url}/_upload/tok?sig=abc",
                   "headers": {"Content-Type": "image/png", "If-None-Match": "*"}}})))
    server.on("PUT", "/_upload/tok", reply(200, {}))
    assert await ws.upload(path, "image/png") == "https://cdn.example/cat.png"
    [ticket] = server.hits("POST", "/api/v3/media/uploads")
    assert json.loads(ticket.body) == {"filename": "cat.png", "size": 104, "content_type": "image/png"}
    assert ticket.headers["Authorization"] == f"Bearer {KEY}"
    [put] = server.hits("PUT", "/_upload/tok")
    assert put.query == "sig=abc" and put.body == path.read_bytes()
    assert "Authorization" not in put.headers
    assert put.headers["Content-Type"] == "image/png" and put.headers["If-None-Match"] == "*"


@pytest.mark.parametrize("missing", [404, 405])
async def test_upload_falls_back_to_the_binary_endpoint(server, ws, tmp_path: Path, missing: int) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 50)
    server.on("POST", "/api/v3/media/uploads", reply(missing, {"code": missing, "message": "no"}))

    server.on("POST", "/api/v3/media/upload/binary",
              reply(200, envelope({"type": "video", "download_url": "https://cdn.example/clip.mp4"})))
    assert await ws.upload(path, "video/mp4") == "https://cdn.example/clip.mp4"
    [hit] = server.hits("POST", "/api/v3/media/upload/binary")
    assert hit.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="clip.mp4"' in hit.body and b"Content-Type: video/mp4" in hit.body
    assert path.read_bytes() in hit.body
    assert hit.headers["Authorization"] == f"Bearer {KEY}"


async def test_upload_too_large_is_invalid_input(server, ws, tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    path.write_bytes(b"v" * 10)
    server.on("POST", "/api/v3/media/uploads", reply(413, {"code": 413, "message": "file too large"}))
    with pytest.raises(InvalidInput, match="too large"):
        await ws.upload(path, "video/mp4")
