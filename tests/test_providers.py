"""Both provider adapters over real loopback HTTP: shared test servers, the never-leak-the-key
guarantee, and (when the simulator is available) end-to-end runs through ``agent_tools.simulator``.

``FakeServer`` and friends are imported by ``test_fal_adapter.py`` and ``test_wavespeed_adapter.py``;
they live here because this is the cross-provider test module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from agent_tools.providers.base import CancelOutcome, RequestRef
from agent_tools.providers.errors import (AuthenticationFailed, Cancelled, ContentPolicy, InvalidInput,
                                          MediaDownloadFailed, OutOfBalance, ProviderError, RateLimited,
                                          RequestNotFound, Transient)
from agent_tools.providers.fal import FalAdapter
from agent_tools.providers.http import RetryPolicy
from agent_tools.providers.wavespeed import WaveSpeedAdapter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class FakeServer:
    """A real aiohttp server whose routes tests script after start; records every request."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    def on(self, method: str, path: str, *replies: Handler) -> None:
        """Answer with ``replies`` in turn, repeating the last one."""
        queue = list(replies)

        async def handler(request: web.Request) -> web.StreamResponse:
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return await reply(request)

        self.routes[(method, path)] = handler

    def hits(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, request.query_string, dict(request.headers), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        return await handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = "http://127.0.0.1:%d" % self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None,
          text: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        return web.json_response(body if body is not None else {}, status=status, headers=headers)
    return handler


async def reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection after the request arrived: the client cannot know if it was processed."""
    request.transport.abort()
    return web.Response()


def slow(seconds: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({})
    return handler


class Sleeps(list):
    """Records the backoff delays instead of waiting them out."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    srv = FakeServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


async def closed_port() -> int:
    """A port nothing listens on: connecting fails before any request byte is sent."""
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    return port


def fast_policy(sleeps: Sleeps | None = None, **overrides: Any) -> RetryPolicy:
    async def no_wait(seconds: float) -> None:
        return None

    options: dict[str, Any] = {"max_attempts": 3, "base_delay": 0.0, "max_delay": 0.0, "result_attempts": 2,
                               "sleep": sleeps if sleeps is not None else no_wait}
    return RetryPolicy(**{**options, **overrides})


# -- the key never appears in an error -----------------------------------------------------------

FAL_KEY = "leakcheck-fal-id-7f3a9c:leakcheck-fal-secret-c0ffee1234"
WS_KEY = "leakcheck-wavespeed-9b8d7e6f5a4b3c2d1e0f"


def _echo(status: int, shape: str) -> Handler:
    """An error reply that quotes the request's Authorization header the way careless servers do."""
    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        secret = auth.split(":")[-1]  # the secret half alone must not slip through either
        bodies: dict[str, Any] = {
            "detail": {"detail": f"Invalid header {auth}", "error_type": "runner_server_error"},
            "list": {"detail": [{"loc": ["body", "prompt"], "msg": f"bad key {auth} / {secret}",
                                 "type": "value_error"}]},
            "policy": {"detail": [{"loc": ["body"], "msg": f"flagged for {auth}", "type": "content_policy_violation"}]},
            "envelope": {"code": status, "message": f"Unauthorized: {auth}", "error_code": f"BAD_KEY {auth}"},
            "balance": {"code": status, "message": f"insufficient balance for {auth}"},
        }
        if shape == "text":
            return web.Response(status=status, text=f"<html>headers: Authorization: {auth}</html>")
        return web.json_response(bodies[shape], status=status)
    return handler


def _failed_prediction(code: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"code": 200, "message": "success", "data": {
            "id": "t1", "status": "failed", "code": code, "error": f"failed with {auth}", "outputs": []}})
    return handler


def _assert_clean(error: BaseException, *secrets: str) -> None:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for exc in chain:
        texts = [str(exc), repr(exc), *(str(a) for a in exc.args)]
        if isinstance(exc, ProviderError):
            texts += [exc.message, str(exc.error_type)]
        for secret in secrets:
            assert all(secret not in t for t in texts), f"{secret!r} leaked in {type(exc).__name__}: {texts}"


