"""FalAdapter against purpose-built HTTP servers on 127.0.0.1: one scripted edge case per test.

Each server answers exactly what the protocol notes (docs/providers.md §1) say fal answers, and
counts what it received, so retry rules are checked server-side rather than by mocking.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_tools.providers.base import CancelOutcome, RemoteState, RequestRef
from agent_tools.providers.errors import (AuthenticationFailed, Cancelled, ContentPolicy, ErrorKind, InvalidInput,
                                          MediaDownloadFailed, OutOfBalance, RateLimited, RequestNotFound,
                                          SUBMIT_OUTCOME_UNKNOWN, Transient, UnknownProviderError)
from agent_tools.providers.fal import AppId, FalAdapter, app_base
from agent_tools.providers.http import RetryPolicy
from test_providers import FakeServer, Sleeps, closed_port, reply, reset, server, sleeps, slow  # noqa: F401

KEY = "fal-key-id-1234:fal-secret-abcdef987654"
RID = "80e732af-660e-45cd-bd63-580e4f2a94cc"
ENDPOINT = "fal-ai/pika/v2.2/text-to-video"

@pytest.fixture
async def fal(server: FakeServer, sleeps: Sleeps) -> AsyncIterator[FalAdapter]:
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.04, result_attempts=2,
                         rng=lambda: 0.5, sleep=sleeps)
    adapter = FalAdapter(KEY, queue_url=server.url, rest_url=server.url + "/rest", retry=policy,
                         data_uri_max_bytes=64)
    yield adapter
    await adapter.aclose()


def submitted(server: FakeServer, rid: str = RID, base: str = "fal-ai/pika") -> dict[str, Any]:
    root = f"{server.url}/{base}/requests/{rid}"
    return {"status": "IN_QUEUE", "request_id": rid, "response_url": root, "status_url": root + "/status",
            "cancel_url": root + "/cancel", "queue_position": 0}


def ref_for(server: FakeServer, base: str = "fal-ai/pika") -> RequestRef:
    root = f"{server.url}/{base}/requests/{RID}"
    return RequestRef("fal", ENDPOINT, RID, root + "/status", root, root + "/cancel")


STATUS = f"/fal-ai/pika/requests/{RID}/status"
RESULT = f"/fal-ai/pika/requests/{RID}"
CANCEL = f"/fal-ai/pika/requests/{RID}/cancel"
VIDEO = {"video": {"url": "https://cdn.example/x.mp4", "content_type": "video/mp4", "file_name": "x.mp4",
                   "file_size": 1234}, "seed": 42, "video_id": "vid_1"}


# -- endpoint ids -----------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint, base", [
    ("fal-ai/pika/v2.2/text-to-video", "fal-ai/pika"),
    ("fal-ai/veo3.1/fast/first-last-frame-to-video", "fal-ai/veo3.1"),
    ("fal-ai/veo3/fast", "fal-ai/veo3"),
    ("fal-ai/sora-2/text-to-video/pro", "fal-ai/sora-2"),
    ("fal-ai/minimax/hailuo-02/standard/image-to-video", "fal-ai/minimax"),
    ("fal-ai/hunyuan-video-image-to-video", "fal-ai/hunyuan-video-image-to-video"),
    ("workflows/someone/my-flow/run", "workflows/someone/my-flow"),
    ("comfy/someone/graph", "comfy/someone/graph"),
    ("123-myapp", "123/myapp"),
])
def test_app_base_drops_the_sub_path_but_keeps_namespaces(endpoint: str, base: str) -> None:
    assert app_base(endpoint) == base


@pytest.mark.parametrize("bad", ["pika", "fal-ai", "workflows/x", "fal-ai/../x", "fal-ai/pika?x=1", "a//b", ""])
def test_malformed_endpoint_ids_are_invalid_input(bad: str) -> None:
    with pytest.raises(InvalidInput):
        AppId.parse(bad)


# -- submit -----------------------------------------------------------------------------------------

async def test_submit_posts_the_full_id_with_key_auth_and_keeps_returned_urls(server, fal) -> None:
    server.on("POST", f"/{ENDPOINT}", reply(200, submitted(server)))
    payload = {"prompt": "a red fox", "duration": "5", "nested": {"x": [1, 2]}}
    ref = await fal.submit(ENDPOINT, payload)
    [hit] = server.hits("POST", f"/{ENDPOINT}")
    assert hit.headers["Authorization"] == f"Key {KEY}"
    assert json.loads(hit.body) == payload
    assert ref == RequestRef("fal", ENDPOINT, RID, f"{server.url}{STATUS}", f"{server.url}{RESULT}",
                             f"{server.url}{CANCEL}")


async def test_submit_reply_without_the_urls_fails_clearly(server, fal) -> None:
    body = submitted(server)
    del body["cancel_url"]
    server.on("POST", f"/{ENDPOINT}", reply(200, body))
    with pytest.raises(UnknownProviderError, match="cancel_url") as info:
        await fal.submit(ENDPOINT, {"prompt": "x"})
    assert RID in info.value.message  # so an operator can find the orphan


async def test_submit_is_not_repeated_on_a_server_error(server, fal, sleeps) -> None:
    server.on("POST", f"/{ENDPOINT}", reply(503, {"detail": "busy", "error_type": "runner_scheduling_failure"}))
    with pytest.raises(Transient, match="may have queued") as info:
        await fal.submit(ENDPOINT, {"prompt": "x"})
    assert len(server.hits("POST", f"/{ENDPOINT}")) == 1 and sleeps == []
    assert (info.value.error_type, info.value.retryable) == (SUBMIT_OUTCOME_UNKNOWN, False)


async def test_submit_is_repeated_after_429_and_honours_retry_after(server, fal, sleeps) -> None:
    server.on("POST", f"/{ENDPOINT}", reply(429, {"detail": "slow down"}, {"Retry-After": "0.03"}),
              reply(200, submitted(server)))
    ref = await fal.submit(ENDPOINT, {"prompt": "x"})
    assert ref.request_id == RID
    assert len(server.hits("POST", f"/{ENDPOINT}")) == 2
    assert sleeps == [pytest.approx(0.03)]  # Retry-After beat the 0.0075 s backoff


async def test_submit_after_a_dropped_connection_is_not_repeated(server, fal, sleeps) -> None:
    server.on("POST", f"/{ENDPOINT}", reset)
    with pytest.raises(Transient, match="may have queued") as info:
        await fal.submit(ENDPOINT, {"prompt": "x"})
    assert info.value.retryable is False
    assert len(server.hits("POST", f"/{ENDPOINT}")) == 1 and sleeps == []


async def test_submit_read_timeout_is_not_repeated(server, sleeps) -> None:
    server.on("POST", f"/{ENDPOINT}", slow(0.3))
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.1)) as client:
        adapter = FalAdapter(KEY, queue_url=server.url, client=client, retry=RetryPolicy(sleep=sleeps))
        with pytest.raises(Transient, match="read timed out") as info:
            await adapter.submit(ENDPOINT, {"prompt": "x"})
    assert len(server.hits("POST", f"/{ENDPOINT}")) == 1 and sleeps == []
    assert info.value.error_type == SUBMIT_OUTCOME_UNKNOWN


async def test_gateway_html_is_reduced_to_words(server, fal) -> None:
    server.on("GET", RESULT, reply(502, text="<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"))
    with pytest.raises(Transient) as info:
        await fal.result(ref_for(server))
    assert "502 Bad Gateway nginx" in info.value.message and "<" not in info.value.message


async def test_submit_is_repeated_on_connect_errors(sleeps) -> None:
    closed = await closed_port()
    adapter = FalAdapter(KEY, queue_url=f"http://127.0.0.1:{closed}",
                         retry=RetryPolicy(max_attempts=3, base_delay=0.01, sleep=sleeps))
    with pytest.raises(Transient, match="could not connect") as info:
        await adapter.submit(ENDPOINT, {"prompt": "x"})
    await adapter.aclose()
    assert len(sleeps) == 2 and info.value.retryable  # nothing was sent, so nothing may exist
    assert info.value.error_type != SUBMIT_OUTCOME_UNKNOWN


# -- status -----------------------------------------------------------------------------------------

async def test_status_reads_202_queue_then_progress_logs_then_200_completed(server, fal) -> None:
    server.on("GET", STATUS,
              reply(202, {"status": "IN_QUEUE", "request_id": RID, "queue_position": 3, "logs": None}),
              reply(202, {"status": "IN_PROGRESS", "request_id": RID,
                          "logs": [{"message": "step 1/30", "level": "INFO"}, {"message": "step 2/30"}]}),
              reply(200, {"status": "COMPLETED", "request_id": RID, "logs": None, "metrics": {"inference_time": 4}}))
    ref = ref_for(server)
    queued, running, done = [await fal.status(ref) for _ in range(3)]
    assert (queued.state, queued.queue_position) == (RemoteState.QUEUED, 3)
    assert (running.state, running.logs) == (RemoteState.RUNNING, ("step 1/30", "step 2/30"))
    assert (done.state, done.error) == (RemoteState.COMPLETED, None)
    assert all(hit.query == "logs=1" for hit in server.hits("GET", STATUS))


async def test_completed_status_carries_the_error(server, fal) -> None:
    server.on("GET", STATUS, reply(200, {"status": "COMPLETED", "logs": None, "error": "Request timed out",
                                         "error_type": "request_timeout"}))
    update = await fal.status(ref_for(server))
    assert (update.state, update.error, update.error_type) == (RemoteState.COMPLETED, "Request timed out",
                                                               "request_timeout")


async def test_status_retries_503_and_429_then_succeeds(server, fal, sleeps) -> None:
    server.on("GET", STATUS, reply(503, text="<html>nginx</html>"), reply(429, {"detail": "rate"}),
              reply(202, {"status": "IN_PROGRESS", "logs": []}))
    assert (await fal.status(ref_for(server))).state == RemoteState.RUNNING
    assert len(server.hits("GET", STATUS)) == 3
    assert sleeps == [pytest.approx(0.0075), pytest.approx(0.015)]  # exponential with equal jitter


async def test_status_gives_up_after_max_attempts(server, fal, sleeps) -> None:
    server.on("GET", STATUS, reply(502, text="bad gateway"))
    with pytest.raises(Transient) as info:
        await fal.status(ref_for(server))
    assert len(server.hits("GET", STATUS)) == 4 and info.value.retryable


async def test_status_retries_a_dropped_connection(server, fal) -> None:
    server.on("GET", STATUS, reset, reply(202, {"status": "IN_QUEUE", "queue_position": 0}))
    assert (await fal.status(ref_for(server))).queue_position == 0
    assert len(server.hits("GET", STATUS)) == 2


async def test_resuming_with_only_an_id_rebuilds_owner_app_urls(server, fal) -> None:
    server.on("GET", STATUS, reply(202, {"status": "IN_QUEUE", "queue_position": 1}))
    server.on("GET", RESULT, reply(200, VIDEO))
    server.on("PUT", CANCEL, reply(400, {"status": "ALREADY_COMPLETED"}))
    bare = RequestRef("fal", ENDPOINT, RID)
    assert (await fal.status(bare)).queue_position == 1
    assert (await fal.result(bare)).outputs[0].url == VIDEO["video"]["url"]
    assert await fal.cancel(bare) == CancelOutcome.ALREADY_COMPLETED
    assert [s.path for s in server.seen] == [STATUS, RESULT, CANCEL]  # no sub-path, slashes literal


async def test_namespaced_ids_keep_their_namespace_when_rebuilt(server, fal) -> None:
    path = f"/workflows/someone/my-flow/requests/{RID}/status"
    server.on("GET", path, reply(202, {"status": "IN_QUEUE", "queue_position": 0}))
    await fal.status(RequestRef("fal", "workflows/someone/my-flow/run", RID))
    assert server.hits("GET", path)


async def test_urls_on_a_foreign_origin_are_not_sent_the_key(server, fal) -> None:
    other = FakeServer()
    await other.start()
    try:
        other.on("GET", STATUS, reply(202, {"status": "IN_QUEUE", "queue_position": 0}))
        server.on("GET", STATUS, reply(202, {"status": "IN_QUEUE", "queue_position": 5}))
        ref = RequestRef("fal", ENDPOINT, RID, status_url=f"{other.url}{STATUS}")
        assert (await fal.status(ref)).queue_position == 5
        assert other.seen == []
    finally:
        await other.stop()


# -- result -----------------------------------------------------------------------------------------

async def test_result_video_with_seed_and_extras(server, fal) -> None:
    server.on("GET", RESULT, reply(200, VIDEO))
    result = await fal.result(ref_for(server))
    [video] = result.outputs
    assert (video.url, video.content_type, video.file_size) == ("https://cdn.example/x.mp4", "video/mp4", 1234)
    assert result.seed == 42 and result.extra == {"video_id": "vid_1"}


async def test_result_images_keep_their_size(server, fal) -> None:
    server.on("GET", RESULT, reply(200, {"images": [
        {"url": "https://cdn.example/a.png", "width": 1024, "height": 768, "content_type": "image/png"},
        {"url": "https://cdn.example/b.png", "width": 512, "height": 512}], "seed": 7}))
    result = await fal.result(ref_for(server))
    assert [(o.url[-5:], o.width, o.height) for o in result.outputs] == [("a.png", 1024, 768), ("b.png", 512, 512)]


def detail(kind: str, msg: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", "prompt"], "msg": msg, "type": kind,
                        "input": {"prompt": "SECRET PROMPT TEXT"}, "ctx": {"private": "CTX VALUE"}}]}


@pytest.mark.parametrize("body, error", [
    (detail("content_policy_violation", "flagged by a content checker"), ContentPolicy),
    (detail("file_download_error", "Failed to download the file."), MediaDownloadFailed),
    (detail("image_too_large", "Image too large"), InvalidInput),
    (detail("value_error", "must be 5 or 10"), InvalidInput),
    (detail("missing", "field required"), InvalidInput),
    ({"detail": "duration must be 5 or 10"}, InvalidInput),
])
async def test_result_422_maps_by_type_and_never_echoes_input(server, fal, body, error) -> None:
    server.on("GET", RESULT, reply(422, body))
    with pytest.raises(error) as info:
        await fal.result(ref_for(server))
    text = f"{info.value} {info.value!r}"
    assert "SECRET PROMPT TEXT" not in text and "CTX VALUE" not in text
    assert info.value.status_code == 422 and not info.value.retryable
    assert len(server.hits("GET", RESULT)) == 1


async def test_content_policy_message_is_actionable(server, fal) -> None:
    server.on("GET", RESULT, reply(422, detail("content_policy_violation", "flagged")))
    with pytest.raises(ContentPolicy, match="content checker rejected this prompt or image; rephrase"):
        await fal.result(ref_for(server))


async def test_result_5xx_is_retried_a_bounded_number_of_times_then_transient(server, fal) -> None:
    server.on("GET", RESULT, reply(504, {"detail": "Request timed out", "error_type": "request_timeout"},
                                   {"X-Fal-Error-Type": "request_timeout"}))
    with pytest.raises(Transient) as info:
        await fal.result(ref_for(server))
    assert len(server.hits("GET", RESULT)) == 2  # result_attempts, not max_attempts (4)
    assert info.value.error_type == "request_timeout"


async def test_result_error_type_may_come_only_from_the_header(server, fal) -> None:
    server.on("GET", RESULT, reply(503, {"detail": "no runner"}, {"X-Fal-Error-Type": "runner_scheduling_failure"}))
    with pytest.raises(Transient) as info:
        await fal.result(ref_for(server))
    assert info.value.error_type == "runner_scheduling_failure"


async def test_result_429_is_retried_then_succeeds(server, fal) -> None:
    server.on("GET", RESULT, reply(429, {}, {"Retry-After": "0"}), reply(429, {}), reply(200, VIDEO))
    assert (await fal.result(ref_for(server))).seed == 42
    assert len(server.hits("GET", RESULT)) == 3


async def test_user_start_deadline_504_is_never_retried(server, fal, sleeps) -> None:
    timeout = reply(504, {"detail": "Request timed out", "error_type": "request_timeout"},
                    {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"})
    server.on("GET", RESULT, timeout)
    server.on("GET", STATUS, timeout)
    with pytest.raises(Transient, match="start deadline") as info:
        await fal.result(ref_for(server))
    with pytest.raises(Transient):
        await fal.status(ref_for(server))
    assert len(server.hits("GET", RESULT)) == 1 and len(server.hits("GET", STATUS)) == 1 and sleeps == []
    assert info.value.retryable is False


async def test_cancelled_request_result_is_cancelled(server, fal) -> None:
    server.on("GET", RESULT, reply(499, {"detail": "Request cancelled by client", "error_type": "client_cancelled"}))
    with pytest.raises(Cancelled) as info:
        await fal.result(ref_for(server))
    assert info.value.kind == ErrorKind.CANCELLED and info.value.error_type == "client_cancelled"


@pytest.mark.parametrize("status, body, headers, error", [
    (401, {"detail": "No user found for Key ID and Secret"}, {}, AuthenticationFailed),
    (403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"},
     {}, OutOfBalance),
    (403, {"detail": "Forbidden"}, {}, AuthenticationFailed),
    (404, {"detail": "Request not found"}, {}, RequestNotFound),
    (429, {"detail": "Too many requests"}, {"Retry-After": "120"}, RateLimited),
])
async def test_account_errors(server, fal, status, body, headers, error) -> None:
    server.on("GET", RESULT, reply(status, body, headers))
    with pytest.raises(error) as info:
        await fal.result(ref_for(server))
    assert info.value.status_code == status
    if error is RateLimited:
        # Retry-After beyond max_retry_after: not waited out here, handed to the caller instead
        assert info.value.retry_after == pytest.approx(120) and info.value.retryable
        assert len(server.hits("GET", RESULT)) == 1


async def test_result_non_json_success_is_unknown(server, fal) -> None:
    server.on("GET", RESULT, reply(200, text="<html>oops</html>"))
    with pytest.raises(UnknownProviderError):
        await fal.result(ref_for(server))


# -- cancel -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, body, outcome", [
    (200, {"status": "OK"}, CancelOutcome.CANCELLED),
    (202, {"status": "CANCELLATION_REQUESTED"}, CancelOutcome.REQUESTED),
    (400, {"status": "ALREADY_COMPLETED"}, CancelOutcome.ALREADY_COMPLETED),
    (404, {"status": "NOT_FOUND"}, CancelOutcome.NOT_FOUND),
    (404, {"detail": "Request not found"}, CancelOutcome.NOT_FOUND),
])
async def test_cancel_outcomes(server, fal, status, body, outcome) -> None:
    server.on("PUT", CANCEL, reply(status, body))
    assert await fal.cancel(ref_for(server)) == outcome
    [hit] = server.hits("PUT", CANCEL)
    assert hit.headers["Authorization"] == f"Key {KEY}"


async def test_cancel_retries_server_errors(server, fal) -> None:
    server.on("PUT", CANCEL, reply(503, {}), reply(202, {"status": "CANCELLATION_REQUESTED"}))
    assert await fal.cancel(ref_for(server)) == CancelOutcome.REQUESTED
    assert len(server.hits("PUT", CANCEL)) == 2


# -- upload -----------------------------------------------------------------------------------------

async def test_small_upload_is_a_data_uri(server, fal, tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(b"\x89PNG tiny")
    uri = await fal.upload(path, "image/png")
    assert uri == "data:image/png;base64," + base64.b64encode(b"\x89PNG tiny").decode()
    assert server.seen == []


async def test_large_upload_initiates_then_puts_without_the_key(server, fal, tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(b"x" * 1000)
    server.on("POST", "/rest/storage/upload/initiate", reply(200, {
        "upload_url": f"{server.url}/signed/abc?sig=1", "file_url": "https://cdn.example/files/abc/frame.png"}))
    server.on("PUT", "/signed/abc", reply(503, {}), reply(200, {}))
    assert await fal.upload(path, "image/png") == "https://cdn.example/files/abc/frame.png"
    [initiate] = server.hits("POST", "/rest/storage/upload/initiate")
    assert initiate.query == "storage_type=fal-cdn-v3"
    assert initiate.headers["Authorization"] == f"Key {KEY}"
    assert json.loads(initiate.body) == {"content_type": "image/png", "file_name": "frame.png"}
    puts = server.hits("PUT", "/signed/abc")
    assert len(puts) == 2  # the presigned PUT is retried like any idempotent call
    assert all("Authorization" not in p.headers and p.headers["Content-Type"] == "image/png"
               and p.body == b"x" * 1000 for p in puts)


async def test_upload_put_never_carries_a_clients_default_authorization(server, sleeps, tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"v" * 100)
    server.on("POST", "/rest/storage/upload/initiate",
              reply(200, {"upload_url": f"{server.url}/signed/v", "file_url": "https://cdn.example/v.mp4"}))
    server.on("PUT", "/signed/v", reply(200, {}))
    async with httpx.AsyncClient(headers={"Authorization": "Key leaked"}) as client:
        adapter = FalAdapter(KEY, queue_url=server.url, rest_url=server.url + "/rest", client=client,
                             data_uri_max_bytes=10, retry=RetryPolicy(sleep=sleeps))
        await adapter.upload(path, "video/mp4")
        await adapter.aclose()  # does not close a client it was given
        assert not client.is_closed
    [put] = server.hits("PUT", "/signed/v")
    assert "Authorization" not in put.headers


async def test_upload_of_a_missing_file_is_invalid_input(fal, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        await fal.upload(tmp_path / "nope.png", "image/png")