FAL_CASES = [(status, shape) for status in (400, 401, 403, 404, 422, 429, 500, 503, 504)
             for shape in ("detail", "list", "policy", "text")]


@pytest.mark.parametrize("status, shape", FAL_CASES)
async def test_fal_errors_never_contain_the_key(server: FakeServer, status: int, shape: str) -> None:
    fal = FalAdapter(FAL_KEY, queue_url=server.url, rest_url=server.url, retry=fast_policy())
    ref = RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1")
    for method, path in (("POST", "/fal-ai/pika/v2.2/text-to-video"), ("GET", "/fal-ai/pika/requests/r1/status"),
                         ("GET", "/fal-ai/pika/requests/r1"), ("PUT", "/fal-ai/pika/requests/r1/cancel")):
        server.on(method, path, _echo(status, shape))
    calls = (fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "x"}), fal.status(ref), fal.result(ref),
             fal.cancel(ref))
    for call in calls:
        try:
            await call
        except ProviderError as exc:
            _assert_clean(exc, FAL_KEY, *FAL_KEY.split(":"))
    await fal.aclose()


WS_CASES = [(status, shape) for status in (400, 401, 403, 404, 413, 429, 500, 502)
            for shape in ("envelope", "balance", "text")] + [(200, "envelope"), (200, "balance")]


@pytest.mark.parametrize("status, shape", WS_CASES)
async def test_wavespeed_errors_never_contain_the_key(server: FakeServer, status: int, shape: str) -> None:
    ws = WaveSpeedAdapter(WS_KEY, base_url=server.url, retry=fast_policy())
    ref = RequestRef("wavespeed", "wavespeed-ai/hunyuan-video/i2v", "t1")
    server.on("POST", "/api/v3/wavespeed-ai/hunyuan-video/i2v", _echo(status, shape))
    server.on("GET", "/api/v3/predictions/t1/result", _echo(status, shape))
    for call in (ws.submit("wavespeed-ai/hunyuan-video/i2v", {"prompt": "x"}), ws.status(ref), ws.result(ref)):
        with pytest.raises(ProviderError) as info:
            await call
        _assert_clean(info.value, WS_KEY)
    await ws.aclose()


@pytest.mark.parametrize("code", [1200, 1400, 1402, 1403, 5000, 9999])
async def test_wavespeed_task_errors_never_contain_the_key(server: FakeServer, code: int) -> None:
    ws = WaveSpeedAdapter(WS_KEY, base_url=server.url, retry=fast_policy())
    server.on("GET", "/api/v3/predictions/t1/result", _failed_prediction(code))
    ref = RequestRef("wavespeed", "wavespeed-ai/hunyuan-video/i2v", "t1")
    assert WS_KEY not in str(await ws.status(ref))
    with pytest.raises(ProviderError) as info:
        await ws.result(ref)
    _assert_clean(info.value, WS_KEY)
    await ws.aclose()


async def test_fal_completed_status_error_is_redacted(server: FakeServer) -> None:
    async def completed(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "COMPLETED", "logs": None,
                                  "error": f"runner saw {request.headers['Authorization']}"})
    server.on("GET", "/fal-ai/pika/requests/r1/status", completed)
    fal = FalAdapter(FAL_KEY, queue_url=server.url, retry=fast_policy())
    update = await fal.status(RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1"))
    assert update.error and all(part not in update.error for part in (FAL_KEY, *FAL_KEY.split(":")))
    await fal.aclose()


async def test_transport_errors_never_contain_the_key() -> None:
    port = await closed_port()
    fal = FalAdapter(FAL_KEY, queue_url=f"http://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}",
                     retry=fast_policy())
    ws = WaveSpeedAdapter(WS_KEY, base_url=f"http://127.0.0.1:{port}", retry=fast_policy())
    ref = RequestRef("fal", "fal-ai/pika", "r1")
    for call, secret in ((fal.submit("fal-ai/pika", {}), FAL_KEY), (fal.status(ref), FAL_KEY),
                         (ws.submit("a/b", {}), WS_KEY), (ws.result(ref), WS_KEY)):
        with pytest.raises(ProviderError) as info:
            await call
        _assert_clean(info.value, secret)
    await fal.aclose()
    await ws.aclose()


@pytest.mark.parametrize("bad", ["", "   ", "key with space", "kéy", "line\nbreak"])
def test_unusable_keys_fail_at_construction_without_echoing(bad: str) -> None:
    for make in (lambda: FalAdapter(bad), lambda: WaveSpeedAdapter(bad)):
        with pytest.raises(ProviderError) as info:
            make()
        if bad.strip():
            _assert_clean(info.value, bad.strip())


async def test_adapter_repr_hides_the_key() -> None:
    async with FalAdapter(FAL_KEY) as fal, WaveSpeedAdapter(WS_KEY) as ws:
        assert FAL_KEY not in f"{fal!r} {vars(fal)!r}" and WS_KEY not in f"{ws!r} {vars(ws)!r}"


# -- end to end through the simulator --------------------------------------------------------------

try:
    from agent_tools.simulator import SimSettings, Simulator
except ImportError:  # the simulator is built alongside; these tests run once it is importable
    Simulator = None  # type: ignore[assignment,misc]

needs_sim = pytest.mark.skipif(Simulator is None, reason="agent_tools.simulator is not available")

FAL_VIDEO = "fal-ai/pika/v2.2/text-to-video"
FAL_IMAGE = "fal-ai/hunyuan-image/v3/text-to-image"
WS_VIDEO = "wavespeed-ai/hunyuan-video/i2v"
SIM_FAL_KEY = "sim-key-id:sim-key-secret-0000"
SIM_WS_KEY = "sim-wavespeed-key-0000"


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    simulator = Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05, cancel_seconds=0.02))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


@pytest.fixture
async def sim_fal(sim: Any) -> AsyncIterator[FalAdapter]:
    adapter = FalAdapter(SIM_FAL_KEY, sim.fal_queue_url, sim.fal_rest_url, retry=fast_policy(max_attempts=4),
                         data_uri_max_bytes=1024)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def sim_ws(sim: Any) -> AsyncIterator[WaveSpeedAdapter]:
    adapter = WaveSpeedAdapter(SIM_WS_KEY, sim.wavespeed_base_url, retry=fast_policy(max_attempts=4))
    yield adapter
    await adapter.aclose()


def ws_input(prompt: str) -> dict[str, Any]:
    return {"image": "https://example.com/still.png", "prompt": prompt, "duration": 5}


async def follow(adapter: Any, ref: RequestRef, *, until: str = "completed", limit: float = 5.0) -> list[Any]:
    """Poll like the tracker does (fast) until the state is ``until``; every update seen."""
    updates = []
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        update = await adapter.status(ref)
        updates.append(update)
        if update.state == until or update.state == "completed":
            return updates
        assert asyncio.get_running_loop().time() < deadline, f"still {update.state} after {limit} s"
        await asyncio.sleep(0.01)


@needs_sim
async def test_sim_fal_video_queue_logs_and_result(sim, sim_fal) -> None:
    ref = await sim_fal.submit(FAL_VIDEO, {"prompt": "a lighthouse [sim:queue=2]", "duration": "5"})
    updates = await follow(sim_fal, ref)
    positions = [u.queue_position for u in updates if u.state == "queued"]
    assert positions and positions == sorted(positions, reverse=True) and positions[0] <= 2
    assert updates[-1].logs  # logs=1 was sent
    result = await sim_fal.result(ref)
    [video] = result.outputs
    assert video.content_type == "video/mp4" and isinstance(result.seed, int)
    async with httpx.AsyncClient() as client:
        assert (await client.get(video.url)).status_code == 200


@needs_sim
async def test_sim_fal_images_and_resume_from_id_only(sim, sim_fal) -> None:
    ref = await sim_fal.submit(FAL_IMAGE, {"prompt": "a cat", "num_images": 2})
    bare = RequestRef("fal", FAL_IMAGE, ref.request_id)  # after a restart: no URLs, owner/app rebuilt
    await follow(sim_fal, bare)
    result = await sim_fal.result(bare)
    assert [(o.width, o.height) for o in result.outputs] == [(1024, 1024), (1024, 1024)]
    assert sim.stats.routes["fal.bad_url"] == 0


FAL_FAILURES = [
    ("content_policy", ContentPolicy, None), ("invalid", InvalidInput, None), ("detail_string", InvalidInput, None),
    ("media_error", MediaDownloadFailed, None), ("server_error", Transient, None),
    ("server_error=503", Transient, None), ("timeout", Transient, "request_timeout"),
    ("user_timeout", Transient, "request_timeout"), ("status_error", Transient, "internal_error"),
]


@needs_sim
@pytest.mark.parametrize("marker, error, status_error_type", FAL_FAILURES)
async def test_sim_fal_failure_classes(sim, sim_fal, marker, error, status_error_type) -> None:
    ref = await sim_fal.submit(FAL_VIDEO, {"prompt": f"a fox [sim:{marker}]", "image_url": "https://x/y.png"})
    updates = await follow(sim_fal, ref)
    assert updates[-1].error_type == status_error_type
    with pytest.raises(error) as info:
        await sim_fal.result(ref)
    assert type(info.value) is error and "[sim:" not in info.value.message
    results = sim.stats.routes["fal.result"]
    if marker == "user_timeout" or error is not Transient:
        assert results == 1  # never retried: the answer will not change
    else:
        assert results == 2  # result_attempts: bounded, then surfaced


WS_FAILURES = [
    ("content_policy", ContentPolicy), ("invalid", InvalidInput), ("detail_string", InvalidInput),
    ("media_error", MediaDownloadFailed), ("server_error", Transient), ("timeout", Transient),
    ("user_timeout", Transient), ("status_error", Transient),
]


@needs_sim
@pytest.mark.parametrize("marker, error", WS_FAILURES)
async def test_sim_wavespeed_failure_classes(sim, sim_ws, marker, error) -> None:
    ref = await sim_ws.submit(WS_VIDEO, ws_input(f"waves [sim:{marker}]"))
    updates = await follow(sim_ws, ref)
    assert updates[-1].state == "completed" and updates[-1].error
    with pytest.raises(error) as info:
        await sim_ws.result(ref)
    assert type(info.value) is error and info.value.retryable is False


@needs_sim
async def test_sim_wavespeed_success(sim, sim_ws) -> None:
    ref = await sim_ws.submit(WS_VIDEO, ws_input("waves [sim:queue=1]"))
    states = [u.state for u in await follow(sim_ws, ref)]
    assert states[0] == "queued" and states[-1] == "completed"
    result = await sim_ws.result(ref)
    assert result.outputs[0].url.endswith(".mp4") and "has_nsfw_contents" in result.extra


@needs_sim
@pytest.mark.parametrize("provider", ["fal", "wavespeed"])
@pytest.mark.parametrize("key, error", [("bad-key:000000000", AuthenticationFailed), ("broke-key:00000000", OutOfBalance)])
async def test_sim_account_errors(sim, provider, key, error) -> None:
    if provider == "fal":
        adapter: Any = FalAdapter(key, sim.fal_queue_url, sim.fal_rest_url, retry=fast_policy())
        call = adapter.submit(FAL_VIDEO, {"prompt": "x"})
    else:
        adapter = WaveSpeedAdapter(key, sim.wavespeed_base_url, retry=fast_policy())
        call = adapter.submit(WS_VIDEO, ws_input("x"))
    with pytest.raises(error) as info:
        await call
    assert info.value.error_type != "submit_outcome_unknown"  # refused: nothing was created
    await adapter.aclose()


@needs_sim
@pytest.mark.parametrize("provider", ["fal", "wavespeed"])
async def test_sim_rate_limited_submit_is_retried_then_reported(sim, provider, sleeps) -> None:
    policy = fast_policy(sleeps, max_attempts=3)
    if provider == "fal":
        adapter: Any = FalAdapter(SIM_FAL_KEY, sim.fal_queue_url, sim.fal_rest_url, retry=policy)
        call = adapter.submit(FAL_VIDEO, {"prompt": "x [sim:rate_limit]"})
    else:
        adapter = WaveSpeedAdapter(SIM_WS_KEY, sim.wavespeed_base_url, retry=policy)
        call = adapter.submit(WS_VIDEO, ws_input("x [sim:rate_limit]"))
    with pytest.raises(RateLimited) as info:
        await call
    await adapter.aclose()
    assert info.value.retryable and sim.stats.routes[f"{provider}.submit"] == 3
    assert sim.stats.total_submits == 0 and len(sleeps) == 2


@needs_sim
@pytest.mark.parametrize("provider", ["fal", "wavespeed"])
async def test_sim_flaky_status_polls_are_absorbed(sim, sim_fal, sim_ws, provider) -> None:
    adapter: Any = sim_fal if provider == "fal" else sim_ws
    payload = {"prompt": "x [sim:flaky=2]"} if provider == "fal" else ws_input("x [sim:flaky=2]")
    ref = await adapter.submit(FAL_VIDEO if provider == "fal" else WS_VIDEO, payload)
    await follow(adapter, ref)
    assert (await adapter.result(ref)).outputs
    assert sim.stats.responses[503] == 2


@needs_sim
async def test_sim_fal_cancel_while_queued(sim, sim_fal) -> None:
    ref = await sim_fal.submit(FAL_VIDEO, {"prompt": "x [sim:queue=50]"})
    assert (await sim_fal.status(ref)).state == "queued"
    assert await sim_fal.cancel(ref) in (CancelOutcome.CANCELLED, CancelOutcome.REQUESTED)
    await follow(sim_fal, ref)
    with pytest.raises(Cancelled):
        await sim_fal.result(ref)


@needs_sim
async def test_sim_fal_cancel_while_running(sim, sim_fal) -> None:
    ref = await sim_fal.submit(FAL_VIDEO, {"prompt": "x [sim:slow=30]"})
    assert (await follow(sim_fal, ref, until="running"))[-1].state == "running"
    assert await sim_fal.cancel(ref) == CancelOutcome.REQUESTED
    await follow(sim_fal, ref)
    with pytest.raises(Cancelled) as info:
        await sim_fal.result(ref)
    assert info.value.kind == "cancelled"


@needs_sim
async def test_sim_fal_cancel_after_completion_and_unknown(sim, sim_fal) -> None:
    ref = await sim_fal.submit(FAL_VIDEO, {"prompt": "x"})
    await follow(sim_fal, ref)
    assert await sim_fal.cancel(ref) == CancelOutcome.ALREADY_COMPLETED
    assert (await sim_fal.result(ref)).outputs  # a late cancel does not spoil the result
    unknown = RequestRef("fal", FAL_VIDEO, "00000000-0000-0000-0000-000000000000")
    assert await sim_fal.cancel(unknown) == CancelOutcome.NOT_FOUND
    with pytest.raises(RequestNotFound):
        await sim_fal.status(unknown)


@needs_sim
async def test_sim_wavespeed_cancel_is_unsupported(sim, sim_ws) -> None:
    ref = await sim_ws.submit(WS_VIDEO, ws_input("x"))
    before = sim.stats.requests
    assert await sim_ws.cancel(ref) == CancelOutcome.UNSUPPORTED
    assert sim.stats.requests == before


@needs_sim
async def test_sim_fal_uploads_data_uri_and_initiate_put(sim, sim_fal, tmp_path) -> None:
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    small.write_bytes(b"\x89PNG" + b"s" * 100)
    large.write_bytes(b"\x89PNG" + bytes(range(256)) * 20)
    before = sim.stats.requests
    assert (await sim_fal.upload(small, "image/png")).startswith("data:image/png;base64,")
    assert sim.stats.requests == before
    url = await sim_fal.upload(large, "image/png")
    assert sim.stats.routes["fal.storage_initiate"] == 1 and sim.stats.routes["upload.put"] == 1
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == large.read_bytes()


@needs_sim
async def test_sim_wavespeed_upload_ticket(sim, sim_ws, tmp_path) -> None:
    path = tmp_path / "still.png"
    path.write_bytes(b"\x89PNG" + b"t" * 500)
    url = await sim_ws.upload(path, "image/png")
    assert sim.stats.routes["wavespeed.upload_ticket"] == 1 and sim.stats.routes["upload.put"] == 1
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == path.read_bytes()


@needs_sim
async def test_sim_wavespeed_upload_falls_back_to_binary(sim, server, tmp_path) -> None:
    """A gateway without the ticket route (404) in front of the simulator: the binary flow is used."""
    async def forward(request: web.Request) -> web.StreamResponse:
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{sim.wavespeed_base_url}{request.path}", content=await request.read(),
                                       headers={k: v for k, v in request.headers.items()
                                                if k in ("Authorization", "Content-Type")})
        return web.Response(status=answer.status_code, body=answer.content,
                            content_type=answer.headers["content-type"].split(";")[0])

    server.on("POST", "/api/v3/media/upload/binary", forward)  # /api/v3/media/uploads stays 404
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 300)
    adapter = WaveSpeedAdapter(SIM_WS_KEY, server.url, retry=fast_policy())
    url = await adapter.upload(path, "video/mp4")
    await adapter.aclose()
    assert [s.path for s in server.seen] == ["/api/v3/media/uploads", "/api/v3/media/upload/binary"]
    assert sim.stats.routes["wavespeed.upload_binary"] == 1
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == path.read_bytes()


def test_nsfw_flags_are_read_per_output_from_either_providers_field():
    from agent_tools.providers.base import OutputFile, ProviderResult

    outputs = (OutputFile("https://x/1.png"), OutputFile("https://x/2.png"))
    fal = ProviderResult(outputs, extra={"has_nsfw_concepts": [False, True]})
    wavespeed = ProviderResult(outputs, extra={"has_nsfw_contents": [True]})
    assert [fal.nsfw(0), fal.nsfw(1)] == [False, True]
    assert [wavespeed.nsfw(0), wavespeed.nsfw(1)] == [True, False]  # a missing flag is not a flag
    assert not ProviderResult(outputs, extra={"has_nsfw_concepts": "yes"}).nsfw(0)


async def test_a_client_keeps_at_most_its_cap_of_requests_in_flight_and_frees_every_slot(server: FakeServer) -> None:
    """Thousands of jobs in one process must not queue inside httpx's pool (its cost per request
    grows with the queue): ``new_client`` lets ``MAX_CONNECTIONS`` requests out at once and the
    rest wait their turn; a slot comes back however the response ends (read, left early, failed)."""
    from agent_tools.providers.http import MAX_CONNECTIONS, new_client

    in_flight, most, gate = 0, 0, asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await gate.wait()
        in_flight -= 1
        return web.json_response({"ok": True})

    server.on("GET", "/held", held)
    server.on("GET", "/reset", reset)
    client = new_client(timeout=30)
    try:
        calls = [asyncio.ensure_future(client.get(f"{server.url}/held")) for _ in range(MAX_CONNECTIONS * 3)]
        while in_flight < MAX_CONNECTIONS:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # room for any request past the cap to arrive (none may)
        gate.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*calls))
        assert most == MAX_CONNECTIONS
        for _ in range(MAX_CONNECTIONS):  # left before its body was read
            async with client.stream("GET", f"{server.url}/held"):
                pass
        for _ in range(MAX_CONNECTIONS):  # the server hangs up
            with pytest.raises(httpx.TransportError):
                await client.get(f"{server.url}/reset")
        again = await asyncio.wait_for(asyncio.gather(*(client.get(f"{server.url}/held")
                                                         for _ in range(MAX_CONNECTIONS))), 20)
        assert [r.status_code for r in again] == [200] * MAX_CONNECTIONS
    finally:
        await client.aclose()


# -- uploads have slots of their own; the API cap is a setting -----------------------------------

class Stall:
    """A route that holds each request until the test lets it go (``release``/``open``), so a test
    can fill a client's slots with requests that do not finish. Records the order of arrivals and
    releases, and the most requests it held at once."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.held = 0
        self.most = 0
        self.log: list[str] = []
        self._tickets = asyncio.Semaphore(0)
        self._open = False

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.log.append("arrived")
        self.held += 1
        self.most = max(self.most, self.held)
        try:
            if not self._open:
                await self._tickets.acquire()
        finally:
            self.held -= 1
        return await self.answer(request)

    def release(self) -> None:
        """Let one held request (or the next to arrive) be answered."""
        self.log.append("released")
        self._tickets.release()

    def open(self) -> None:
        """Answer every held request and every later one at once."""
        self._open = True
        for _ in range(self.held):
            self._tickets.release()

    async def until_held(self, count: int) -> None:
        """Wait until ``count`` requests are held; a bounded wait, so a broken cap fails, not hangs."""
        async def held() -> None:
            while self.held < count:
                await asyncio.sleep(0.005)
        await asyncio.wait_for(held(), 20)


FAL_SUBMITTED = {"request_id": "r1", "status_url": "", "response_url": "", "cancel_url": ""}
WS_PENDING = {"code": 200, "message": "success", "data": {"id": "t1", "status": "processing"}}


def _uploads_stalled(provider: str, server: FakeServer, stall: Stall) -> tuple[Any, str]:
    """An adapter whose uploads end in ``stall``, whose status and submit routes answer at once;
    returns it and the path the stalled upload requests arrive on."""
    if provider == "fal":
        server.on("POST", "/storage/upload/initiate",
                  reply(200, {"upload_url": f"{server.url}/bucket/put", "file_url": "https://cdn.example/f.png"}))
        server.on("PUT", "/bucket/put", stall)
        server.on("GET", "/fal-ai/pika/requests/r1/status", reply(202, {"status": "IN_PROGRESS"}))
        server.on("POST", "/fal-ai/pika/v2.2/text-to-video", reply(200, {
            **FAL_SUBMITTED, "status_url": f"{server.url}/fal-ai/pika/requests/r1/status",
            "response_url": f"{server.url}/fal-ai/pika/requests/r1",
            "cancel_url": f"{server.url}/fal-ai/pika/requests/r1/cancel"}))
        return (FalAdapter(FAL_KEY, queue_url=server.url, rest_url=server.url, retry=fast_policy(),
                           data_uri_max_bytes=0), "/bucket/put")
    server.on("GET", "/api/v3/predictions/t1/result", reply(200, WS_PENDING))
    server.on("POST", "/api/v3/wavespeed-ai/wan-2.1/i2v", reply(200, WS_PENDING))
    if provider == "wavespeed-ticket":
        server.on("POST", "/api/v3/media/uploads", reply(200, {"code": 200, "data": {
            "upload": {"url": f"{server.url}/bucket/put", "method": "PUT"},
            "download_url": "https://cdn.example/f.png"}}))
        server.on("PUT", "/bucket/put", stall)
        path = "/bucket/put"
    else:  # no ticket route (404): the multipart binary POST carries the file
        server.on("POST", "/api/v3/media/upload/binary", stall)
        path = "/api/v3/media/upload/binary"
    return WaveSpeedAdapter(WS_KEY, base_url=server.url, retry=fast_policy()), path


@pytest.mark.parametrize("provider", ["fal", "wavespeed-ticket", "wavespeed-binary"])
async def test_stalled_uploads_never_hold_the_slots_of_polls_and_submits(server: FakeServer, tmp_path,
                                                                         provider: str) -> None:
    """As many slow uploads as the API client has slots (large images over a slow link: minutes
    each) fill only the uploads' own slots; a status poll and a submit of another job still go
    through at once. On one shared client they waited until an upload finished."""
    from agent_tools.providers.http import MAX_CONNECTIONS, UPLOAD_SLOTS

    answer = reply(200, {"code": 200, "data": {"download_url": "https://cdn.example/f.png"}})
    stall = Stall(answer)
    adapter, upload_path = _uploads_stalled(provider, server, stall)
    image = tmp_path / "still.png"
    image.write_bytes(b"\x89PNG" + b"p" * 2000)
    uploads = [asyncio.ensure_future(adapter.upload(image, "image/png")) for _ in range(MAX_CONNECTIONS)]
    try:
        await stall.until_held(UPLOAD_SLOTS)
        if provider == "fal":
            ref = RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1")
            update = await asyncio.wait_for(adapter.status(ref), 20)
            submitted = await asyncio.wait_for(adapter.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "x"}), 20)
        else:
            ref = RequestRef("wavespeed", "wavespeed-ai/wan-2.1/i2v", "t1")
            update = await asyncio.wait_for(adapter.status(ref), 20)
            submitted = await asyncio.wait_for(adapter.submit("wavespeed-ai/wan-2.1/i2v", {"prompt": "x"}), 20)
        assert update.state.value == "running" and submitted.request_id in ("r1", "t1")
        assert stall.held == UPLOAD_SLOTS  # the other uploads wait their turn in the adapter
    finally:
        stall.open()
        urls = await asyncio.wait_for(asyncio.gather(*uploads, return_exceptions=True), 20)
        await adapter.aclose()
    assert urls == ["https://cdn.example/f.png"] * MAX_CONNECTIONS
    assert stall.most == UPLOAD_SLOTS
    assert len(server.hits("PUT" if upload_path == "/bucket/put" else "POST", upload_path)) == MAX_CONNECTIONS
    for seen in server.hits("PUT", "/bucket/put"):
        assert "Authorization" not in seen.headers  # a presigned URL never sees the key


@pytest.mark.parametrize("provider", ["fal", "wavespeed"])
async def test_the_api_cap_is_the_providers_max_requests_in_flight_setting(server: FakeServer, provider: str) -> None:
    """``[fal]``/``[wavespeed]`` ``max_requests_in_flight`` reaches the adapter ``build_adapter``
    makes: with 2, two held polls fill it and a third is sent only once one of them is answered."""
    from agent_tools.config import Settings
    from agent_tools.toolkit import build_adapter

    if provider == "fal":
        section = {"key": FAL_KEY, "queue_url": server.url, "rest_url": server.url, "max_requests_in_flight": 2}
        ref = RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1")
        stall = Stall(reply(202, {"status": "IN_QUEUE", "queue_position": 1}))
        server.on("GET", "/fal-ai/pika/requests/r1/status", stall)
    else:
        section = {"key": WS_KEY, "base_url": server.url, "max_requests_in_flight": 2}
        ref = RequestRef("wavespeed", "wavespeed-ai/wan-2.1/i2v", "t1")
        stall = Stall(reply(200, WS_PENDING))
        server.on("GET", "/api/v3/predictions/t1/result", stall)
    adapter = build_adapter(Settings.model_validate({provider: section}), provider)
    polls = [asyncio.ensure_future(adapter.status(ref)) for _ in range(3)]
    try:
        await stall.until_held(2)
        await asyncio.sleep(0.3)  # room for a request past the cap to arrive (none may)
        stall.release()
        done, _ = await asyncio.wait(polls, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        await stall.until_held(2)  # the third, sent now that a slot is free
        assert stall.log == ["arrived", "arrived", "released", "arrived"]
    finally:
        stall.open()
        updates = await asyncio.wait_for(asyncio.gather(*polls, return_exceptions=True), 20)
        await adapter.aclose()
    assert [u.state.value for u in updates] == ["queued" if provider == "fal" else "running"] * 3
    assert stall.most == 2


async def test_the_default_cap_is_eight_and_a_given_client_keeps_its_own_limits(server: FakeServer, tmp_path) -> None:
    """Without the setting the cap is the one BENCHMARKS.md was measured with. A client the caller
    passes in carries the uploads as well (the adapter makes no second client it would have to
    close), and asking for a cap on top of it is a mistake said at once, not silently ignored."""
    from agent_tools.config import Settings
    from agent_tools.providers.http import MAX_CONNECTIONS
    from agent_tools.toolkit import build_adapter

    assert MAX_CONNECTIONS == 8
    fal = build_adapter(Settings.model_validate({"fal": {"key": FAL_KEY}}), "fal")
    assert fal.max_requests_in_flight == MAX_CONNECTIONS  # type: ignore[attr-defined]
    await fal.aclose()
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="a given client keeps its own limits"):
            WaveSpeedAdapter(WS_KEY, base_url=server.url, client=client, max_requests_in_flight=4)
        server.on("POST", "/api/v3/media/upload/binary",
                  reply(200, {"code": 200, "data": {"download_url": "https://cdn.example/f.png"}}))
        ws = WaveSpeedAdapter(WS_KEY, base_url=server.url, client=client, retry=fast_policy())
        image = tmp_path / "still.png"
        image.write_bytes(b"p" * 10)
        assert await ws.upload(image, "image/png") == "https://cdn.example/f.png"
        await ws.aclose()
        assert not client.is_closed
    with pytest.raises(ValueError, match="at least 1"):
        FalAdapter(FAL_KEY, max_requests_in_flight=0)
